"""The bootstrap of a precision/recall/density/coverage difference between two runs, on their stored features.

As for FID (:mod:`.setmetric`): both runs generated the same pairs with the same seeds, so each
replicate draws one set of pair indices (n with replacement, ``numpy.random.default_rng(seed)``) and
applies it to both runs; the reference features are fixed (the refstats cache, as in the runs' own
CIs). A replicate recomputes the four numbers of each run's resampled multiset with the k-NN balls of
the full sets fixed (:meth:`fpdm_bench.metrics.neighbours.Balls.values`: no distance is computed
again), and the interval is the normal one, Δ ± 1.96·sd(replicate differences). A run compared with
itself gives Δ = 0 with a zero-width interval.

Cost: the balls of each run, three exact distance passes (:mod:`fpdm_bench.metrics.neighbours`: tens
of seconds per run at DeepFashion's size, well under a second for the embedded set's 240 pairs);
each replicate one pass over the ball bits (n_reference × n / 8 bytes per run), so the default 50
replicates add little. Memory: the features and the bit matrices of both runs.
"""
from __future__ import annotations

import numpy as np

from fpdm_bench.metrics.neighbours import Balls
from fpdm_bench.stats.setmetric import REPLICATES, SetDelta, normal_ci


def prdc_difference(base: Balls, new: Balls, replicates: int = REPLICATES, seed: int = 0) -> dict[str, SetDelta]:
    """{output: new - base} for precision, recall, density and coverage of two runs whose generated
    rows are aligned pair by pair (same reference features and k), each with its joint-bootstrap CI."""
    if base.n_fake != new.n_fake:
        raise ValueError(f"the two runs' rows are not aligned ({base.n_fake} vs {new.n_fake})")
    n = base.n_fake
    vb, vn = base.values(), new.values()
    rng = np.random.default_rng(seed)
    diffs = {o: [] for o in vb}
    for _ in range(replicates):
        counts = np.bincount(rng.integers(0, n, n), minlength=n)
        rb, rn = base.values(counts), new.values(counts)
        for o in vb:
            diffs[o].append(rn[o] - rb[o])
    method = f"joint bootstrap of the features, {replicates} replicates of {n} pairs, k-NN balls fixed"
    out = {}
    for o in vb:
        delta = vn[o] - vb[o]
        ci, sd = normal_ci(delta, diffs[o])
        out[o] = SetDelta(delta, ci, sd, replicates, n, method, vb[o], vn[o])
    return out
