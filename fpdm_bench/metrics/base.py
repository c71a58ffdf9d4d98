"""Per-sample (paired) metric state: values kept in order so every mean gets a bootstrap CI.

A paired metric compares each generated image with its target and keeps one value per sample. The
state is a list, so two states (two processes, two shards) merge by concatenation, in dataset order.
"""
from __future__ import annotations

import torch

from fpdm_bench.metrics.bootstrap import mean_ci95


class PairedMetric:
    """Base class. Subclasses set ``name``/``higher_is_better`` and implement ``per_sample``."""

    name = "paired"
    higher_is_better = True

    def __init__(self):
        self.values: list[float] = []

    def per_sample(self, generated: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """[B,3,H,W] in [0,1] each -> [B] values (no state change)."""
        raise NotImplementedError

    def update(self, generated: torch.Tensor, target: torch.Tensor) -> list[float]:
        if generated.shape != target.shape:
            raise ValueError(f"{self.name}: generated {tuple(generated.shape)} and target "
                             f"{tuple(target.shape)} differ in shape")
        vals = [float(v) for v in self.per_sample(generated, target).tolist()]
        self.values.extend(vals)
        return vals

    def merge(self, other: "PairedMetric") -> None:
        self.values.extend(other.values)

    def compute(self) -> dict:
        """{"value": mean, "ci95": [lo, hi] | None, "n": count}."""
        return summarize(self.values)


def summarize(values) -> dict:
    mean, ci = mean_ci95(values)
    return {"value": mean, "ci95": ci, "n": len(values)}
