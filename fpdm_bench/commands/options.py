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
