"""`fpdm-bench sweep`: how each model's quality degrades as its inputs get worse."""
from __future__ import annotations

import click

from fpdm_bench.commands.options import config_options, config_values
from fpdm_bench.errors import BenchError
from fpdm_bench.run_config import RunConfig


def _names(value: str, what: str) -> list[str]:
    items = [x.strip() for x in value.split(",") if x.strip()]
    if not items:
        raise BenchError(f"{what}: give a comma-separated list, got {value!r}")
    return items


def summary_metrics(rows: list[dict]) -> list[str]:
    """The metric keys of the printed summary: those with a value whose metric class says
    ``sweep_summary = True`` (ssim, mae, fid, lpips among the built-ins); none: every key."""
    from fpdm_bench.metrics.base import METRICS

    present = dict.fromkeys(r["metric"] for r in rows if r["value"] is not None)
    out = []
    for key in present:
        try:
            if key in METRICS and getattr(METRICS.get(key), "sweep_summary", False):
                out.append(key)
        except Exception:  # noqa: BLE001 - a broken third-party entry point: not summarised
            continue
    return out


@click.command("sweep")
@click.option("--model", "models", required=True, help="Model name(s), comma-separated, e.g. keypoint-warp,fpdm.")
@click.option("--perturb", "perturbations", required=True,
              help="Perturbation name(s), comma-separated, e.g. pose.jitter,source.occlusion (see `fpdm-bench perturbations`).")
@click.option("--severities", default="0,1,2,3,4,5", show_default=True,
              help="Severities, comma-separated; 0 is the clean run, shared by all perturbations of a model.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Sweep folder: one run directory per cell, plus sweep.csv and sweep.json.")
@config_options(RunConfig, only=("dataset", "data_root", "split", "limit", "protocol", "batch_size", "seed", "device",
                                 "dtype", "workers", "progress"))
def sweep_cmd(models, perturbations, severities, out, **options):
    """Run MODEL(s) on DATASET under each perturbation at each severity, and tabulate the metrics.

    \b
    Each cell is a normal resumable run directory (OUT/<model>/<perturbation>/severity-<s>, and
    OUT/<model>/clean for severity 0). Rerunning the command after an interruption redoes no finished
    cell. The long-format table (model, perturbation, severity, metric, value, ci95) goes to
    OUT/sweep.csv and OUT/sweep.json; a summary is printed.
    """
    from fpdm_bench.api import sweep
    from fpdm_bench.sweep import format_sweep

    try:
        sevs = [int(s) for s in _names(severities, "--severities")]
    except ValueError:
        raise BenchError(f"--severities: expected integers 0-5, got {severities!r}") from None
    values = config_values(RunConfig, options)  # the settings every cell's run shares
    rows = sweep(_names(models, "--model"), _names(perturbations, "--perturb"), out, sevs,
                 log=lambda m: click.echo(m, err=True), **values)
    click.echo(format_sweep(rows, summary_metrics(rows)))
    click.echo(f"table: {out}/sweep.csv", err=True)
