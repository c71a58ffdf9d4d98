"""A reproduction tolerance from training noise: how far a retrain of a recipe may land from the
shipped checkpoint's metrics and still count as reproducing it.

A retrain on another machine does not repeat the shipped training's floats (docs/training.md,
"Reproduction checks"): it is one more draw of the recipe, like another seed. So the tolerance of a
metric comes from n trainings of the same recipe (the shipped one and retrains with other seeds or on
other machines), as a one-sided prediction bound for one more training:

    bound     = mean -/+ t(n-1, 1 - ALPHA) * sd * sqrt(1 + 1/n)      (on the metric's bad side)
    tolerance = max(distance from shipped to bound, atol + rtol * |shipped|)

``mean`` and ``sd`` (sample standard deviation) are over the n trainings and ``t`` is Student's
quantile, so the bound allows for how little n trainings say about the spread. Under a normal model a
correct retrain falls beyond the bound with probability ALPHA. `compare` measures from the shipped
value, hence the distance from it; the floor is `compare --no-ci`'s default rule, so a recipe whose
trainings agree closely keeps the usual 2 %.

The tolerance file is the one `compare --tolerance-file` reads (its ``tolerance:`` mapping) and also
keeps the trainings it was computed from and the rule, so it says how it was made.
"""
from __future__ import annotations

import math
import statistics

from fpdm_bench.errors import BenchError
from fpdm_bench.stats.verdict import DEFAULT_WITHOUT_CI

#: chance that a correct retrain fails one metric's check, under a normal model
ALPHA = 0.01


def tolerances(shipped: dict[str, float], trainings: list[dict[str, float]], higher_is_better: dict[str, bool],
               alpha: float = ALPHA) -> dict[str, dict]:
    """Per metric of ``shipped``: {tolerance, bound, sd, mean, min, max, n} over ``trainings`` (which
    include the shipped one). Needs at least 3 trainings per metric."""
    from scipy.stats import t as student_t

    if not 0 < alpha < 0.5:
        raise BenchError(f"alpha is the chance a correct retrain fails, between 0 and 0.5; got {alpha}")
    atol, rtol = DEFAULT_WITHOUT_CI
    out = {}
    for key, base in shipped.items():
        values = [t[key] for t in trainings if t.get(key) is not None and math.isfinite(t[key])]
        if len(values) < 3:
            raise BenchError(f"{key}: {len(values)} training(s) with a finite value; a training-noise "
                             "tolerance needs at least 3 (the shipped one and two retrains)")
        if higher_is_better.get(key) is None:
            raise BenchError(f"{key}: no direction known (not a registered metric), so no bad side to bound")
        n, mean, sd = len(values), statistics.fmean(values), statistics.stdev(values)
        half = float(student_t.ppf(1 - alpha, n - 1)) * sd * math.sqrt(1 + 1 / n)
        bound = mean - half if higher_is_better[key] else mean + half
        # how far the shipped value is from the bound on the bad side (negative: it is beyond it)
        room = base - bound if higher_is_better[key] else bound - base
        out[key] = {"tolerance": max(room, atol + rtol * abs(base)), "bound": bound, "sd": sd,
                    "mean": mean, "min": min(values), "max": max(values), "n": n}
    return out


def rule(alpha: float = ALPHA) -> str:
    atol, rtol = DEFAULT_WITHOUT_CI
    return (f"one-sided {100 * (1 - alpha):g} % prediction bound for one more training, mean -/+ "
            f"t(n-1, {1 - alpha:g}) * sd * sqrt(1 + 1/n) on the bad side; tolerance = its distance from the "
            f"shipped value, at least {atol:g} + {100 * rtol:g} % of it (absolute)")
