"""YAML configs for the reference FPDM stages, with dotted ``key=value`` overrides.

A config is a plain nested dict. ``load_config`` takes a preset name (``tiny``, ``paper``: files in
``reference_impl/configs/<stage>/``) or a path to a YAML file, then applies overrides such as
``stage1.clip_path=/models/clip`` or ``train.lr=1e-4`` (``fpdm_bench.modeling.training.apply_overrides``:
values parsed as YAML, so numbers, bools, lists and ``null`` come out typed).
"""
from __future__ import annotations

from pathlib import Path

import yaml

from fpdm_bench.errors import BenchError
from fpdm_bench.modeling.training import apply_overrides

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
