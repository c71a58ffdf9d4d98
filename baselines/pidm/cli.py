"""``fpdm-bench pidm ...``: the PIDM baseline's tools, added through the ``fpdm_bench.commands``
entry points (pyproject.toml)."""
from __future__ import annotations

from fpdm_bench.commands.lazy import LazyGroup

pidm = LazyGroup(name="pidm", lazy={"train": "fpdm_bench_baselines.pidm.train:train_command",
                                    "convert": "fpdm_bench_baselines.pidm.convert:convert_command"},
                 help="The PIDM baseline's tools (train: train a PIDM, e.g. the tiny one on the embedded data; "
                      "convert: an official last.pt -> a safetensors folder).")
