"""Model folders: one way to write and read a ``config.json`` next to its weights.

Every model of the comparison that saves itself (the FPDM stages, the patch-PCA autoencoder, PIDM)
writes a folder of ``config.json`` + ``model.safetensors`` with ``save_folder`` and reads it back with
``read_config`` / ``read_weights`` / ``load_matching``. The on-disk form is each model's as shipped
(``reference_impl/checkpoints/``, ``baselines/*/checkpoints/``): the safetensors file holds the state
dict, floating tensors optionally stored in a smaller dtype, with optional header metadata; the JSON
is indented as each model always wrote it. Weights files of the diffusers/accelerate ``.bin`` layouts
(CFLD, PoCoLD) are plain tensor dicts: ``save_state_bin`` writes them, and they are read with
``fpdm_bench.models.state.read_state_dict`` (``weights_only=True``: tensors only, no code runs).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from fpdm_bench.errors import BenchError, WeightsMissing
from fpdm_bench.io import atomic_write_text
from fpdm_bench.models.state import cast_state

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"

#: the message of an unreadable safetensors file unless the caller names another (``{path}``, ``{what}``, ``{error}``)
UNREADABLE = ("{path}: not a readable safetensors file ({error}); the {what} is truncated or corrupt — copy it again "
              "or retrain")


def save_folder(folder: str | Path, state: dict, config: dict, *, dtype: torch.dtype | None = None,
                metadata: dict | None = None, weights_name: str = WEIGHTS_NAME, config_name: str = CONFIG_NAME,
                indent: int = 2, newline: bool = True, json_default=None) -> Path:
    """Write ``state`` (a state dict; floating tensors stored as ``dtype`` when given, all on the CPU
    and contiguous) to ``folder/weights_name`` with safetensors header ``metadata``, then ``config``
    to ``folder/config_name`` as JSON (``indent``, a final newline unless ``newline`` is false,
    ``json_default`` for values JSON has no type for). Both are written atomically (a crash never
    leaves a half-written file under the final name). Returns the folder."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = cast_state({k: v.detach().cpu() for k, v in state.items()}, dtype)
    tmp = folder / f".{weights_name}.tmp"
    save_file(tensors, str(tmp), metadata=metadata)
    tmp.replace(folder / weights_name)
    text = json.dumps(config, indent=indent, default=json_default) + ("\n" if newline else "")
    atomic_write_text(folder / config_name, text)
    return folder


def read_config(folder: str | Path, what: str, fmt: str, config_name: str = CONFIG_NAME,
                weights_name: str = WEIGHTS_NAME) -> dict:
    """The config.json of a folder written by ``save_folder``, after checking that the folder holds
    both files and that the config says it is ``fmt`` (its ``format`` field). ``what`` names the
    checkpoint in errors."""
    folder = Path(folder)
    cfg_file = folder / config_name
    for f in (cfg_file, folder / weights_name):
        if not f.is_file():
            raise WeightsMissing(what, f.name, str(folder))
    try:
        saved = json.loads(cfg_file.read_text())
    except json.JSONDecodeError as e:
        raise BenchError(f"{cfg_file}: not valid JSON ({e})") from None
    if saved.get("format") != fmt:
        raise BenchError(f"{cfg_file}: not an {what} (format {saved.get('format')!r})")
    return saved


def read_weights(path: str | Path, what: str, *, float32: bool = False, error: str = UNREADABLE) -> dict:
    """The tensors of a safetensors file (``float32``: floating tensors as float32, whatever dtype they
    were stored in); a truncated or corrupt file is one BenchError naming it (``error``, formatted
    with ``path``, ``what`` and ``error``), not safetensors' raw ``incomplete metadata``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise BenchError(error.format(path=path, what=what, error=e)) from None
    if float32:
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    return state


def load_matching(model: torch.nn.Module, state: dict, path: str | Path, what: str,
                  ignore_missing: str | None = None) -> None:
    """Load ``state`` into ``model``; weights that do not fit its config (another model's file, an
    edited config.json) are one BenchError naming the file and what was expected. Missing keys that
    start with ``ignore_missing`` are allowed (modules the folder does not store)."""
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


def save_state_bin(path: str | Path, state: dict, dtype: torch.dtype | None = None) -> None:
    """A state dict as ``torch.save`` writes it (the ``pytorch_model.bin`` / ``diffusion_pytorch_model.bin``
    of the released layouts), floating tensors as ``dtype`` when given; read back with
    ``fpdm_bench.models.state.read_state_dict`` (``weights_only=True``)."""
    torch.save(cast_state(state, dtype), path)
