"""The bootstrap of an FID or KID difference between two runs, on their stored features.

Both runs generated the same pairs with the same per-pair seeds, so their images, and the errors of
their FIDs, are correlated: resampling the two runs independently would overstate the noise of the
difference. Each replicate draws one set of pair indices (n with replacement, from
``numpy.random.default_rng(seed)``) and applies it to both runs, so the two runs' samples stay
paired; the reference statistics are fixed (the refstats cache: the reference set is the same
for both runs and not resampled, as in the runs' own CIs). The interval is the normal bootstrap
interval, Δ ± 1.96·sd(replicate differences), around the observed difference Δ; a run compared with
itself gives identical replicates, so Δ = 0 with a zero-width interval.

FID: each replicate is two Fréchet distances of the resampled features
(:class:`fpdm_bench.stats.frechet.FrechetProjection`, exact, no d×d covariance). Default 50
replicates: the sd is then known to about ±10 % (the issue-16 calibration: 10 replicates gave
half-widths from 0.7× to 1.4× the true one, 50 replicates 0.9×-1.2×). Cost: 2 Fréchet distances per
replicate, measured on one core at DeepFashion's size (8,570 pairs, d = r = 2,048): ~3 s per
replicate, ~3 min for 50 (plus ~2 s per run for the projection); ~0.1 s in all for the 48-pair
example of docs/compare-and-regression.md (Worked example). Memory: each run's n×d float32
features plus an n×r float64 projection (see frechet.py: ~210 MiB per run for DeepFashion).

KID: each replicate is the run's own KID estimator (torchmetrics' polynomial-kernel MMD² averaged
over random subsets, :func:`fpdm_bench.metrics.kid.kid_subsets`) on the resampled features, with
``subsets`` (10) subsets whose indices are the same for both runs (common random numbers: the
subset noise largely cancels in the difference, and the rest widens the interval; the real-real kernel
term is the same for both runs and is left out). A resample repeats features, which biases each
replicate's MMD² up a little, the same way in both runs. Cost: per replicate ``subsets`` × 4 kernel
products of s×d by d×s (s = subset size, at most 1,000): measured ~3 s per replicate for s = 1,000,
d = 2,048 on one core, ~2.5 min for 50; memory: the n×d features of both runs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fpdm_bench.stats.fid_infinity import SIZES, fid_infinity
from fpdm_bench.stats.frechet import FrechetProjection

REPLICATES = 50
KID_SUBSETS = 10


@dataclass
class SetDelta:
    delta: float
    ci95: list[float] | None
    sd: float | None
    replicates: int
    n: int
    method: str
    base_value: float | None = None  # recomputed from the features (FID); None when not recomputed
    new_value: float | None = None


def normal_ci(delta: float, diffs) -> tuple[list[float] | None, float | None]:
    diffs = np.asarray(diffs, np.float64)
    if diffs.size < 2:
        return None, None
    sd = float(np.std(diffs, ddof=1))
    return [delta - 1.96 * sd, delta + 1.96 * sd], sd


def fid_difference(base: FrechetProjection, new: FrechetProjection, replicates: int = REPLICATES,
                   seed: int = 0) -> SetDelta:
    """FID(new) - FID(base) on rows aligned pair by pair, with the joint-bootstrap CI."""
    if base.n != new.n:
        raise ValueError(f"the two runs' rows are not aligned ({base.n} vs {new.n})")
    n = base.n
    fb, fn = base.fid(), new.fid()
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(replicates):
        w = np.bincount(rng.integers(0, n, n), minlength=n)
        diffs.append(new.fid(w) - base.fid(w))
    delta = fn - fb
    ci, sd = normal_ci(delta, diffs)
    return SetDelta(delta, ci, sd, replicates, n, f"joint bootstrap of the features, {replicates} replicates of "
                    f"{n} pairs", fb, fn)


def fid_infinity_difference(base: FrechetProjection, new: FrechetProjection, common: tuple[np.ndarray, np.ndarray],
                            replicates: int = REPLICATES, seed: int = 0, sizes: int = SIZES) -> SetDelta:
    """FID∞(new) - FID∞(base) of two runs with different numbers of images: each run's FID∞ over all
    its rows; the CI from replicates that resample the pairs both scored jointly (``common``: their
    row indices in base and in new, aligned) and each run's other rows on their own."""
    cb, cn = (np.asarray(c) for c in common)
    eb = np.setdiff1d(np.arange(base.n), cb)
    en = np.setdiff1d(np.arange(new.n), cn)
    ib = fid_infinity(base, seed=seed, sizes=sizes)
    inn = fid_infinity(new, seed=seed, sizes=sizes)
    rng = np.random.default_rng(seed)
    diffs = []
    for r in range(replicates):
        j = rng.integers(0, len(cb), len(cb))
        items_b = np.concatenate([cb[j], eb[rng.integers(0, len(eb), len(eb))] if len(eb) else eb]).astype(int)
        items_n = np.concatenate([cn[j], en[rng.integers(0, len(en), len(en))] if len(en) else en]).astype(int)
        diffs.append(fid_infinity(new, items_n, sizes=sizes, seed=seed + r + 1).value
                     - fid_infinity(base, items_b, sizes=sizes, seed=seed + r + 1).value)
    delta = inn.value - ib.value
    ci, sd = normal_ci(delta, diffs)
    return SetDelta(delta, ci, sd, replicates, len(cb), f"FID∞ of each run; joint bootstrap of the {len(cb)} pairs "
                    f"both scored, {replicates} replicates", ib.value, inn.value)


def _kid_fake_terms(real, fake):
    """The generated-side terms of torchmetrics' poly_mmd on one subset (real and fake of equal size m):
    mean off-diagonal k(fake, fake) - 2·mean k(real, fake). The real-real term is the same for two runs
    on the same real subset, so it cancels in their difference and is not computed."""
    from torchmetrics.image.kid import poly_kernel

    m = fake.shape[0]
    k_ff = poly_kernel(fake, fake)
    k_rf = poly_kernel(real, fake)
    return (k_ff.sum() - k_ff.diagonal().sum()) / (m * (m - 1)) - 2 * k_rf.sum() / m ** 2


def kid_difference(base: np.ndarray, new: np.ndarray, reference: np.ndarray, delta: float, subset_size: int,
                   replicates: int = REPLICATES, subsets: int = KID_SUBSETS, seed: int = 0) -> SetDelta:
    """CI of the KID difference ``delta`` (the runs' reported KIDs, new - base) from the joint bootstrap
    of features aligned pair by pair. Each replicate: KID(new) - KID(base) with torchmetrics' estimator
    on the same ``subsets`` random subsets (drawn as :func:`fpdm_bench.metrics.kid.kid_subsets` draws
    them) of the resampled features."""
    import torch

    if len(base) != len(new):
        raise ValueError(f"the two runs' rows are not aligned ({len(base)} vs {len(new)})")
    n = len(base)
    real = torch.as_tensor(np.asarray(reference), dtype=torch.float64)
    fb, fn = (torch.from_numpy(np.asarray(x, np.float32)).double() for x in (base, new))
    size = min(int(subset_size), n, len(real))
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(replicates):
        idx = torch.from_numpy(rng.integers(0, n, n))
        g = torch.Generator().manual_seed(int(rng.integers(0, 2 ** 62)))
        xb, xn = fb[idx], fn[idx]
        total = 0.0
        for _ in range(subsets):
            ri = torch.randperm(len(real), generator=g)[:size]
            fi = torch.randperm(n, generator=g)[:size]
            total += float(_kid_fake_terms(real[ri], xn[fi]) - _kid_fake_terms(real[ri], xb[fi]))
        diffs.append(total / subsets)
    ci, sd = normal_ci(delta, diffs)
    return SetDelta(delta, ci, sd, replicates, n, f"joint bootstrap of the features, {replicates} replicates of {n} "
                    f"pairs ({subsets} common subsets of {size} each)")
