"""The reference FPDM's command groups, added to `fpdm-bench` through the ``fpdm_bench.commands``
entry points (see pyproject.toml): ``train stage1|stage2``, ``eval stage1``, ``fpdm convert``."""
from __future__ import annotations

from fpdm_bench.commands.lazy import LazyGroup

train = LazyGroup(name="train", lazy={"stage1": "fpdm_bench_reference.stage1.train:train_stage1_command",
                                      "stage2": "fpdm_bench_reference.stage2.train:train_stage2_command"},
                  help="Train the reference FPDM: stage1 (fusion embedding), then stage2 (diffusion).")
evaluate = LazyGroup(name="eval", lazy={"stage1": "fpdm_bench_reference.stage1.evaluate:eval_stage1_command"},
                     help="Evaluate parts of the reference FPDM (stage1: retrieval ablation of the fusion embedding).")
fpdm = LazyGroup(name="fpdm", lazy={"convert": "fpdm_bench_reference.convert:convert_command"},
                 help="The reference FPDM's tools (convert: official checkpoints -> pipeline folder).")
