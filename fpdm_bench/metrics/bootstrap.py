"""Bootstrap confidence intervals for the mean of per-sample values."""
from __future__ import annotations

import math

import numpy as np


def mean_ci95(values, resamples: int = 1000, seed: int = 0) -> tuple[float, list[float] | None]:
    """Mean and percentile-bootstrap 95 % CI of the mean (None for fewer than 2 values).

    Deterministic: the resampling RNG is seeded, and the values are used in the order given (the
    runner passes them in dataset order, so the CI does not depend on batch size or sharding).
    """
    v = np.asarray(values, dtype=np.float64)
    if np.isposinf(v).any() and not np.isneginf(v).any():
        return float("inf"), None  # e.g. PSNR of identical images
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), None
    mean = math.fsum(v.tolist()) / v.size
    if v.size < 2:
        return mean, None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, v.size, size=(resamples, v.size))
    means = v[idx].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return mean, [float(lo), float(hi)]
