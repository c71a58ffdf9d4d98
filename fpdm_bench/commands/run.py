"""`fpdm-bench run` (generate + score a model on a dataset's pairs) and `fpdm-bench merge`."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from fpdm_bench.commands.options import config_options, config_values, load_config
from fpdm_bench.run_config import RunConfig


@click.command("run")
@click.option("--config", type=click.Path(dir_okay=False, exists=True), callback=load_config, is_eager=True,
              expose_value=False, help="YAML file of option values (flags given here override it).")
@config_options(RunConfig)
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Sampling steps (diffusion models; a --model-arg).")
@click.option("--guidance", type=float, default=None,
              help="Guidance scale (diffusion models; a --model-arg). Each model applies guidance as its official "
                   "code does: see `fpdm-bench models` and the model's documentation.")
@click.option("--scheduler", default=None, help="Sampler, e.g. ddpm, ddim, dpmpp (diffusion models; a --model-arg).")
def run_cmd(steps, guidance, scheduler, **options):
    """Generate and score MODEL on DATASET's pairs; writes OUT/samples, samples.jsonl, results.json.

    \b
    Rerunning the same command resumes an interrupted run, and reads the results of a finished one
    without running anything. One process per shard: a second launch on the same run directory is
    refused. Under torchrun (or accelerate launch) each rank runs a strided share of the pairs and
    rank 0 writes results.json:
      torchrun --nproc_per_node 8 $(which fpdm-bench) run --model fpdm --dataset deepfashion --out runs/df
    """
    from fpdm_bench.api import run
    from fpdm_bench.report import format_table

    values = config_values(RunConfig, options)
    results = run(**values, steps=steps, guidance=guidance, scheduler=scheduler, log=lambda m: click.echo(m, err=True))
    if results is not None:
        click.echo(format_table([results]))
        click.echo(f"results: {Path(values['out']) / 'results.json'}", err=True)


@click.command("merge")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
def merge_cmd(run_dir):
    """Write RUN_DIR/results.json from the finished shards of a sharded run."""
    from fpdm_bench.report import format_table
    from fpdm_bench.runner import merge

    results = merge(run_dir, log=lambda m: click.echo(m, err=True))
    if results is None:
        sys.exit(1)
    click.echo(format_table([results]))
