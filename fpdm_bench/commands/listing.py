"""`fpdm-bench models | datasets | perturbations`: what is registered here (built-ins and plug-ins)."""
from __future__ import annotations

import click


@click.command("models")
@click.option("--floors", "floors_only", is_flag=True,
              help="Only the floors (models that bound every table and are never ranked), one name per line.")
def models_cmd(floors_only):
    """List the registered models (adapters)."""
    from fpdm_bench.models import MODELS

    if floors_only:
        from fpdm_bench.models import floor_names

        for name in floor_names():
            click.echo(name)
        return
    for name in MODELS.names():
        click.echo(f"{name:16s} {MODELS.help(name)}")


@click.command("perturbations")
def perturbations_cmd():
    """List the input perturbations of --perturb and `sweep`, with their severity levels 1-5."""
    from fpdm_bench.perturb import PERTURBATIONS

    for name in PERTURBATIONS.names():
        click.echo(f"{name:18s} {PERTURBATIONS.help(name)}")


@click.command("datasets")
def datasets_cmd():
    """List the registered datasets and where each is looked for."""
    from fpdm_bench.data import DATASETS, default_root

    for name in DATASETS.names():
        click.echo(f"{name:18s} {DATASETS.help(name)}  [default root: {default_root(name)}]")
