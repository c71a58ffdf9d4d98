"""Model registry: adapters are found through the ``fpdm_bench.models`` entry-point group.

To add a model: subclass ``ModelAdapter`` in one file (its docstring's first line is what
``fpdm-bench models`` shows) and name it in your package's ``pyproject.toml``::

    [project.entry-points."fpdm_bench.models"]
    my-model = "my_package.adapter:MyAdapter"

fpdm-bench's own models (the floors, the reference FPDM) are registered the same way. What reports
need to know about a model (whether it is a floor, its colour, whether the grid shows it) are class
attributes of its adapter (see ``ModelAdapter``), read through :func:`model_fact` and
:func:`floor_names`.
"""
from fpdm_bench.models.base import ModelAdapter, check_output
from fpdm_bench.registry import Registry

MODELS = Registry("model", entry_point_group="fpdm_bench.models")


def load_model(name: str, checkpoint: str | None = None, device: str = "cpu", dtype=None, dataset: str | None = None,
               **kwargs) -> ModelAdapter:
    """The adapter ``name`` with ``checkpoint``; without one, the adapter's default for ``dataset``."""
    import torch

    from fpdm_bench.errors import BenchError
    from fpdm_bench.models.random_init import parse_init

    cls = MODELS.get(name)
    init, init_seed = parse_init(kwargs)
    if init == "random":
        if not _has_random_build(cls):
            raise BenchError(f"model {name!r} has no random-weight build (--model-arg init=random is for models with a "
                             f"published configuration: {', '.join(random_buildable()) or 'none'})")
        if checkpoint is not None:
            raise BenchError("--model-arg init=random builds the published configuration without weights: "
                             "give no --checkpoint")
        _check_arguments(name, cls, kwargs, target=cls.from_random)
        return cls.from_random(device=device, dtype=dtype or torch.float32, seed=init_seed, **kwargs)
    _check_arguments(name, cls, kwargs)
    if checkpoint is None:
        checkpoint = cls.default_checkpoint(dataset)
    return cls.from_pretrained(checkpoint, device=device, dtype=dtype or torch.float32, **kwargs)


def model_fact(name: str, attr: str, default=None):
    """A class attribute of the registered adapter ``name`` (``floor``, ``colour``, ``in_grid``, ...),
    or ``default`` for a name not registered here (a run of a model not installed on this machine) or
    an adapter that cannot be imported. Reading a fact imports that adapter's module only."""
    try:
        if name not in MODELS:
            return default
        return getattr(MODELS.get(name), attr, default)
    except Exception:  # a broken third-party entry point is reported where the model is run
        return default


def floor_names() -> list[str]:
    """The registered floors (adapters with ``floor = True``), sorted by their ``order``, then name.
    Imports every registered adapter."""
    floors = [(model_fact(n, "order", 0), n) for n in MODELS.names() if model_fact(n, "floor", False) is True]
    return [n for _, n in sorted(floors)]


def _has_random_build(cls) -> bool:
    """Whether an adapter class overrides ``from_random`` (has a published configuration to build)."""
    return cls.from_random.__func__ is not ModelAdapter.from_random.__func__


def random_buildable() -> list[str]:
    """Registered models that have a random-weight build of their published configuration."""
    out = []
    for n in MODELS.names():
        try:
            cls = MODELS.get(n)
        except Exception:  # a broken third-party entry point is reported where it is used
            continue
        if _has_random_build(cls):
            out.append(n)
    return out


def _check_arguments(name: str, cls, kwargs: dict, target=None) -> None:
    """--model-arg / --steps / ... names the adapter's from_pretrained does not take: one clear error
    listing the ones it does (an adapter that takes **kwargs accepts anything)."""
    import difflib
    import inspect

    from fpdm_bench.errors import BenchError

    # the base from_pretrained passes everything on to the constructor: check that one
    if target is None:
        target = cls.__init__ if cls.from_pretrained.__func__ is ModelAdapter.from_pretrained.__func__ else cls.from_pretrained
    params = inspect.signature(target).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    reserved = ("path_or_config", "device", "dtype", "self", "cls", "seed")
    known = [k for k in params if k not in reserved]
    if _has_random_build(cls):
        known += ["init"] + (["init_seed"] if target.__name__ == "from_random" else [])
    for key in kwargs:
        if key not in params or key in reserved:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise BenchError(f"model {name!r} takes no argument {key!r}.{hint} It takes: {', '.join(known) or 'none'}")


__all__ = ["MODELS", "ModelAdapter", "check_output", "floor_names", "load_model", "model_fact",
           "random_buildable"]
