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
    if checkpoint is None:
        checkpoint = cls.default_checkpoint(dataset)
    return cls.from_pretrained(checkpoint, device=device, dtype=dtype or torch.float32, **kwargs)


__all__ = ["MODELS", "ModelAdapter", "check_output", "load_model"]
