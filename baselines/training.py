"""The click command around a baseline's trainer. What the trainers themselves share (configs, the
opening, the loop, the record) is ``fpdm_bench.modeling.training``.
"""
from __future__ import annotations

from pathlib import Path


def make_train_command(what: str, configs: str, load_config, train_fn):
    """The ``fpdm-bench <baseline> train`` click command: options shared by every trainer
    (``fpdm_bench.commands.options.training_options``), config loading, the data, a one-line result."""
    import sys

    import click

    from fpdm_bench.commands.options import training_options

    @click.command("train", help=f"Train a {what} (default: the tiny config on the embedded synthetic set). "
                                 "Rerunning resumes.")
    @training_options(f"preset ({configs}) or YAML file")
    def command(config_name, dataset, data_root, split, out_dir, seed, device, max_steps, overrides, quiet):
        from fpdm_bench.data import open_dataset

        cfg = load_config(config_name, list(overrides))
        ds = open_dataset(dataset, root=data_root, split=split)
        line = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
        s = train_fn(cfg, ds, out_dir, seed=seed, device=device, max_steps=max_steps, progress=not quiet, command=line)
        click.echo(f"trained {s['steps']} steps in {s['seconds']} s; loss {s['first_loss_mean']:.4f} -> "
                   f"{s['final_loss_mean']:.4f}; saved {out_dir}")

    return command
