"""FID∞: an FID free of the number of images (Chong & Forsyth, "Effectively Unbiased FID and Inception
Score and where to find them", CVPR 2020).

FID is biased upwards by a term that shrinks like 1/n: E[FID_n] ≈ FID∞ + k/n, with k depending on
the generator (so two models compared at one n are not even ranked consistently across n). The
paper computes FID on random subsets of sizes n_i spread evenly between a tenth of the images and
all of them (5k…50k of 50k; 15 sizes), fits FID = FID∞ + k·(1/n) by least squares and reports the
intercept, the value at 1/n = 0.

Here: ``sizes`` (15) sizes spread evenly from ``low`` × n (at least 2) to n, one subset each drawn
without replacement by ``numpy.random.default_rng(seed)`` (the size-n "subset" is every image), the
FIDs from :class:`fpdm_bench.stats.frechet.FrechetProjection`, a least-squares line in 1/n.
Deterministic for a seed. Cost: ``sizes`` Fréchet distances, each at most one full FID (measured: ~20 s
per run at DeepFashion's 8,570 images and d = 2,048 on one core; well under a second at a few
hundred images).

Read it with care at small n: the 1/n law is asymptotic (the paper fits n ≥ 5,000 with 2,048-d
features); below the feature dimension FID is not yet linear in 1/n, and FID∞ then is an
extrapolation from a curved range (a better basis for ranking runs of different n than the raw
FID, not a number to compare across papers).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fpdm_bench.stats.frechet import FrechetProjection

SIZES = 15
LOW = 0.1


@dataclass
class FIDInfinity:
    value: float  # the intercept: FID at 1/n = 0
    slope: float  # k in FID ≈ FID∞ + k/n
    sizes: list[int]
    fids: list[float]

    def describe(self) -> str:
        return f"fit of FID = FID∞ + k/n over {len(self.sizes)} subset sizes {self.sizes[0]}…{self.sizes[-1]}"


def subset_sizes(n: int, sizes: int = SIZES, low: float = LOW) -> list[int]:
    lo = max(2, int(round(low * n)))
    return sorted({int(round(x)) for x in np.linspace(lo, n, sizes)})


def fit_inverse_n(ns, fids) -> tuple[float, float]:
    """(intercept, slope) of the least-squares line fid = a + b / n."""
    b, a = np.polyfit(1.0 / np.asarray(ns, np.float64), np.asarray(fids, np.float64), 1)
    return float(a), float(b)


def fid_infinity(proj: FrechetProjection, items: np.ndarray | None = None, sizes: int = SIZES, low: float = LOW,
                 seed: int = 0) -> FIDInfinity:
    """FID∞ of the rows ``items`` of ``proj`` (a multiset of row indices, e.g. a bootstrap resample;
    default every row once)."""
    items = np.arange(proj.n) if items is None else np.asarray(items)
    n = len(items)
    if n < 3:
        raise ValueError(f"FID∞ needs at least 3 images, got {n}")
    rng = np.random.default_rng(seed)
    ns = subset_sizes(n, sizes, low)
    if len(ns) < 2:
        raise ValueError(f"FID∞ needs at least 2 subset sizes, got {ns}")
    fids = []
    for m in ns:
        pos = np.arange(n) if m == n else rng.choice(n, m, replace=False)
        fids.append(proj.fid(np.bincount(items[pos], minlength=proj.n)))
    a, b = fit_inverse_n(ns, fids)
    return FIDInfinity(a, b, ns, fids)
