"""Batches of pairs for the runner, read ahead in DataLoader workers.

Image decoding, resizing and the input perturbation (``--perturb``) run in ``workers`` processes
while the model works on the previous batch (``workers=0``: in the calling thread). A pair whose
image is bad comes back as an error instead of a sample, so the runner decides: stop with that
error, or with --skip-bad record it as skipped.
"""
from __future__ import annotations

import queue
import threading

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


def prefetched(iterator, depth: int = 2):
    """Items of ``iterator``, taken from it by a background thread ``depth`` ahead. Receiving a batch
    from DataLoader workers (unpickling its tensors from shared memory) takes ~5 ms of the caller's
    time per batch of 8 at 256x176; in this thread it overlaps with the model instead."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(entry) -> bool:
        """Hand ``entry`` over unless the consumer has stopped (then never block)."""
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def pull():
        try:
            for item in iterator:
                if not put((item, None)):
                    return
            put((end, None))
        except BaseException as e:  # handed to the consumer
            put((end, e))

    thread = threading.Thread(target=pull, daemon=True, name="fpdm-bench-prefetch")
    thread.start()
    try:
        while True:
            item, error = q.get()
            if error is not None:
                raise error
            if item is end:
                return
            yield item
    finally:  # the consumer stopped early (an error in the model): let the thread end
        stop.set()


def batches(dataset, todo, batch_size: int, position: dict, workers: int = 2, perturb=None, seed: int = 0):
    """Yield (batch or None, [(pair_id, DataError)]) for the pairs in ``todo``, in order. ``ids``
    (the pair's position in the run) key the set metrics' bootstrap weights, so they do not depend
    on batching or sharding."""
    index = {rec.pair_id: i for i, rec in enumerate(dataset.pairs)}
    chunks = [[index[r.pair_id] for r in todo[s: s + batch_size]] for s in range(0, len(todo), batch_size)]
    items = PairItems(dataset, perturb, seed)

    def loaded():
        if not workers or len(chunks) < 2:
            yield from (_collate([items[i] for i in chunk]) for chunk in chunks)
            return
        # Batch 1 is read here; the workers start after it and read batch 2 on while the model runs
        # on batch 1, so starting processes (~0.1 s on 2 cores) holds up nothing.
        first = _collate([items[i] for i in chunks[0]])
        rest = prefetched(iter(torch.utils.data.DataLoader(
            items, batch_sampler=chunks[1:], collate_fn=_collate, num_workers=min(workers, len(chunks) - 1),
            prefetch_factor=2)))
        yield first
        yield from rest

    for batch, bad in loaded():
        if batch is not None:
            batch["ids"] = [str(position[p]) for p in batch["pair_id"]]
        yield batch, bad
