"""Temporal flicker: how much more (or less) the generated video changes from frame to frame than
the real one does.

For consecutive frames t-1, t of a video, with generated frames g and ground truth y in [0, 1]::

    flicker_t = mean over pixels and channels of |(g_t - g_{t-1}) - (y_t - y_{t-1})|

A generated video whose frames change exactly as the real ones do scores 0 (the oracle), whatever
its per-frame error: a constant offset from the ground truth cancels. Frames generated independently
of each other (each pair on its own seed) add their per-frame noise twice. A video's value is the
mean of its transitions; the result is the mean over videos with a bootstrap CI over videos
(:class:`~fpdm_bench.metrics.base.SequenceMetric`). Computed in float64 on the protocol's prepared
(8-bit) frames.
"""
from __future__ import annotations

import torch

from fpdm_bench.metrics.base import SequenceMetric


def flicker(generated: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """[F-1] flicker of each consecutive pair of frames of [F, 3, H, W] videos in [0, 1]."""
    g, y = generated.double(), target.double()
    return ((g[1:] - g[:-1]) - (y[1:] - y[:-1])).abs().flatten(1).mean(1)


class Flicker(SequenceMetric):
    """Temporal flicker: mean |Δ generated − Δ ground truth| between consecutive frames of a video."""

    name = "flicker"
    higher_is_better = False
    title, latex_title = "Flicker", "Flicker"
    order = 110

    def transitions(self, generated, target):
        return flicker(generated, target).cpu().numpy()
