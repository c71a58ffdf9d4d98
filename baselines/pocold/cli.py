"""``fpdm-bench pocold ...``: the PoCoLD baseline's tools, added through the ``fpdm_bench.commands``
entry points (pyproject.toml)."""
from __future__ import annotations

from fpdm_bench.commands.lazy import LazyGroup

pocold = LazyGroup(name="pocold", lazy={"train": "fpdm_bench_baselines.pocold.train:train_command"},
                   help="The PoCoLD baseline's tools (train: train a PoCoLD, e.g. the tiny one on the embedded data "
                        "with rendered part maps, written as the official pipeline folder).")
