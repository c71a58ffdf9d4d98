"""Dataset registry.

``open_dataset(name, root, split, ...)`` returns a PairDataset. The embedded synthetic sets are
generated on first use into ``data/<name>`` (or an existing empty ``--data-root``: the CLI refuses a
root that does not exist, so a typo is not filled with a new set) with their default parameters.
To add a dataset: write a loader (a function ``open(root, split, size, skip_bad)`` returning a
PairDataset; its docstring's first line is what ``fpdm-bench datasets`` shows) in one file and name
it in the ``fpdm_bench.datasets`` entry-point group of your package (see pyproject.toml for the
built-in ones).
"""
from __future__ import annotations

import os
from pathlib import Path

from fpdm_bench.registry import Registry

DATASETS = Registry("dataset", entry_point_group="fpdm_bench.datasets")

DEFAULT_DATA_HOME = Path(os.environ.get("FPDM_BENCH_DATA", "data"))


def default_root(name: str) -> Path:
    return DEFAULT_DATA_HOME / name


def open_dataset(name: str, root: str | Path | None = None, split: str = "test",
                 size: tuple[int, int] | None = None, skip_bad: bool = False, convert: bool = False):
    """Open a registered dataset. ``root`` defaults to ``$FPDM_BENCH_DATA/<name>`` (``data/<name>``).
    ``convert``: read non-RGB image files as RGB instead of refusing them (fpdm_bench.images)."""
    opener = DATASETS.get(name)
    ds = opener(root=Path(root) if root else default_root(name), split=split, size=size, skip_bad=skip_bad)
    ds.convert = convert
    return ds


def open_for_protocol(dataset, root: str | Path | None = None, split: str = "test", protocol: str | None = None,
                      size: tuple[int, int] | None = None, skip_bad: bool = False, convert: bool = False):
    """The dataset as a run, `score` and `profile` read it: at ``size``, else at the protocol's
    evaluation size (so ground truth is read from the files once at that size, never resized twice),
    else native. ``dataset``: a registered name (opened from ``root``), or a PairDataset already
    open, returned as it is or as a copy that reads its images at that size."""
    if size is None and protocol:
        from fpdm_bench.protocols import get_protocol

        size = get_protocol(protocol).eval_size
    if isinstance(dataset, str):
        return open_dataset(dataset, root, split, tuple(size) if size else None, skip_bad, convert)
    if size is None or tuple(dataset.size) == tuple(size):
        return dataset
    import copy

    dataset = copy.copy(dataset)
    dataset.size = tuple(size)
    return dataset
