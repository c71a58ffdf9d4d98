"""PSNR per image, as ``skimage.metrics.peak_signal_noise_ratio(target, generated, data_range=1)``
computes it: 10·log10(1 / MSE) over all pixels and channels, in float64."""
from __future__ import annotations

import torch

from fpdm_bench.metrics.base import PairedMetric


def psnr(generated: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """[B,3,H,W] pairs -> [B] PSNR in dB (inf for identical images)."""
    mse = (generated.double() - target.double()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(data_range ** 2 / mse)


class PSNR(PairedMetric):
    """Peak signal-to-noise ratio in dB (data range 1), per image."""

    name = "psnr"
    higher_is_better = True
    title = latex_title = "PSNR"
    order = 60
    sample_rank = 4

    def per_sample(self, generated, target, batch):
        return psnr(generated, target)
