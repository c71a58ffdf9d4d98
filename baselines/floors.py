"""Floors and ceiling: the trivial models that bound every table."""
from __future__ import annotations

import torch

from fpdm_bench.models.base import ModelAdapter


class CopySource(ModelAdapter):
    """Floor: returns the source image unchanged (a model that ignores the target pose)."""

    name = "copy-source"
    floor = True
    order = 1
    colour = "#7f7f7f"
    in_grid = False  # its images are the grid's source column
    repeats = "source"

    def generate(self, batch: dict, generators: list[torch.Generator]) -> torch.Tensor:
        return batch["source"].clone()


class Oracle(ModelAdapter):
    """Ceiling: returns the target image (the metrics' best case: SSIM 1, MAE 0)."""

    name = "oracle"
    needs_target = True
    floor = True
    order = 2
    colour = "#bcbd22"
    in_grid = False  # its images are the grid's ground-truth column
    repeats = "ground truth"

    def generate(self, batch: dict, generators: list[torch.Generator]) -> torch.Tensor:
        return batch["target"].clone()
