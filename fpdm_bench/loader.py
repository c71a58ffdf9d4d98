"""Batches of pairs for the runner, read ahead in DataLoader workers.

Image decoding, resizing and the input perturbation (``--perturb``) run in ``workers`` processes
while the model works on the previous batch (``workers=0``: in the calling thread). A pair whose
image is bad comes back as an error instead of a sample, so the runner decides: stop with that
error, or with --skip-bad record it as skipped.
"""
from __future__ import annotations

import torch

from fpdm_bench.data.base import DataError, collate


class PairItems(torch.utils.data.Dataset):
    """dataset[i] with the run's perturbation applied; a DataError becomes an error item."""

    def __init__(self, dataset, perturb: tuple[str, int] | None = None, seed: int = 0):
        self.dataset, self.perturb, self.seed = dataset, perturb, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict:
        try:
            sample = self.dataset[i]
        except DataError as e:
            return {"pair_id": self.dataset.pairs[i].pair_id, "error": e}
        if self.perturb is not None:
            from fpdm_bench.perturb import apply_perturbation

            name, severity = self.perturb
            sample = apply_perturbation(sample, name, severity, self.seed, self.dataset.keypoint_format)
        return sample


def _collate(items: list[dict]):
    good = [s for s in items if "error" not in s]
    bad = [(s["pair_id"], s["error"]) for s in items if "error" in s]
    return (collate(good) if good else None), bad


def batches(dataset, todo, batch_size: int, position: dict, workers: int = 2, perturb=None, seed: int = 0):
    """Yield (batch or None, [(pair_id, DataError)]) for the pairs in ``todo``, in order. ``ids``
    (the pair's position in the run) key the set metrics' bootstrap weights, so they do not depend
    on batching or sharding."""
    index = {rec.pair_id: i for i, rec in enumerate(dataset.pairs)}
    chunks = [[index[r.pair_id] for r in todo[s: s + batch_size]] for s in range(0, len(todo), batch_size)]
    if not chunks:
        return
    loader = torch.utils.data.DataLoader(PairItems(dataset, perturb, seed), batch_sampler=chunks, collate_fn=_collate,
                                         num_workers=min(workers, len(chunks)),
                                         prefetch_factor=2 if workers else None)
    for batch, bad in loader:
        if batch is not None:
            batch["ids"] = [str(position[p]) for p in batch["pair_id"]]
        yield batch, bad
