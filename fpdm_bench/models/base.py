"""The one interface every model is run through.

An adapter takes a batch from a PairDataset (see ``fpdm_bench.data.base.collate``) and returns
images in [0, 1] at the batch's size. Randomness comes only from the per-sample generators the
runner passes in, one per pair, seeded from (run seed, pair id).
"""
from __future__ import annotations

from typing import ClassVar

import torch


class ModelAdapter:
    name: ClassVar[str] = "model"
    #: (H, W) the model generates at natively; None = whatever size the batch has.
    resolution: ClassVar[tuple[int, int] | None] = None
    #: True for adapters that only read released images (they cannot take a seed).
    needs_target: ClassVar[bool] = False

    def __init__(self, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
        self.device = torch.device(device)
        self.dtype = dtype

    @classmethod
    def from_pretrained(cls, path_or_config: str | None = None, device: str = "cpu",
                        dtype: torch.dtype = torch.float32, **kwargs) -> "ModelAdapter":
        return cls(device=device, dtype=dtype, **kwargs)

    def generate(self, batch: dict, generators: list[torch.Generator]) -> torch.Tensor:
        """batch: source/target [B,3,H,W] in [0,1], source_kp/target_kp [B,K,2], pair_id list.

        Returns [B, 3, H, W] float in [0, 1] on any device.
        """
        raise NotImplementedError

    def info(self) -> dict:
        """Parameters, NFE, scheduler, checkpoint hash: whatever says how images were produced."""
        return {"name": self.name, "parameters": 0, "nfe": 0, "checkpoint_sha256": None}
