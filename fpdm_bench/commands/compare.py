"""`fpdm-bench compare BASE NEW`: did the new checkpoint get worse? A regression check with statistics.

For every metric both runs report: the difference new - base, its 95 % CI and a verdict, better /
no change / WORSE. WORSE needs both the CI to exclude 0 on the bad side and the difference to exceed
the metric's tolerance. The CI comes from the paired bootstrap of per-pair differences (per-sample
metrics), the paired bootstrap of per-video differences (sequence metrics), the joint bootstrap of
stored features (FID, KID, precision/recall/density/coverage), FID∞ when the runs scored different
numbers of images, or, for runs without per-sample data, the two results.json CIs. The statistics
live in :mod:`fpdm_bench.stats` (see :mod:`fpdm_bench.stats.comparison` for which CI a metric gets and
:mod:`fpdm_bench.stats.verdict` for the rule and the tolerances).

Exit status 1 when any metric is WORSE (or, with ``--exact``, differs at all), 0 otherwise, so it can
gate a CI job; runs measured under different protocols, datasets, pairs, input perturbations or
reference sets are refused (exit 2, one-line error).

What changed from the fixed-tolerance compare: ``--rtol``/``--atol`` keep their meaning (differences
within atol + rtol·|base| are never a regression) but are now a floor under the CI; without any
CI they alone decide, with the old defaults (1e-4 + 2 %). The verdict "same" is now "no change".
"""
from __future__ import annotations

import sys
from pathlib import Path

import click


def compare_results(base, cand, rtol: float | None = None, atol: float | None = None, **options) -> list[dict]:
    """One dict per compared metric: metric, baseline, candidate, delta, ci95, verdict, exact, … (the
    rows of :func:`fpdm_bench.stats.comparison.compare_runs`). ``options``: fields of
    :class:`fpdm_bench.stats.comparison.Options`."""
    from fpdm_bench.stats.comparison import Options, compare_runs

    c = compare_runs(base, cand, Options(rtol=rtol, atol=atol, **options))
    return [{"metric": r.metric, "baseline": r.base, "candidate": r.new, "delta": r.delta, "ci95": r.ci95,
             "tolerance": r.tolerance, "verdict": r.verdict, "reason": r.reason, "method": r.method,
             "exact": r.exact, "gating": r.gating} for r in c.rows]


@click.command("compare")
@click.argument("baseline", type=click.Path(exists=True))
@click.argument("candidate", type=click.Path(exists=True))
@click.option("--tolerance", "tolerance", multiple=True, metavar="METRIC=VALUE[,...]",
              help="Per-metric tolerance: absolute (fid=0.5) or relative to the baseline (lpips=1%). Repeatable.")
@click.option("--tolerance-file", type=click.Path(exists=True, dir_okay=False),
              help="YAML mapping metric: tolerance (kept with a project's checkpoints); --tolerance wins.")
@click.option("--rtol", type=float, default=None,
              help="Relative tolerance of the metrics not named by --tolerance [default: 0.001 under a CI, "
                   "0.02 without one].")
@click.option("--atol", type=float, default=None,
              help="Absolute tolerance of the metrics not named by --tolerance [default: 0 under a CI, 1e-4 without].")
@click.option("--exact", is_flag=True, help="Also fail on any difference (bit-for-bit reproduction).")
@click.option("--no-ci", is_flag=True,
              help="Decide by the tolerance alone, as for a reproduction check (a retrain against the shipped "
                   "metrics): |difference| beyond --atol + --rtol*|base| (default 1e-4 + 2 %) is a change, "
                   "whatever the CI. The CIs are still shown.")
@click.option("--resamples", type=int, default=2000, show_default=True,
              help="Paired-bootstrap resamples for the per-sample metrics.")
@click.option("--set-replicates", type=int, default=50, show_default=True,
              help="Joint-bootstrap replicates for the set metrics on stored features (FID, KID, PRDC).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every bootstrap.")
@click.option("--no-features", is_flag=True,
              help="Set metrics (FID, KID, PRDC) from the results.json CIs only (skip the feature bootstrap and FID∞).")
@click.option("--no-fid-inf", is_flag=True, help="Do not compute FID∞ when the runs scored the same number of images.")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json", "csv"]), default="text", show_default=True,
              help="text: the table and notes; markdown: a CI summary; json: everything; csv: one row per metric "
                   "(the columns of fpdm_bench.api.compare's DataFrame). A FAIL line goes to stderr in every format.")
@click.option("--markdown", "markdown_file", type=click.Path(dir_okay=False),
              help="Also append the Markdown summary to this file (e.g. $GITHUB_STEP_SUMMARY, a PR comment body).")
def compare_cmd(baseline, candidate, tolerance, tolerance_file, rtol, atol, exact, no_ci, resamples, set_replicates,
                seed, no_features, no_fid_inf, fmt, markdown_file):
    """Regression check: compare CANDIDATE (new) with BASELINE (run folders or results.json files).

    \b
    Per metric: the difference, its 95 % CI (paired bootstrap over pairs, or over videos for the
    sequence metrics; joint bootstrap of the stored features for FID, KID and precision/recall/
    density/coverage; FID∞ when the numbers of images differ) and a verdict:
      WORSE      the CI excludes 0 on the bad side and |difference| > tolerance
      better     the same on the good side
      no change  otherwise
    Exit status 1 when a metric is WORSE (or differs at all, with --exact).
    """
    from fpdm_bench.api import comparison
    from fpdm_bench.stats import summary

    c = comparison(baseline, candidate, tolerance=tolerance, tolerance_file=tolerance_file, rtol=rtol, atol=atol,
                   resamples=resamples, set_replicates=set_replicates, seed=seed, features=not no_features,
                   fid_infinity=not no_fid_inf, use_ci=not no_ci)
    failed = bool(c.failures(exact))
    if fmt == "text":  # the last line, OK or FAIL, goes to stdout or (FAIL) stderr, as it always did
        click.echo(summary.text(c, exact, with_headline=False))
    elif fmt == "csv":
        from fpdm_bench.io import csv_text
        from fpdm_bench.stats.comparison import COLUMNS

        click.echo(csv_text(c.records(), COLUMNS), nl=False)
    else:
        click.echo((summary.markdown if fmt == "markdown" else summary.as_json)(c, exact).rstrip("\n"))
    if markdown_file:
        Path(markdown_file).parent.mkdir(parents=True, exist_ok=True)
        with open(markdown_file, "a") as f:  # append: $GITHUB_STEP_SUMMARY collects several steps
            f.write(summary.markdown(c, exact))
    if fmt == "text" or failed:
        click.echo(summary.headline(c, exact), err=failed)
    if failed:
        sys.exit(1)
