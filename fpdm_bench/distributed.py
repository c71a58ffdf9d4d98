"""Runs under ``torchrun`` / ``accelerate launch``: one process per GPU, one or several nodes.

The launchers set RANK, WORLD_SIZE and LOCAL_RANK. Rank r of w runs shard r/w of the pairs (strided,
like ``--shard r/w``, and into the same files, so ``fpdm-bench merge`` and a rerun with ``--shard``
see the same run). At the end the ranks' finished records and set-metric feature rows are gathered
to rank 0 through torch.distributed (gloo on CPU, NCCL on GPU), which folds them in dataset order and
writes the one results.json: the same numbers as one process, whatever the number of processes, and
no shared file system needed for the metrics (each node keeps the PNGs it generated).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta


@dataclass
class Context:
    rank: int
    world: int
    local_rank: int

    def device(self, device: str) -> str:
        """cuda -> this process's GPU (cuda:LOCAL_RANK); cpu stays cpu."""
        return f"cuda:{self.local_rank}" if str(device).startswith("cuda") else device

    def init(self, device: str) -> None:
        import torch
        import torch.distributed as dist

        if not dist.is_initialized():
            cuda = str(device).startswith("cuda")
            if cuda:
                torch.cuda.set_device(self.local_rank)
            # ranks wait for the slowest at the end of generation: allow for uneven shards
            dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(hours=2))

    def describe(self) -> dict:
        """What results.json records of the launch: world size and the process group's backend."""
        import torch.distributed as dist

        return {"world_size": self.world, "backend": dist.get_backend() if dist.is_initialized() else None}

    def gather(self, obj):
        """Every rank's ``obj`` as a list on rank 0 (None elsewhere)."""
        import torch.distributed as dist

        out = [None] * self.world if self.rank == 0 else None
        dist.gather_object(obj, out, dst=0)
        return out


def context() -> Context | None:
    """The launcher's process group settings, or None for a plain run (no RANK / WORLD_SIZE in the
    environment). A launcher's single process (``torchrun --nproc_per_node 1``) gets a Context too, so
    one GPU exercises the same path as many: process group (NCCL), gather, rank 0 writes."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    return Context(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", "0")))
