"""`fpdm-bench compare BASELINE CANDIDATE`: a checkpoint regression check between two results.json.

For every metric both results report, the candidate is compared with the baseline:

- ``same``      equal within the tolerance (``|c - b| <= atol + rtol * |b|``);
- ``better`` / ``WORSE``  outside it, in the metric's direction (fid, kid, lpips, mae, pose_dist:
  lower is better).

It exits with status 1 when any metric is WORSE (or, with ``--exact``, differs at all), so it can
gate a CI job. Results measured under different protocols or on different pairs are refused: their
numbers are not comparable.
"""
from __future__ import annotations

import math
import sys

import click

from fpdm_bench.errors import BenchError


def compare_results(base: dict, cand: dict, rtol: float = 0.02, atol: float = 1e-4) -> list[dict]:
    """One row per metric both report: baseline, candidate, delta and the verdict."""
    from fpdm_bench.report import LOWER_IS_BETTER, _metric_names

    bp, cp = _protocol(base), _protocol(cand)
    if bp != cp:
        raise BenchError(f"results use different protocols ({bp} vs {cp}); compare runs under the same protocol")
    bs, cs = (r.get("dataset", {}).get("pairs_sha256_run") for r in (base, cand))
    if bs and cs and bs != cs:
        raise BenchError("results were measured on different pairs (pairs_sha256 differ); their numbers "
                         "are not comparable")
    rows = []
    for name in _metric_names([base, cand]):
        b, c = base.get("metrics", {}).get(name) or {}, cand.get("metrics", {}).get(name) or {}
        bv, cv = b.get("value"), c.get("value")
        if bv is None or cv is None:
            continue
        delta = cv - bv
        if math.isclose(cv, bv, rel_tol=rtol, abs_tol=atol) or (math.isinf(bv) and bv == cv):
            verdict = "same"
        else:
            better = delta < 0 if name in LOWER_IS_BETTER else delta > 0
            verdict = "better" if better else "WORSE"
        rows.append({"metric": name, "baseline": bv, "candidate": cv, "delta": delta, "verdict": verdict,
                     "exact": bv == cv})
    return rows


def _protocol(r: dict) -> str:
    p = r.get("protocol", {})
    return str(p.get("name", "?")) if isinstance(p, dict) else str(p)


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
    from fpdm_bench.report import load_results

    rows = compare_results(load_results(baseline), load_results(candidate), rtol=rtol, atol=atol)
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
