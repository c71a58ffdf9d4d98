"""Sequence metrics over a run's frames: pairs grouped into videos, scored video by video.

A dataset whose pairs are frames of videos says so on each pair (``PairRecord.sequence``: the
video, ``PairRecord.frame``: the frame's position in it; the PHOENIX openers fill both). The
sequence metrics (``kind = "sequence"``, :class:`fpdm_bench.metrics.base.SequenceMetric`) are
computed once every pair is done — at the end of a one-process run, or when the last shard finishes
or ``merge`` runs — from the images as stored (``samples/<pair_id>.png``) and the dataset's
ground-truth frames, so the numbers depend on neither the batch size, nor the shards, nor the order
the pairs were generated in. Both sides are prepared as the paired metrics' images are (the
protocol's format round trip, resize to its evaluation size, 8-bit quantisation).

Videos are taken in dataset order (first appearance), each sorted by frame, one at a time: only one
video's frames are in memory. A video is split into runs of consecutive frames where a pair was not
scored (skipped, or cut by ``--limit``), and no transition spans a gap. Each video gives one row of
``sequences.jsonl`` (:mod:`fpdm_bench.rundir`): its id, its frames (pair ids in frame order), each
metric's value and per-frame values.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from fpdm_bench.images import from_uint8, to_uint8
from fpdm_bench.protocols.apply import apply_view, prepare

ROW_FIELDS = ("value", "per_frame")  # what a metric's update() returns besides its own extras


def declares_videos(pair) -> bool:
    return getattr(pair, "sequence", None) is not None and getattr(pair, "frame", None) is not None


def videos(pairs) -> list[tuple[str, list[list]]]:
    """The videos of ``pairs`` in order of first appearance, each as its runs of consecutive frames
    (lists of pairs sorted by frame; a missing frame number, or a repeated one, starts a new run).
    Pairs that declare no video are left out."""
    by: dict[str, list] = {}
    for p in pairs:
        if declares_videos(p):
            by.setdefault(p.sequence, []).append(p)
    out = []
    for video, members in by.items():
        members = sorted(members, key=lambda p: p.frame)
        runs = [[members[0]]]
        for p in members[1:]:
            if p.frame == runs[-1][-1].frame + 1:
                runs[-1].append(p)
            else:
                runs.append([p])
        out.append((video, runs))
    return out


def no_videos_reason(dataset) -> str:
    name = getattr(dataset, "name", None) or "the scored images"
    return (f"dataset {name} declares no videos (its pairs carry no sequence id and frame order): sequence "
            f"metrics apply to datasets of video frames, such as phoenix")


def score(metrics: list, dataset, pairs, generated: Callable[[str], torch.Tensor], protocol, size=None,
          log=None) -> tuple[dict, list[dict]]:
    """Score sequence ``metrics`` over the videos of the scored ``pairs``: ``generated(pair_id)`` gives
    a stored generated image [3, H, W] in [0, 1]; the ground truth is ``dataset.load_image(target)``.
    Returns (results.json entries by key, one row per video for sequences.jsonl)."""
    vids = videos(pairs)
    if not vids:
        reason = no_videos_reason(dataset)
        return {m.key: {"value": None, "unavailable": reason, "metric": m.name} for m in metrics}, []
    if log:
        n = sum(len(run) for _, runs in vids for run in runs)
        log(f"sequence metrics over {len(vids)} videos ({n} frames): {', '.join(m.key for m in metrics)} ...")
    rows = []
    for video, runs in vids:
        frames = [_frames(run, dataset, generated, protocol, size) for run in runs]
        row: dict = {"video": video, "frames": [p.pair_id for run in runs for p in run], "metrics": {},
                     "per_frame": {}}
        for m in metrics:
            got = m.update(video, [(apply_view(g, m.view), apply_view(t, m.view)) for g, t in frames])
            row["metrics"][m.key] = got.get("value")
            if "per_frame" in got:
                row["per_frame"][m.key] = got["per_frame"]
            for field, v in got.items():
                if field not in ROW_FIELDS:
                    row.setdefault(field, {})[m.key] = v
        rows.append(row)
    out: dict[str, dict] = {}
    for m in metrics:
        try:
            res = m.compute()
        except ValueError as e:  # e.g. FVD with fewer than two clips
            res = {m.key: {"value": None, "unavailable": f"{m.key}: {e}", "metric": m.name}}
        out.update(res or {m.key: {"value": None, "metric": m.name, "unavailable":
                                   f"{m.key}: no video has two consecutive scored frames"}})
    return out, rows


def _frames(run: list, dataset, generated, protocol, size) -> tuple[torch.Tensor, torch.Tensor]:
    """(generated, target) [F, 3, H, W] of one run of consecutive frames, prepared as the paired
    metrics' images: the generated side 8-bit as the evaluation loop scores it (a stored PNG already is)."""
    tgt = torch.stack([dataset.load_image(p.target) for p in run])
    size = tuple(size) if size else tuple(tgt.shape[-2:])
    gen = from_uint8(to_uint8(torch.stack([generated(p.pair_id) for p in run])))
    return prepare(gen, protocol, size, generated=True), prepare(tgt, protocol, size, generated=False)
