"""my-model: the source person moved so that their keypoints' centre lands on the target pose's.

A template for your own adapter. What fpdm-bench needs from a model is this one class:

- ``from_pretrained(path_or_config, device, dtype, **model_args)``: build it (``--checkpoint`` is
  ``path_or_config``; each ``--model-arg KEY=VALUE`` arrives as a keyword argument);
- ``generate(batch, generators)``: ``batch["source"]`` / ``batch["target_kp"]`` ... in, images
  ``[B, 3, H, W]`` in [0, 1] at the batch's size out; draw noise only from ``generators`` (one
  ``torch.Generator`` per pair, seeded from the run seed and the pair id), so results do not depend
  on the batch size, the order or the number of GPUs;
- ``info()``: what says how the images were made (parameters, steps, checkpoint hash).

The model here is deliberately simple and needs no weights: a translation of the source image by
the difference of the visible keypoints' centres (``shift`` scales it, ``--model-arg shift=0`` is
copy-source).
"""
from __future__ import annotations

import torch

from fpdm_bench.models.base import ModelAdapter


class MyModel(ModelAdapter):
    """Template model: the source shifted onto the target pose's centre (examples/my_model)."""

    name = "my-model"
    colour = "#17becf"  # its colour in the report's figures

    def __init__(self, device="cpu", dtype=torch.float32, shift: float = 1.0):
        super().__init__(device, dtype)
        self.shift = float(shift)

    @classmethod
    def from_pretrained(cls, path_or_config=None, device="cpu", dtype=torch.float32, shift: float = 1.0):
        # A real model loads its weights from path_or_config here (safetensors, or torch.load with
        # weights_only=True: never a plain pickle).
        return cls(device=device, dtype=dtype, shift=shift)

    def generate(self, batch: dict, generators: list[torch.Generator]) -> torch.Tensor:
        source = batch["source"].to(self.device, torch.float32)
        out = torch.empty_like(source)
        for i in range(source.shape[0]):
            dx, dy = self._offset(batch["source_kp"][i], batch["target_kp"][i])
            out[i] = torch.roll(source[i], shifts=(dy, dx), dims=(1, 2))
        return out.clamp(0, 1)

    def _offset(self, source_kp: torch.Tensor, target_kp: torch.Tensor) -> tuple[int, int]:
        """Whole-pixel (dx, dy) between the centres of the keypoints visible in both poses (a missing
        keypoint is NaN)."""
        seen = torch.isfinite(source_kp).all(-1) & torch.isfinite(target_kp).all(-1)
        if not bool(seen.any()):
            return 0, 0
        d = (target_kp[seen].float().mean(0) - source_kp[seen].float().mean(0)) * self.shift
        return int(round(float(d[0]))), int(round(float(d[1])))

    def info(self) -> dict:
        return {"name": self.name, "parameters": 0, "nfe": 0, "checkpoint_sha256": None, "shift": self.shift}
