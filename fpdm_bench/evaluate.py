"""The one evaluation loop: batches in, images produced, checked, quantised, scored, handed on.

``run`` (images from a model), ``score --dataset`` (images from a folder, matched to a dataset's
pairs) and ``score --real`` (two folders) all go through :func:`evaluate`; they differ only in where
batches and images come from and what happens to each scored batch (``sink``: the runner writes PNGs
and samples.jsonl lines; the score command keeps the records).

Each batch is a dict with ``pair_id`` (list), ``target`` [B,3,H,W] where paired metrics need it,
and whatever a model or metric reads (``source``, ``source_kp``, ``target_kp``). ``produce(batch)``
returns float images [B,3,H,W] in [0, 1]; they are checked (:func:`fpdm_bench.models.check_output`)
before anything of the batch is written, then quantised to 8 bits: what is scored is exactly what
is saved, so a resumed run scores the same images as an uninterrupted one.
"""
from __future__ import annotations

import sys
import time
from typing import Callable, Iterable

import torch

from fpdm_bench.images import from_uint8, to_uint8
from fpdm_bench.models.base import check_output


def evaluate(batches: Iterable[dict], produce: Callable[[dict], torch.Tensor], scorer, *, name: str,
             sink: Callable | None = None, check_size: bool = True,
             total: int | None = None, initial: int = 0, progress: bool = False, features: bool = False,
             timing: dict | None = None) -> list[dict]:
    """Score every batch; returns one record {"pair_id", "metrics"} per sample, in order.

    ``sink(batch, images_uint8 [B,H,W,3], records, seconds_per_image)`` is called after a batch is
    scored. ``ids`` for the set metrics' bootstrap come from ``batch["ids"]`` when present, else the
    pair ids.
    ``check_size``: the images must have the batch's size (a model's output); folders of images
    from elsewhere may come at another size, which the protocol resizes. ``features``: the set
    metrics' features are not fed but handed to ``sink`` as a sixth argument (the runner stores
    them). ``timing`` accumulates ``model_seconds`` and ``metric_seconds``.
    """
    from tqdm.auto import tqdm

    records: list[dict] = []
    bar = tqdm(total=total, initial=initial, unit="img", disable=not progress, desc=name, file=sys.stderr)
    try:
        for batch in batches:
            t0 = time.perf_counter()
            with torch.inference_mode():
                images = produce(batch)
            check_output(images, batch, name, check_size=check_size)
            arr = to_uint8(images)  # on the CPU: a GPU model's work is finished here
            t1 = time.perf_counter()
            seconds = (t1 - t0) / len(batch["pair_id"])
            quantised = from_uint8(arr)
            ids = batch.get("ids") or list(batch["pair_id"])
            feats = None
            if features:
                per, feats = scorer.update(quantised, batch, ids, return_features=True)
            else:
                per = scorer.update(quantised, batch, ids)
            if timing is not None:
                timing["model_seconds"] = timing.get("model_seconds", 0.0) + t1 - t0
                timing["metric_seconds"] = timing.get("metric_seconds", 0.0) + time.perf_counter() - t1
            recs = [{"pair_id": pid, "metrics": m} for pid, m in zip(batch["pair_id"], per)]
            if sink is not None:
                sink(*(batch, arr, recs, seconds) + ((feats,) if features else ()))
            records.extend(recs)
            bar.update(len(recs))
    finally:
        bar.close()
    return records
