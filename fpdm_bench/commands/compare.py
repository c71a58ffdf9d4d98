"""`fpdm-bench compare BASELINE CANDIDATE`: a checkpoint regression check between two results.json.

For every metric both results report, the candidate is compared with the baseline:

- ``same``      equal within the tolerance (``|c - b| <= atol + rtol * |b|``);
- ``better`` / ``WORSE``  outside it, in the metric's direction (read from the metric registry:
  each metric class declares ``higher_is_better``).

Two runs of the same model on the same pairs with different batch sizes are "same": each sample's
noise is identical (one generator per sample), but float32 convolutions sum in a different order
per batch size, so a diffusion model's images can differ by one 8-bit level on a few pixels and its
metrics in the 6th-7th digit — far inside the default tolerance. ``--exact`` asks for bit equality.

It exits with status 1 when any metric is WORSE (or, with ``--exact``, differs at all), so it can
gate a CI job. Results measured under different protocols, on different pairs or under different input
perturbations (``--perturb``) are refused: their numbers are not comparable.
"""
from __future__ import annotations

import math
import sys

import click

from fpdm_bench.errors import BenchError


def compare_results(base, cand, rtol: float = 0.02, atol: float = 1e-4) -> list[dict]:
    """One row per metric both report: baseline, candidate, delta and the verdict."""
    from fpdm_bench.results import Results, metric_names

    base, cand = Results.of(base), Results.of(cand)
    if base.protocol != cand.protocol:
        raise BenchError(f"results use different protocols ({base.protocol} vs {cand.protocol}); compare runs "
                         f"under the same protocol")
    if base.perturbation != cand.perturbation:
        raise BenchError(f"results were measured on differently perturbed inputs ({base.perturbation or 'clean'} vs "
                         f"{cand.perturbation or 'clean'}); compare runs under the same perturbation")
    bs, cs = base.pairs_sha256, cand.pairs_sha256
    if bs and cs and bs != cs:
        raise BenchError("results were measured on different pairs (pairs_sha256 differ); their numbers "
                         "are not comparable")
    rows = []
    for name in metric_names([base, cand]):
        bv, cv = base.value(name), cand.value(name)
        if bv is None or cv is None:
            continue
        delta = cv - bv
        if math.isclose(cv, bv, rel_tol=rtol, abs_tol=atol) or (math.isinf(bv) and bv == cv):
            verdict = "same"
        else:
            up = base.higher_is_better(name)
            if up is None:
                raise BenchError(f"metric {name!r}: no registered metric reports it, so its direction is unknown "
                                 f"(is the package that defines it installed?)")
            verdict = "better" if (delta > 0) == up else "WORSE"
        rows.append({"metric": name, "baseline": bv, "candidate": cv, "delta": delta, "verdict": verdict,
                     "exact": bv == cv})
    return rows


@click.command("compare")
@click.argument("baseline", type=click.Path(exists=True))
@click.argument("candidate", type=click.Path(exists=True))
@click.option("--rtol", type=float, default=0.02, show_default=True, help="Relative tolerance for 'same'.")
@click.option("--atol", type=float, default=1e-4, show_default=True, help="Absolute tolerance for 'same'.")
@click.option("--exact", is_flag=True, help="Fail on any difference (bit-for-bit reproduction).")
def compare_cmd(baseline, candidate, rtol, atol, exact):
    """Regression check: compare CANDIDATE's metrics with BASELINE's (run folders or results.json).

    Exit status 1 when a metric is worse beyond the tolerance (or differs at all, with --exact).
    """
    rows = compare_results(baseline, candidate, rtol=rtol, atol=atol)
    if not rows:
        raise BenchError("the two results have no metric in common")
    click.echo(f"{'metric':<12} {'baseline':>12} {'candidate':>12} {'delta':>11}  verdict")
    for r in rows:
        click.echo(f"{r['metric']:<12} {r['baseline']:>12.5g} {r['candidate']:>12.5g} {r['delta']:>+11.3g}  "
                   f"{r['verdict']}{' (exact)' if r['exact'] else ''}")
    click.echo(f"tolerance: |delta| <= {atol:g} + {rtol:g} * |baseline|")
    failed = [r for r in rows if r["verdict"] == "WORSE" or (exact and not r["exact"])]
    if failed:
        click.echo(f"FAIL: {', '.join(r['metric'] for r in failed)}", err=True)
        sys.exit(1)
    click.echo("OK")
