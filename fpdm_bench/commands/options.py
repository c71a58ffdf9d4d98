"""Option parsing shared by the commands (sizes, weight paths, YAML configs)."""
from __future__ import annotations

from pathlib import Path

import click


def parse_size(value) -> list[int] | None:
    """'256x176' -> [256, 176]; None and lists pass through."""
    if value is None or isinstance(value, (list, tuple)):
        return value
    try:
        h, w = (int(v) for v in str(value).lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"size must look like HxW, e.g. 256x176 (got {value!r})") from None
    return [h, w]


def parse_weights(values) -> dict[str, str]:
    """('NAME=PATH', ...) -> {NAME: PATH}."""
    out = {}
    for v in values or ():
        name, sep, path = v.partition("=")
        if not sep:
            raise click.BadParameter(f"--weights takes NAME=PATH (got {v!r})")
        out[name] = path
    return out


def parse_key_values(values, option: str) -> dict:
    """('KEY=VALUE', ...) -> {KEY: VALUE}, each VALUE read as a YAML scalar (0.2, true, [1, 2], text)."""
    import yaml

    out = {}
    for v in values or ():
        key, sep, raw = str(v).partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{option} takes KEY=VALUE (got {v!r})")
        out[key.replace("-", "_")] = yaml.safe_load(raw)
    return out


def load_config(ctx: click.Context, param, value):
    """Eager --config callback: the YAML file becomes the defaults of the other options."""
    if value:
        import yaml

        try:
            data = yaml.safe_load(Path(value).read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise click.BadParameter(f"{value}: {e}") from None
        if not isinstance(data, dict):
            raise click.BadParameter(f"{value}: expected a mapping of option names to values")
        ctx.default_map = {**(ctx.default_map or {}), **{k.replace("-", "_"): v for k, v in data.items()}}
    return value


def training_options(config_help: str):
    """The options every training command shares (config preset, data, output, seed, device, steps,
    overrides, progress), in one place; the command's function takes them as keyword arguments
    config_name, dataset, data_root, split, out_dir, seed, device, max_steps, overrides, quiet."""
    options = [
        click.option("--config", "config_name", default="tiny", show_default=True, help=config_help),
        click.option("--dataset", default="synthetic", show_default=True, help="registered dataset name"),
        click.option("--data-root", default=None, help="dataset root (default: data/<dataset>)"),
        click.option("--split", default="train", show_default=True),
        click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="output folder"),
        click.option("--seed", default=0, show_default=True, type=int),
        click.option("--device", default="cpu", show_default=True),
        click.option("--max-steps", default=None, type=int, help="optimiser steps (overrides train.max_steps)"),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                     help="config override, e.g. train.lr=1e-4"),
        click.option("--quiet", is_flag=True, help="no progress bar"),
    ]

    def decorate(f):
        for opt in reversed(options):
            f = opt(f)
        return f

    return decorate
