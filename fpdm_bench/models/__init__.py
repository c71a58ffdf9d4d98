"""Model registry: adapters are found through the ``fpdm_bench.models`` entry-point group.

To add a model: subclass ``ModelAdapter`` in one file (its docstring's first line is what
``fpdm-bench models`` shows) and name it in your package's ``pyproject.toml``::

    [project.entry-points."fpdm_bench.models"]
    my-model = "my_package.adapter:MyAdapter"

fpdm-bench's own models (the floors, the reference FPDM) are registered the same way.
"""
from fpdm_bench.models.base import ModelAdapter, check_output
from fpdm_bench.registry import Registry

MODELS = Registry("model", entry_point_group="fpdm_bench.models")


def load_model(name: str, checkpoint: str | None = None, device: str = "cpu", dtype=None, dataset: str | None = None,
               **kwargs) -> ModelAdapter:
    """The adapter ``name`` with ``checkpoint``; without one, the adapter's default for ``dataset``."""
    import torch

    cls = MODELS.get(name)
    _check_arguments(name, cls, kwargs)
    if checkpoint is None:
        checkpoint = cls.default_checkpoint(dataset)
    return cls.from_pretrained(checkpoint, device=device, dtype=dtype or torch.float32, **kwargs)


def _check_arguments(name: str, cls, kwargs: dict) -> None:
    """--model-arg / --steps / ... names the adapter's from_pretrained does not take: one clear error
    listing the ones it does (an adapter that takes **kwargs accepts anything)."""
    import difflib
    import inspect

    from fpdm_bench.errors import BenchError

    # the base from_pretrained passes everything on to the constructor: check that one
    target = cls.__init__ if cls.from_pretrained.__func__ is ModelAdapter.from_pretrained.__func__ else cls.from_pretrained
    params = inspect.signature(target).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    known = [k for k in params if k not in ("path_or_config", "device", "dtype", "self", "cls")]
    for key in kwargs:
        if key not in params:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise BenchError(f"model {name!r} takes no argument {key!r}.{hint} It takes: {', '.join(known) or 'none'}")


__all__ = ["MODELS", "ModelAdapter", "check_output", "load_model"]
