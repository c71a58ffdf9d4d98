"""Mean absolute error per image, in two definitions the field uses under the same name.

``mean_abs``         mean |generated - target| over pixels and channels (what most people mean).
``gfla_normalised``  sum |generated - target| / sum (generated + target): the ``compare_mae`` of the
                     GFLA metric script, copied into PIDM's, PoCoLD's and FPDM's evaluation code (their
                     plain mean is reported as ``l1``). Protocols name which one their ``mae`` is.
"""
from __future__ import annotations

import torch

from fpdm_bench.metrics.base import PairedMetric

VARIANTS = ("mean_abs", "gfla_normalised")


def mae(generated: torch.Tensor, target: torch.Tensor, variant: str = "mean_abs") -> torch.Tensor:
    g, t = generated.double().flatten(1), target.double().flatten(1)
    if variant == "mean_abs":
        return (g - t).abs().mean(1)
    if variant == "gfla_normalised":
        return (g - t).abs().sum(1) / (g + t).sum(1)
    raise ValueError(f"unknown MAE variant {variant!r}; known: {', '.join(VARIANTS)}")


class MAE(PairedMetric):
    """Mean absolute error per image (plain, or GFLA's normalised variant)."""

    name = "mae"
    higher_is_better = False
    title = latex_title = "MAE"
    order = 70
    sample_rank = 3
    sweep_summary = True

    def __init__(self, key: str | None = None, variant: str = "mean_abs", drop_remainder: int = 0):
        super().__init__(key, drop_remainder)
        if variant not in VARIANTS:
            raise ValueError(f"unknown MAE variant {variant!r}; known: {', '.join(VARIANTS)}")
        self.variant = variant

    def settings(self) -> dict:
        return {"variant": self.variant, **super().settings()}

    def per_sample(self, generated, target, batch):
        return mae(generated, target, self.variant)
