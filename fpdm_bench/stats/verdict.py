"""Per-metric verdicts — better / no change / WORSE — from the CI of the difference and a tolerance.

With a 95 % CI [lo, hi] of Δ = new - base, oriented by the metric's direction (``higher_is_better``
from the metric registry):

- **WORSE**  the CI excludes 0 on the bad side (hi < 0 for a higher-is-better metric, lo > 0 for a
  lower-is-better one) *and* |Δ| exceeds the tolerance;
- **better** the same on the good side;
- **no change** otherwise ("no detectable change": the CI contains 0, or |Δ| is within tolerance).

The tolerance of a metric is absolute (``fid=0.5``) or relative to the baseline value (``lpips=1%``),
from ``--tolerance`` / a tolerance file; metrics not named there get ``atol + rtol·|base|``
(``--atol``/``--rtol``). Without any CI (hand-written results, results.json without intervals) the
tolerance alone decides, as `compare` always did: |Δ| ≤ tolerance is no change, beyond it the sign of
Δ decides; there the default tolerance is the old one, 1e-4 + 2 % of the baseline. Under a CI the
default is only a floor against float noise, 0.1 % of the baseline: the CI does the deciding.

A tolerance file is YAML, a mapping from metric key to tolerance (optionally under ``tolerance:``)::

    # compare tolerances for this checkpoint series
    fid: 0.5
    fid_inf: 0.5
    ssim: 0.005
    lpips: 1%
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from fpdm_bench.errors import BenchError

BETTER, SAME, WORSE, SKIPPED, INFO = "better", "no change", "WORSE", "not compared", "info"

# Default tolerance: (atol, rtol) with a CI, and without one (the fixed-tolerance rule of old).
DEFAULT_WITH_CI = (0.0, 1e-3)
DEFAULT_WITHOUT_CI = (1e-4, 0.02)


@dataclass(frozen=True)
class Tolerance:
    abs: float = 0.0
    rel: float = 0.0

    def of(self, base: float) -> float:
        return self.abs + self.rel * abs(base) if math.isfinite(base) else self.abs

    def __str__(self) -> str:
        parts = ([f"{self.abs:g}"] if self.abs or not self.rel else []) + ([f"{100 * self.rel:g}%"] if self.rel else [])
        return " + ".join(parts)


def parse_one(key: str, value) -> Tolerance:
    """``0.5`` or ``"0.5"`` (absolute), ``"1%"`` (relative to the baseline)."""
    text = str(value).strip()
    try:
        if text.endswith("%"):
            t = Tolerance(rel=float(text[:-1]) / 100)
        else:
            t = Tolerance(abs=float(text))
    except ValueError:
        raise BenchError(f"tolerance of {key!r}: {value!r} is neither a number nor a percentage like 1%") from None
    if t.abs < 0 or t.rel < 0 or not (math.isfinite(t.abs) and math.isfinite(t.rel)):
        raise BenchError(f"tolerance of {key!r} must be a finite number >= 0, got {value!r}")
    return t


def parse_spec(specs) -> dict[str, Tolerance]:
    """``["fid=0.5,ssim=0.005", "lpips=1%"]`` -> {metric: Tolerance}."""
    out = {}
    for spec in specs or ():
        for item in str(spec).split(","):
            if not item.strip():
                continue
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise BenchError(f"--tolerance takes METRIC=VALUE[,METRIC=VALUE...], got {item!r}")
            out[key.strip()] = parse_one(key.strip(), value)
    return out


def load_file(path) -> dict[str, Tolerance]:
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise BenchError(f"{path}: cannot read the tolerance file ({e})") from None
    if isinstance(data, dict) and isinstance(data.get("tolerance"), dict):
        data = data["tolerance"]
    if not isinstance(data, dict):
        raise BenchError(f"{path}: a tolerance file is a mapping of metric: tolerance (e.g. `fid: 0.5`)")
    return {str(k): parse_one(str(k), v) for k, v in data.items()}


def decide(delta: float, ci: list[float] | None, higher_is_better: bool, tolerance: float) -> tuple[str, str]:
    """(verdict, reason) for a difference ``delta`` = new - base."""
    if math.isnan(delta):
        return SKIPPED, "difference undefined"
    good = delta > 0 if higher_is_better else delta < 0
    if math.isinf(delta):
        return (BETTER if good else WORSE), "infinite difference"
    beyond = abs(delta) > tolerance
    if ci is None:
        if not beyond:
            return SAME, "within tolerance (no CI)"
        return (BETTER if good else WORSE), "beyond tolerance (no CI)"
    lo, hi = ci
    bad_side = hi < 0 if higher_is_better else lo > 0
    good_side = lo > 0 if higher_is_better else hi < 0
    if not (bad_side or good_side):
        return SAME, "CI contains 0"
    if not beyond:
        return SAME, "CI excludes 0, within tolerance"
    return (WORSE if bad_side else BETTER), "CI excludes 0, beyond tolerance"
