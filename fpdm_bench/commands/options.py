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


def _key_values(ctx, param, value):
    return parse_key_values(value, param.opts[0])


def _name_paths(ctx, param, value):
    return parse_weights(value)


def _size(ctx, param, value):
    return parse_size(value)


# How the command line reads a config field of each ``kind`` (RunConfig's field metadata): click
# arguments and a callback that turns the text into the field's value.
_KINDS = {
    "size": dict(callback=_size),
    "key_values": dict(multiple=True, metavar="KEY=VALUE", callback=_key_values),
    "name_paths": dict(multiple=True, metavar="NAME=PATH", callback=_name_paths),
    "device": dict(callback=valid_device),
    "data_root": dict(callback=existing_data_root),
    "folder": dict(type=click.Path(file_okay=False)),
    "existing_folder": dict(type=click.Path(exists=True, file_okay=False)),
    "negated_flag": dict(is_flag=True),
}


def config_options(config_cls, only: tuple[str, ...] | None = None):
    """Decorate a click command with one option per field of the dataclass ``config_cls``, from each
    field's metadata (``fpdm_bench.runner.option``): help text, default, range, choices, and how the
    text is read (``kind``). A boolean field becomes a flag; ``kind="negated_flag"`` a ``--no-NAME``
    flag whose parameter is ``no_NAME`` (:func:`config_values` turns it back). ``only``: these fields
    (a command that shares some of the settings, e.g. `sweep`)."""
    import dataclasses

    opts = []
    for f in dataclasses.fields(config_cls):
        if only is not None and f.name not in only:
            continue
        meta = dict(f.metadata.get("cli", {}))
        kind = meta.pop("kind", None)
        kw = {**_KINDS.get(kind, {}), "help": f.metadata.get("help")}
        flag = meta.pop("flag", None) or "--" + f.name.replace("_", "-")
        name = f.name
        if kind == "negated_flag":  # off unless given: --no-progress turns progress (default True) off
            flag, name = "--no-" + f.name.replace("_", "-"), "no_" + f.name
            meta["default"] = False
        elif f.type in (bool, "bool"):
            kw["is_flag"] = True
        low = meta.pop("min", None)
        if low is not None:
            kw["type"] = click.IntRange(min=low)
        choices = meta.pop("choices", None)
        if choices:
            kw["type"] = click.Choice(list(choices))
        if "default" in meta:
            kw["default"] = meta.pop("default")
        elif not meta.get("required") and f.default is not dataclasses.MISSING and not kw.get("multiple"):
            kw["default"] = f.default
        if kw.get("default") is not None and not kw.get("is_flag"):
            kw["show_default"] = True
        if f.type in ("int", "int | None") and "type" not in kw:
            kw["type"] = int
        kw.update(meta)
        opts.append(click.option(flag, name, **kw))

    def decorate(fn):
        for opt in reversed(opts):
            fn = opt(fn)
        return fn
    return decorate


def config_values(config_cls, values: dict) -> dict:
    """The keyword arguments of ``config_cls`` from the parsed options of :func:`config_options`
    (``no_NAME`` flags turned back into ``NAME``); other keys are left out."""
    import dataclasses

    out = {}
    for f in dataclasses.fields(config_cls):
        if f.metadata.get("cli", {}).get("kind") == "negated_flag":
            if "no_" + f.name in values:
                out[f.name] = not values["no_" + f.name]
        elif f.name in values:
            out[f.name] = values[f.name]
    return out
