"""Floors and ceiling: the trivial models that bound every table."""
from __future__ import annotations

import torch

from fpdm_bench.models.base import ModelAdapter


class CopySource(ModelAdapter):
    """Returns the source image: what a model scores if it ignores the target pose."""

    name = "copy-source"

    def generate(self, batch: dict, generators: list[torch.Generator]) -> torch.Tensor:
        return batch["source"].clone()


class Oracle(ModelAdapter):
    """Returns the target image: the metrics' ceiling (SSIM 1, MAE 0)."""

    name = "oracle"
    needs_target = True

    def generate(self, batch: dict, generators: list[torch.Generator]) -> torch.Tensor:
        return batch["target"].clone()
