"""``fpdm-bench cfld ...``: the CFLD baseline's tools, added through the ``fpdm_bench.commands``
entry points (pyproject.toml)."""
from __future__ import annotations

from fpdm_bench.commands.lazy import LazyGroup

cfld = LazyGroup(name="cfld", lazy={"train": "fpdm_bench_baselines.cfld.train:train_command"},
                 help="The CFLD baseline's tools (train: train a CFLD, e.g. the tiny one on the embedded data, "
                      "written in the released checkpoint layout).")
