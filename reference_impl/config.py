"""YAML configs for the reference FPDM stages, with dotted ``key=value`` overrides.

A config is a plain nested dict. ``load_config`` takes a preset name (``tiny``, ``paper``: files in
``reference_impl/configs/<stage>/``) or a path to a YAML file, then applies overrides such as
``stage1.clip_path=/models/clip`` or ``train.lr=1e-4`` (values parsed as YAML, so numbers, bools,
lists and ``null`` come out typed).
"""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

from fpdm_bench.errors import BenchError

CONFIG_DIR = Path(__file__).parent / "configs"


def preset_path(stage: str, name: str) -> Path:
    return CONFIG_DIR / stage / f"{name}.yaml"


def _resolve(stage: str, name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise BenchError(f"{p}: config file not found")
        return p
    preset = preset_path(stage, str(name_or_path))
    if not preset.is_file():
        known = sorted(q.stem for q in (CONFIG_DIR / stage).glob("*.yaml"))
        raise BenchError(f"unknown {stage} config {name_or_path!r}: not a file, and not a preset ({', '.join(known)})")
    return preset


def set_dotted(cfg: dict, key: str, value) -> None:
    """cfg['a']['b'] = value for key 'a.b'; missing intermediate dicts are created."""
    parts = key.split(".")
    node = cfg
    for part in parts[:-1]:
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        elif not isinstance(nxt, dict):
            raise BenchError(f"override {key!r}: {part!r} is a value, not a section")
        node = nxt
    node[parts[-1]] = value


def get_dotted(cfg: dict, key: str, default=None):
    node = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def apply_overrides(cfg: dict, overrides: list[str] | tuple[str, ...] | None) -> dict:
    """Return a copy of cfg with each 'dotted.key=value' applied (value parsed as YAML)."""
    out = copy.deepcopy(cfg)
    for item in overrides or ():
        if "=" not in item:
            raise BenchError(f"override {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        set_dotted(out, key.strip(), yaml.safe_load(raw) if raw.strip() else None)
    return out


def load_config(stage: str, name_or_path: str | Path, overrides: list[str] | None = None) -> dict:
    """Load a stage config (preset name or YAML path) and apply dotted overrides."""
    path = _resolve(stage, name_or_path)
    try:
        cfg = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise BenchError(f"{path}: invalid YAML ({e})") from None
    if not isinstance(cfg, dict):
        raise BenchError(f"{path}: a config must be a mapping at the top level")
    cfg = apply_overrides(cfg, overrides)
    cfg.setdefault("_source", str(path))
    return cfg


def resolve_config(config, stage: str) -> dict:
    """A training config from a preset name, a YAML path, or a dict that has the stage's section."""
    if isinstance(config, (str, Path)):
        return load_config(stage, config)
    if not isinstance(config, dict) or stage not in config:
        raise BenchError(f"train_{stage}: config must be a preset name, a YAML path, or a dict with a "
                         f"'{stage}' section")
    return config


def read_saved_config(path: str | Path, what: str, fmt: str, config_name: str, weights_name: str) -> dict:
    """The config.json of a checkpoint folder written by save_pretrained, after checking that the
    folder holds both files and that the file says it is ``fmt``. ``what`` names the checkpoint in errors."""
    import json

    from fpdm_bench.errors import WeightsMissing

    path = Path(path)
    cfg_file = path / config_name
    for f in (cfg_file, path / weights_name):
        if not f.is_file():
            raise WeightsMissing(what, f.name, str(path))
    try:
        saved = json.loads(cfg_file.read_text())
    except json.JSONDecodeError as e:
        raise BenchError(f"{cfg_file}: not valid JSON ({e})") from None
    if saved.get("format") != fmt:
        raise BenchError(f"{cfg_file}: not an {what} (format {saved.get('format')!r})")
    return saved


def load_weights(path: str | Path, what: str) -> dict:
    """The tensors of a checkpoint's safetensors file; a truncated or corrupt file is one BenchError
    naming it (not safetensors' raw ``incomplete metadata``)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise BenchError(f"{path}: not a readable safetensors file ({e}); the {what} is truncated or corrupt — "
                         f"copy it again or retrain") from None


def load_matching(model, state: dict, path: str | Path, what: str, ignore_missing: str | None = None) -> None:
    """Load ``state`` into ``model``; weights that do not fit its config (another model's file, an
    edited config.json) are one BenchError naming the file and what was expected."""
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shape mismatches
        first = str(e).split("\n")[1].strip() if "\n" in str(e) else str(e)
        raise BenchError(f"{path}: its tensors do not fit the {what} its config.json describes ({first})") from None
    if ignore_missing:
        missing = [k for k in missing if not k.startswith(ignore_missing)]
    if missing or unexpected:
        raise BenchError(f"{path}: does not match the {what} its config.json describes ({len(missing)} missing, e.g. "
                         f"{missing[:3]}; {len(unexpected)} unexpected, e.g. {unexpected[:3]}) — a file of another "
                         f"model, or a config.json from another checkpoint")
