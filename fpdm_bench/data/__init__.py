"""Dataset registry.

``open_dataset(name, root, split, ...)`` returns a PairDataset. The embedded synthetic sets are
generated on first use into ``data/<name>`` (or ``--data-root``) with their default parameters.
To add a dataset: write a loader (a PairDataset subclass or a function returning one) in one file
and register it here.
"""
from __future__ import annotations

import os
from pathlib import Path

from fpdm_bench.registry import Registry

DATASETS = Registry("dataset")
DATASETS.register("synthetic", "fpdm_bench.data.deepfashion:open_synthetic",
                  "embedded synthetic people in the DeepFashion layout (made on first use)")
DATASETS.register("synthetic-phoenix", "fpdm_bench.data.phoenix:open_synthetic",
                  "embedded synthetic signers in the PHOENIX-2014T layout (made on first use)")
DATASETS.register("deepfashion", "fpdm_bench.data.deepfashion:open_deepfashion",
                  "DeepFashion In-shop, PIDM/CFLD CSV layout (fasion-resize-*.csv + images)")
DATASETS.register("deepfashion-fpdm", "fpdm_bench.data.deepfashion:open_fpdm_layout",
                  "DeepFashion in FPDM's layout ({train,test}_pairs_data.json + pose/*.txt)")
DATASETS.register("phoenix", "fpdm_bench.data.phoenix:open_phoenix",
                  "RWTH-PHOENIX-Weather 2014T frames + whole-body keypoints")

DEFAULT_DATA_HOME = Path(os.environ.get("FPDM_BENCH_DATA", "data"))


def default_root(name: str) -> Path:
    return DEFAULT_DATA_HOME / name


def open_dataset(name: str, root: str | Path | None = None, split: str = "test",
                 size: tuple[int, int] | None = None, skip_bad: bool = False):
    """Open a registered dataset. ``root`` defaults to ``$FPDM_BENCH_DATA/<name>`` (``data/<name>``)."""
    opener = DATASETS.get(name)
    return opener(root=Path(root) if root else default_root(name), split=split, size=size, skip_bad=skip_bad)
