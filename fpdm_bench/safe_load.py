"""Load a ``torch.save`` pickle that holds more than tensors, without running its code.

Official checkpoints often pickle a config object next to the weights (PIDM's ``last.pt`` holds a
tensorfn/pydantic ``DiffusionConfig`` under ``conf``), so ``torch.load(weights_only=True)`` refuses
them and a plain ``torch.load`` would import and call whatever the file names. This unpickler admits
exactly: what tensors and state dicts are made of (torch's rebuild functions, storages, dtypes,
``OrderedDict``), a few inert builtins, and - for module prefixes the caller names - *stand-ins*:
classes that record the name and the state the pickle gives them and do nothing else. Any other
global is refused with the file and the name, before anything is called.
"""
from __future__ import annotations

import _compat_pickle
import builtins
import collections
import pickle
from pathlib import Path
from types import SimpleNamespace

import torch

from fpdm_bench.errors import BenchError

# (module, name) the tensor machinery of torch.save needs; storages are resolved by torch itself.
_TORCH = {
    ("torch._utils", "_rebuild_tensor"), ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_tensor_v3"), ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"), ("torch", "Size"), ("torch", "device"),
    ("collections", "OrderedDict"),
}
_DTYPES = {name for name in dir(torch) if isinstance(getattr(torch, name, None), torch.dtype)}
# builtins that build plain values; _codecs.encode is how protocol 2 pickles bytes
_VALUES = {("builtins", n): getattr(builtins, n) for n in ("set", "frozenset", "slice", "complex", "bytearray", "range")}


class StandIn:
    """An inert object in place of a class of the checkpoint's code base: it keeps the pickled state
    (``state``) and the constructor arguments (``args``); it never runs anything."""

    official: str = "?"

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.__dict__["args"], obj.__dict__["state"] = args, None
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.__dict__["state"] = state

    # subclasses of dict / list (e.g. tensorfn's Instance) are pickled with item / append opcodes
    def __setitem__(self, key, value):
        self.__dict__.setdefault("items", {})[key] = value

    def append(self, value):
        self.__dict__.setdefault("items", []).append(value)

    def extend(self, values):
        self.__dict__.setdefault("items", []).extend(values)

    def __repr__(self) -> str:
        return f"<stand-in for {self.official}>"


def _reconstructor(cls, base, state):
    """``copyreg._reconstructor`` for stand-ins only (it would otherwise call ``base.__init__``)."""
    if not (isinstance(cls, type) and issubclass(cls, StandIn)):
        raise pickle.UnpicklingError(f"copyreg._reconstructor on {cls!r}, which is not a stand-in")
    obj = cls.__new__(cls)
    obj.__dict__["state"] = state
    return obj


def _encode(text, encoding="latin1"):
    import codecs

    return codecs.encode(text, encoding)


def restricted_pickle_module(source: str, stand_in_prefixes: tuple[str, ...] = ()) -> SimpleNamespace:
    """A ``pickle_module`` for ``torch.load`` whose Unpickler admits only the globals above; names in
    modules starting with one of ``stand_in_prefixes`` become StandIn subclasses."""
    stand_ins: dict[str, type] = {}

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str):
            # protocol 2 (torch.save's) names Python 2 modules (__builtin__, copy_reg): map them as pickle does
            module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
            if (module, name) in _TORCH:
                return getattr(collections, name) if module == "collections" else _resolve(module, name)
            if module == "torch" and name in _DTYPES:
                return getattr(torch, name)
            if (module, name) in _VALUES:
                return _VALUES[(module, name)]
            if (module, name) == ("_codecs", "encode"):
                return _encode
            if (module, name) == ("copyreg", "_reconstructor"):
                return _reconstructor
            if (module, name) == ("builtins", "object"):
                return object
            if any(module == p or module.startswith(p + ".") for p in stand_in_prefixes):
                key = f"{module}.{name}"
                if key not in stand_ins:
                    stand_ins[key] = type(name, (StandIn,), {"official": key})
                return stand_ins[key]
            raise pickle.UnpicklingError(
                f"{source}: refusing to load {module}.{name} - the file asks to import or call it, and only "
                f"tensors, plain values and stand-ins for {', '.join(stand_in_prefixes) or 'nothing'} are allowed")

    def load(file, **kwargs):  # torch's legacy (non-zip) format reads its header with pickle_module.load
        return Unpickler(file, **kwargs).load()

    return SimpleNamespace(__name__="fpdm_bench.safe_load", Unpickler=Unpickler, load=load, stand_ins=stand_ins)


def _resolve(module: str, name: str):
    import importlib

    return getattr(importlib.import_module(module), name)


def load_torch_pickle(path: str | Path, stand_in_prefixes: tuple[str, ...] = (), map_location="cpu"):
    """``torch.load`` through the restricted unpickler. A refused global, a file that is not a torch
    checkpoint, or a damaged one: one BenchError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"{path}: no such file")
    module = restricted_pickle_module(str(path), tuple(stand_in_prefixes))
    try:
        # weights_only=False only because torch refuses a custom pickle_module otherwise; the
        # restricted Unpickler is what keeps this safe.
        return torch.load(path, map_location=map_location, weights_only=False, pickle_module=module)
    except pickle.UnpicklingError as e:
        raise BenchError(str(e) if str(e).startswith(str(path)) else f"{path}: not a readable torch checkpoint ({e})") from None
    except (RuntimeError, EOFError, ValueError, OSError, TypeError, KeyError, AttributeError) as e:
        raise BenchError(f"{path}: not a readable torch checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
