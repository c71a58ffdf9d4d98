"""`fpdm-bench sweep`: how each model's quality degrades as its inputs get worse."""
from __future__ import annotations

import click

from fpdm_bench.commands.options import existing_data_root, valid_device
from fpdm_bench.errors import BenchError


def _names(value: str, what: str) -> list[str]:
    items = [x.strip() for x in value.split(",") if x.strip()]
    if not items:
        raise BenchError(f"{what}: give a comma-separated list, got {value!r}")
    return items


@click.command("sweep")
@click.option("--model", "models", required=True, help="Model name(s), comma-separated, e.g. keypoint-warp,fpdm.")
@click.option("--dataset", default="synthetic", show_default=True, help="Dataset name (see `fpdm-bench datasets`).")
@click.option("--perturb", "perturbations", required=True,
              help="Perturbation name(s), comma-separated, e.g. pose.jitter,source.occlusion (see `fpdm-bench perturbations`).")
@click.option("--severities", default="0,1,2,3,4,5", show_default=True,
              help="Severities, comma-separated; 0 is the clean run, shared by all perturbations of a model.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Sweep folder: one run directory per cell, plus sweep.csv and sweep.json.")
@click.option("--data-root", default=None, callback=existing_data_root, help="Dataset folder (default: data/<dataset>).")
@click.option("--split", default="test", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N pairs of the split.")
@click.option("--protocol", default="standard", show_default=True, help="Evaluation protocol of every cell.")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True,
              help="Run seed: each pair's noise and each perturbation draw come from (seed, pair id).")
@click.option("--device", default=None, callback=valid_device, help="cpu or cuda[:i] (default: cuda when available).")
@click.option("--dtype", type=click.Choice(["float32", "float16", "bfloat16"]), default="float32", show_default=True)
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True, help="DataLoader workers per run.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def sweep_cmd(models, dataset, perturbations, severities, out, data_root, split, limit, protocol, batch_size, seed,
              device, dtype, workers, no_progress):
    """Run MODEL(s) on DATASET under each perturbation at each severity, and tabulate the metrics.

    \b
    Each cell is a normal resumable run directory (OUT/<model>/<perturbation>/severity-<s>, and
    OUT/<model>/clean for severity 0). Rerunning the command after an interruption redoes no finished
    cell. The long-format table (model, perturbation, severity, metric, value, ci95) goes to
    OUT/sweep.csv and OUT/sweep.json; a summary is printed.
    """
    import torch

    from fpdm_bench.runner import RunConfig
    from fpdm_bench.sweep import format_sweep, sweep

    try:
        sevs = [int(s) for s in _names(severities, "--severities")]
    except ValueError:
        raise BenchError(f"--severities: expected integers 0-5, got {severities!r}") from None
    base = RunConfig(model="", dataset=dataset, out="", data_root=data_root, split=split, limit=limit,
                     batch_size=batch_size, seed=seed, device=device or ("cuda" if torch.cuda.is_available() else "cpu"),
                     dtype=dtype, protocol=protocol, workers=workers, progress=not no_progress)
    rows = sweep(base, _names(models, "--model"), _names(perturbations, "--perturb"), sevs, out,
                 log=lambda m: click.echo(m, err=True))
    shown = [m for m in ("ssim", "mae", "fid", "lpips") if any(r["metric"] == m and r["value"] is not None for r in rows)]
    click.echo(format_sweep(rows, shown))
    click.echo(f"table: {out}/sweep.csv", err=True)
