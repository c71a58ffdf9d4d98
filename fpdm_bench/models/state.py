"""Reading and strictly loading state dicts with one clear error, for adapters that port an official model."""
from __future__ import annotations

from pathlib import Path

import torch

from fpdm_bench.errors import BenchError


def load_strict(module: torch.nn.Module, state_dict: dict, source: str, architecture: str) -> None:
    """Load ``state_dict`` into ``module`` with every key present, none extra and every shape equal;
    otherwise one BenchError naming ``source`` and the first missing / unexpected / misshapen key."""
    want = module.state_dict()
    missing, extra = sorted(set(want) - set(state_dict)), sorted(set(state_dict) - set(want))
    shapes = [f"{k} {tuple(state_dict[k].shape)} != {tuple(want[k].shape)}" for k in want
              if k in state_dict and tuple(state_dict[k].shape) != tuple(want[k].shape)]
    if missing or extra or shapes:
        parts = [f"{len(missing)} missing (e.g. {missing[0]})" if missing else "",
                 f"{len(extra)} unexpected (e.g. {extra[0]})" if extra else "",
                 f"{len(shapes)} of another shape (e.g. {shapes[0]})" if shapes else ""]
        raise BenchError(f"{source}: weights do not fit this {architecture} architecture: "
                         f"{'; '.join(p for p in parts if p)}")
    module.load_state_dict(state_dict, strict=True)


def read_state_dict(path: str | Path) -> dict:
    """A plain state dict saved with ``torch.save`` (as accelerate's ``save_state`` and diffusers'
    ``save_pretrained(safe_serialization=False)`` write them), read with ``weights_only=True``; an
    unreadable file or another object is one BenchError naming the file."""
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is one clear error
        raise BenchError(f"{path}: not a readable state dict ({type(e).__name__}: {str(e).splitlines()[0][:160]})") from None
    if not isinstance(sd, dict):
        raise BenchError(f"{path}: expected a state dict, found {type(sd).__name__}")
    return sd


def cast_state(sd: dict, dtype=None) -> dict:
    """A state dict with its floating tensors in ``dtype`` (None = unchanged), contiguous, for saving."""
    return {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).contiguous() for k, v in sd.items()}
