"""Make ``import torchvision`` work on a CPU-only torch with a CUDA-built torchvision.

PyPI has no CPU build of torchvision. The wheel that matches torch 2.13 installs, but its compiled
ops library (``torchvision/_C.so``) does not load against the CPU torch, and torchvision's
``_meta_registrations`` then fails on ``torch.library.register_fake("torchvision::nms")`` because
the op was never defined. Defining the two op schemas it registers fake kernels for lets the
import go through; nothing in fpdm-bench calls ``nms`` itself.

This module must run before anything imports torchvision, transformers or diffusers (the latter two
import torchvision when it is installed). It does nothing when the real ops library loads.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_lib = None  # the torch.library.Library must stay alive for the schemas to stay defined
state = "not-needed"  # "not-needed" | "real-ops" | "shimmed" | "no-torchvision"


def _ops_library() -> Path | None:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("_C*.so")) + sorted(
        Path(next(iter(spec.submodule_search_locations))).glob("_C*.pyd")
    )
    return found[0] if found else None


def _op_defined(name: str) -> bool:
    import torch

    try:
        getattr(torch.ops.torchvision, name)
        return True
    except (AttributeError, RuntimeError):
        return False


def apply() -> str:
    """Define the missing torchvision op schemas if (and only if) the real ops cannot load."""
    global _lib, state
    if state in ("shimmed", "real-ops"):
        return state
    if importlib.util.find_spec("torchvision") is None:
        state = "no-torchvision"
        return state
    import torch

    if all(_op_defined(n) for n in _SCHEMAS):
        state = "real-ops"
        return state
    lib_path = _ops_library()
    if lib_path is not None:
        try:
            torch.ops.load_library(str(lib_path))
        except OSError:
            pass  # the CPU-torch / CUDA-torchvision mismatch: fall through to the shim
    if all(_op_defined(n) for n in _SCHEMAS):
        state = "real-ops"
        return state
    _lib = torch.library.Library("torchvision", "DEF")
    for name, schema in _SCHEMAS.items():
        if not _op_defined(name):
            _lib.define(schema)
    state = "shimmed"
    return state


apply()
