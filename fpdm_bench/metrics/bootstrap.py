"""Bootstrap confidence intervals for the mean of per-sample values."""
from __future__ import annotations

import math

import numpy as np


BLOCK = 1 << 22  # indices per block of bootstrap draws (bounds memory; the stream is the same as one draw)


def bootstrap_means(values, resamples: int, seed: int = 0) -> np.ndarray:
    """[resamples] means of bootstrap resamples of ``values``: indices from
    ``numpy.random.default_rng(seed).integers(0, n, size=(resamples, n))``, drawn in row blocks of at
    most BLOCK indices, which is the same stream. Used by ``mean_ci95`` and the paired bootstrap of
    ``fpdm_bench.stats.paired``."""
    v = np.asarray(values, np.float64)
    n = v.size
    rng = np.random.default_rng(seed)
    out = np.empty(resamples)
    rows = max(1, BLOCK // max(n, 1))
    for s in range(0, resamples, rows):
        b = min(rows, resamples - s)
        out[s: s + b] = v[rng.integers(0, n, size=(b, n))].mean(axis=1)
    return out


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
    lo, hi = np.percentile(bootstrap_means(v, resamples, seed), [2.5, 97.5])
    return mean, [float(lo), float(hi)]
