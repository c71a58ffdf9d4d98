"""The ``cfld`` model adapter: CFLD (Lu et al., CVPR 2024) behind fpdm-bench's ModelAdapter.

``--checkpoint DIR``: the released folder (``pytorch_model.bin`` + ``pytorch_model_1.bin``, optional
``config.json``) and ``--model-arg vae=DIR`` (SD 1.5's VAE, not in the release; or ``DIR/vae``).
Per batch, as the official test does (docs/porting/cfld.md):

1. the source is stretched to the Swin input (256x256 published) with PIL bicubic (torchvision's
   ``Resize`` on a PIL image) and mapped to [-1, 1] (no ImageNet normalisation);
2. the target pose becomes the 21-channel map on its canvas (``pose.render_batch``);
3. DDPM, 50 steps, guidance ``uc + g_pose (down - uc) + g (full - down)`` with both 2 (``--steps``,
   ``--guidance`` = g, ``--model-arg pose_guidance=`` = g_pose); NFE = 3 x steps; per-pair noise (the
   official code draws all noise from one global RNG, so its samples depend on the batch);
4. the 512x512 output is squeezed to the batch's frame with antialiased bicubic and truncated to 8
   bits (what the official scores).
"""
from __future__ import annotations

from pathlib import Path

import torch

from baselines.cfld.pipeline import FILES, CFLDPipeline
from baselines.cfld.pose import render_batch
from fpdm_bench.errors import BenchError
from fpdm_bench.models.base import ModelAdapter


class CFLDAdapter(ModelAdapter):
    """CFLD (the released checkpoint folder + SD 1.5's VAE)."""

    name = "cfld"

    def __init__(self, pipeline: CFLDPipeline, checkpoint: str | Path, steps: int = 50, guidance: float = 2.0,
                 pose_guidance: float = 2.0):
        super().__init__(device=pipeline.device, dtype=pipeline.dtype)
        if not 1 <= int(steps) <= 1000:
            raise BenchError(f"cfld: steps must be in 1..1000, got {steps}")
        self.pipeline, self.checkpoint = pipeline, Path(checkpoint)
        self.steps, self.guidance, self.pose_guidance = int(steps), float(guidance), float(pose_guidance)
        self.resolution = pipeline.gen_size
        self._sha = None

    @classmethod
    def from_pretrained(cls, path_or_config: str | Path | None = None, device: str = "cpu",
                        dtype: torch.dtype = torch.float32, steps: int | None = None, guidance: float | None = None,
                        scheduler: str | None = None, vae: str | None = None,
                        pose_guidance: float | None = None) -> "CFLDAdapter":
        if path_or_config is None:
            raise BenchError("cfld: no checkpoint given and no tiny CFLD is shipped yet; pass --checkpoint DIR (the "
                             f"released folder with {' and '.join(FILES)}) and --model-arg vae=DIR")
        if scheduler not in (None, "ddpm"):
            raise BenchError(f"cfld: the official sampler is DDPM; scheduler {scheduler!r} is not offered")
        pipe = CFLDPipeline.from_pretrained(path_or_config, vae, device=device, dtype=dtype)
        return cls(pipe, path_or_config, 50 if steps is None else steps, 2.0 if guidance is None else guidance,
                   2.0 if pose_guidance is None else pose_guidance)

    @torch.no_grad()
    def generate(self, batch: dict, generators: list[torch.Generator]) -> torch.Tensor:
        from fpdm_bench.protocols.apply import resize_with

        source = batch["source"]
        frame = tuple(source.shape[-2:])
        cfg = self.pipeline.conditioner.config
        src = resize_with(source.float().cpu(), (cfg.cond_size, cfg.cond_size), "pil", "bicubic") * 2 - 1
        pose = render_batch(batch["target_kp"], frame, (cfg.pose_size, cfg.pose_size))
        return self.pipeline(src, pose, generators, frame, self.steps, self.pose_guidance, self.guidance)

    def info(self) -> dict:
        from fpdm_bench.io import files_sha256

        if self._sha is None:
            self._sha = files_sha256(self.checkpoint, [self.checkpoint / f for f in FILES])
        p = self.pipeline
        n = sum(x.numel() for m in (p.conditioner, p.unet, p.vae) for x in m.parameters())
        return {"name": self.name, "parameters": n, "nfe": 3 * self.steps, "steps": self.steps, "scheduler": "ddpm",
                "guidance": self.guidance, "pose_guidance": self.pose_guidance, "resolution": list(self.resolution),
                "dtype": str(p.dtype).replace("torch.", ""), "checkpoint": str(self.checkpoint),
                "checkpoint_sha256": self._sha, "checkpoint_sha256_of": list(FILES), "noise": "per pair (not the "
                "official single global RNG)"}
