"""Option parsing shared by the commands (sizes, weight paths, YAML configs, data roots, devices)."""
from __future__ import annotations

from pathlib import Path

import click

from fpdm_bench.errors import DataError, require_device


def parse_size(value) -> list[int] | None:
    """'256x176' -> [256, 176]; None and lists pass through."""
    if value is None or isinstance(value, (list, tuple)):
        return value
    try:
        h, w = (int(v) for v in str(value).lower().split("x"))
        if h < 1 or w < 1:  # 0x0 would reach the resize and fail there with a traceback
            raise ValueError
    except ValueError:
        raise click.BadParameter(f"size must look like HxW with positive H and W, e.g. 256x176 (got {value!r})") from None
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
    """Eager --config callback: the YAML file becomes the defaults of the other options.

    Every key is checked against the command's options (option name with underscores, or its
    parameter name) and its value converted as the option would, so a misspelt key is refused with a
    did-you-mean instead of being ignored, and a wrong type is one line naming the file and key."""
    if value:
        import difflib

        import yaml

        try:
            data = yaml.safe_load(Path(value).read_text(encoding="utf-8")) or {}
        except UnicodeDecodeError as e:
            raise DataError(value, f"not UTF-8 text ({e.reason} at byte {e.start}); save the config as UTF-8") from None
        except (OSError, yaml.YAMLError) as e:
            raise click.BadParameter(f"{value}: {e}") from None
        if not isinstance(data, dict):
            raise click.BadParameter(f"{value}: expected a mapping of option names to values")
        known = {}
        for p in ctx.command.params:
            if p is param or not isinstance(p, click.Option):
                continue
            known[p.name] = p
            for opt in p.opts:
                known.setdefault(opt.lstrip("-").replace("-", "_"), p)
        defaults = {}
        for key, v in data.items():
            name = str(key).replace("-", "_")
            p = known.get(name)
            if p is None:
                close = difflib.get_close_matches(name, list(known), n=1)
                names = sorted({max(q.opts, key=len).lstrip("-").replace("-", "_") for q in known.values()})
                hint = f" (did you mean {close[0]!r}?)" if close else f"; the options are {', '.join(names)}"
                raise DataError(value, f"unknown option {key!r}{hint}")
            if p.multiple and not isinstance(v, list):  # `weights: fid=x.pt` means one value
                v = [v]
            if not p.multiple and p.nargs == 1 and isinstance(v, (list, dict)):
                kind = p.type.name.replace(" range", "")  # click names IntRange "integer range"
                raise DataError(value, f"{key}: expected one {kind} value, got a {type(v).__name__} {v!r}")
            try:
                p.type_cast_value(ctx, v)
            except click.BadParameter as e:
                raise DataError(value, f"{key}: {e.message}") from None
            defaults[p.name] = v
        ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


def existing_data_root(ctx: click.Context, param, value):
    """--data-root callback: a folder given explicitly must exist. The synthetic datasets make their
    set on first use, so a typo'd root would otherwise be created and filled silently; their default
    location (``data/<name>``, $FPDM_BENCH_DATA) is still made on first use, `data synth --out` makes others."""
    if value is None or Path(value).exists():
        return value
    from fpdm_bench.data import DEFAULT_DATA_HOME

    if Path(value).resolve().parent == DEFAULT_DATA_HOME.resolve():
        return value
    raise DataError(value, "dataset folder not found (--data-root); check the path, or make a synthetic set there "
                           f"first with `fpdm-bench data synth --out {value}`")


def valid_device(ctx: click.Context, param, value):
    """--device callback: cuda without CUDA is one line here, not a traceback from the first tensor."""
    if value is not None:
        require_device(value)
    return value


def training_options(config_help: str):
    """The options every training command shares (config preset, data, output, seed, device, steps,
    overrides, progress), in one place; the command's function takes them as keyword arguments
    config_name, dataset, data_root, split, out_dir, seed, device, max_steps, overrides, quiet."""
    options = [
        click.option("--config", "config_name", default="tiny", show_default=True, help=config_help),
        click.option("--dataset", default="synthetic", show_default=True, help="registered dataset name"),
        click.option("--data-root", default=None, callback=existing_data_root,
                     help="dataset root (default: data/<dataset>)"),
        click.option("--split", default="train", show_default=True),
        click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="output folder"),
        click.option("--seed", default=0, show_default=True, type=int),
        click.option("--device", default="cpu", show_default=True, callback=valid_device),
        click.option("--max-steps", default=None, type=click.IntRange(min=1), help="optimiser steps (overrides train.max_steps)"),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                     help="config override, e.g. train.lr=1e-4"),
        click.option("--quiet", is_flag=True, help="no progress bar"),
    ]

    def decorate(f):
        for opt in reversed(options):
            f = opt(f)
        return f

    return decorate
