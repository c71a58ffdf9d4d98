"""Scoring under a named protocol: a loop over the protocol's metrics, with no special cases.

``Scorer(protocol, ...)`` builds each metric the protocol names (``fpdm_bench.metrics.METRICS``).
Per batch, ``update(generated, batch)`` prepares the images as the protocol says (format round
trip, resize to the evaluation size, 8-bit quantisation), gives every paired metric its images and
returns the per-sample values (they go to samples.jsonl), and feeds the set metrics (FID, KID,
FD-DINOv2) features of the generated images: each feature network runs once per image, whichever
metrics share it. ``compute(records)`` turns the per-sample values of the finished samples (dataset
order) into means with bootstrap CIs and adds the set metrics against the reference statistics of
``dataset.reference_images(split)`` (cached, see refstats). The sequence metrics (frames of videos)
are computed in ``compute`` from the stored generated images and the ground-truth frames, video by
video (:mod:`fpdm_bench.sequences`).

Images given to the scorer are the uint8-quantised images that are written to samples/, so scores
from a resumed run (which re-reads finished samples from disk) equal an uninterrupted run's. Features
are computed in fixed chunks of images counted from the start (not per caller batch), so FID/KID do
not depend on the batch size either.

A metric that cannot run here (weights or package missing) is reported under its protocol key as
``{"value": None, "unavailable": "<why>"}``.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np
import torch

from fpdm_bench.errors import BenchError, DataError, WeightsMissing
from fpdm_bench.metrics.base import METRICS, MetricContext, MetricUnavailable
from fpdm_bench.protocols import get_protocol
from fpdm_bench.protocols.apply import apply_view, check_resolution, prepare, resize

FEATURE_CHUNK = 16  # images per feature-network call, aligned on the running image count


def feature_group(network: str, view: dict | None = None) -> str:
    """The name of a set metric's feature group (and of its files in a run directory): its feature
    network, plus a hash of its image view when it has one."""
    if not view:
        return network
    return network + "-view-" + hashlib.sha256(json.dumps(view, sort_keys=True).encode()).hexdigest()[:8]


class Scorer:
    """One protocol's metrics over one set of generated images.

    ``dataset`` gives the reference images and the default eval size; ``reference_paths`` and
    ``size`` replace them for folder scoring. ``pairs``: every pair (or name) that will be scored,
    in order — needed to drop a remainder in the official script's file order and for the
    ``test-targets`` reference. ``reference_folder``: score against the images of that folder.
    ``allow_upsampled``: score even if real images are smaller than the evaluation size.
    ``networks`` replaces networks by name (tests: ``{"fid-inception": stand_in}``); ``weights`` maps
    weight names (see fpdm_bench.weights) to paths. ``not_scored``: a reason to build no metric at
    all (a random-weight model: its images are for shapes and time, and no score of them is a model's).
    """

    def __init__(self, protocol="standard", device="cpu", dataset=None, *, reference_paths=None, size=None,
                 pairs=None, reference_folder=None, allow_upsampled=False, networks=None, weights=None, cache=None,
                 log=None, convert=False, not_scored: str | None = None):
        self.protocol = get_protocol(protocol)
        self.device = torch.device(device)
        self.dataset = dataset
        self.reference_paths = reference_paths
        self.reference_folder = reference_folder
        self.allow_upsampled = allow_upsampled
        self.cache, self.log, self.convert = cache, log, convert
        p = self.protocol
        self.size = tuple(p.eval_size or size or (dataset.size if dataset is not None else ()) or ()) or None
        ctx = MetricContext(device, weights, networks)
        self.paired, self.set, self.unavailable = [], [], {}
        self.sequence: list = []  # sequence metrics: scored at the end, from the frames (fpdm_bench.sequences)
        self.sequence_rows: list[dict] = []  # one per video, after compute (a run's sequences.jsonl)
        self.not_scored = not_scored
        for key, settings in (p.metrics.items() if not_scored is None else ()):
            cls = METRICS.get(settings.get("metric", key))
            metric = cls(key=key, **{k: v for k, v in settings.items() if k not in ("metric", "view")})
            metric.view = settings.get("view")
            try:
                if getattr(metric, "frame", None) == "batch" and dataset is None:
                    raise MetricUnavailable(f"{key} needs the target keypoints: score against a dataset (--dataset)")
                metric.setup(ctx)
            except (WeightsMissing, MetricUnavailable) as e:
                self.unavailable[key] = (cls.name, str(e))
                continue
            {"paired": self.paired, "sequence": self.sequence}.get(metric.kind, self.set).append(metric)
        self.pairs = list(pairs) if pairs is not None else None
        self.batch_shrunk: dict[str, int] = {}  # set metric key -> the batch a small reference set left
        self._shrink_batches_to_reference()
        self.dropped = {m.key: p.remainder_dropped(self.pairs, m.drop_remainder)
                        for m in self.paired + self.set if self.pairs is not None and m.drop_remainder}
        self._buffer: list[tuple[str, str, torch.Tensor]] = []  # (pair id, bootstrap id, prepared image)
        self._reference_info: dict = {}
        self.real_images: dict = {}
        if dataset is not None and self.pairs is not None and p.eval_size and not_scored is None:
            targets = list(dict.fromkeys(dataset.image_path(r.target) for r in self.pairs))
            self.real_images["ground_truth"] = check_resolution(targets, p, allow_upsampled, "ground-truth")

    def _shrink_batches_to_reference(self) -> None:
        """The scripts that drop FID remainders (PIDM, PoCoLD, GFLA: ``utils/metrics.py:52,169-173``)
        keep one batch size (64) on the FID object and read the reference set first; a reference set
        smaller than the batch shrinks it to the set's size for good, so the generated set is cut to
        a multiple of that size (48 reference + 72 generated -> 48 used). A set metric's
        ``drop_remainder`` becomes that batch (KID, added here on the same features, follows FID)."""
        shrinkable = [m for m in self.set if getattr(m, "drop_remainder", 0)]
        if not shrinkable:
            return
        try:
            n_ref = len(self.reference_set()[0])
        except BenchError:  # no reference set: compute() says so
            return
        for m in shrinkable:
            if 0 < n_ref < m.drop_remainder:
                m.drop_remainder = n_ref
                self.batch_shrunk[m.key] = n_ref

    # --- per batch ----------------------------------------------------------------------------
    def _eval_size(self, images: torch.Tensor) -> tuple[int, int]:
        return self.size or tuple(images.shape[-2:])

    def update(self, generated: torch.Tensor, batch: dict, ids: list[str] | None = None,
               set_metrics: bool = True, return_features: bool = False):
        """Score generated [B,3,H,W] against the batch (``target`` for paired metrics, plus what a
        metric reads, e.g. ``target_kp``); returns one {key: value} per sample. ``ids`` name the
        images for the set metrics' bootstrap (default: the pair ids); ``set_metrics=False`` leaves
        the set metrics out (a process that sees only part of the pairs). ``return_features``:
        return ``(rows, features)`` instead, the set metrics' features of these images
        (:meth:`set_features`), not fed: the runner stores them and feeds them in dataset order."""
        size = self._eval_size(batch["target"] if "target" in batch else generated)
        gen = prepare(generated, self.protocol, size, generated=True)
        out = [dict() for _ in range(len(gen))]
        if self.paired:
            tgt = prepare(batch["target"], self.protocol, size, generated=False) if "target" in batch else None
            for m in self.paired:
                if m.frame == "batch":  # in the frame of the batch's keypoints
                    frame = tuple(batch["target"].shape[-2:]) if "target" in batch else tuple(generated.shape[-2:])
                    rows = m.update(resize(generated, frame, self.protocol), None, batch)
                else:
                    rows = m.update(apply_view(gen, m.view), None if tgt is None else apply_view(tgt, m.view), batch)
                for d, r in zip(out, rows):
                    d.update(r)
        if return_features:
            return out, self.set_features(gen, prepared=True)
        if set_metrics:
            self._feed(gen, list(batch["pair_id"]), ids)
        return out

    def _feed(self, prepared: torch.Tensor, pair_ids, ids) -> None:
        if not self.set:
            return
        for i, im in enumerate(prepared):
            self._buffer.append((pair_ids[i], ids[i] if ids else pair_ids[i], im))
        while len(self._buffer) >= FEATURE_CHUNK:
            self._extract(self._buffer[:FEATURE_CHUNK])
            self._buffer = self._buffer[FEATURE_CHUNK:]

    def _groups(self) -> dict[str, list]:
        """Set metrics grouped by feature network and view: each group's features are computed once.
        The key names the group's feature files in a run directory."""
        groups: dict[str, list] = {}
        for m in self.set:
            groups.setdefault(feature_group(m.network_name, m.view), []).append(m)
        return groups

    def feature_groups(self) -> list[str]:
        """The names of the feature groups the set metrics need (empty: no set metric)."""
        return list(self._groups())

    def set_features(self, generated: torch.Tensor, prepared: bool = False) -> dict[str, np.ndarray]:
        """{group: [B, d] float32} features of generated images (``prepared``: already through the
        protocol's preparation), in chunks of FEATURE_CHUNK. The networks return float32, so the
        rows are stored without loss."""
        gen = generated if prepared else prepare(generated, self.protocol, self._eval_size(generated), generated=True)
        out = {}
        for key, metrics in self._groups().items():
            net, view = metrics[0].extractor, metrics[0].view
            dev = next(iter(net.parameters()), torch.empty(0)).device
            rows = [net(apply_view(gen[s: s + FEATURE_CHUNK], view).to(dev)).float().cpu().numpy()
                    for s in range(0, len(gen), FEATURE_CHUNK)]
            out[key] = np.concatenate(rows) if rows else np.zeros((0, 0), np.float32)
        return out

    def add_set_features(self, features: dict[str, np.ndarray], pair_ids: list[str], ids: list[str] | None = None):
        """Feed features from :meth:`set_features` (or stored ones) to the set metrics, in the order
        given; the metrics fold them in fixed chunks, so the same features in the same order give
        the same sums however they were batched."""
        ids = ids or list(pair_ids)
        for key, metrics in self._groups().items():
            feats = np.asarray(features[key], np.float64)
            for m in metrics:
                keep = [k for k, pid in enumerate(pair_ids) if pid not in self.dropped.get(m.key, ())]
                if keep:
                    m.update(feats[keep], [ids[k] for k in keep])

    def _extract(self, items) -> None:
        if not items:
            return
        feats = self.set_features(torch.stack([im for _, _, im in items]), prepared=True)
        self.add_set_features(feats, [pid for pid, _, _ in items], [i for _, i, _ in items])

    # --- end ----------------------------------------------------------------------------------
    def compute(self, records: list[dict], generated=None) -> dict:
        """Means + bootstrap CIs of the per-sample values in ``records`` (finished samples, dataset
        order) and the set metrics; unavailable metrics carry the reason instead of a value.
        Remainders are dropped in the official file order when the pairs are known. ``generated``:
        pair id -> the stored generated image [3, H, W], which the sequence metrics read video by
        video (their per-video rows are then in ``sequence_rows``)."""
        out: dict[str, dict] = {}
        for m in self.paired:
            drop = self.dropped.get(m.key, ())
            m.load([r["metrics"] for r in records if "metrics" in r and r.get("pair_id") not in drop])
            out.update(self._with_dropped(m, m.compute()))
        if self.set:
            self._extract(self._buffer)
            self._buffer = []
            for name, metrics in self._groups().items():
                ref = self._reference(name, metrics)
                for m in metrics:
                    try:
                        res = self._with_dropped(m, m.compute(ref))
                        if m.key in self.batch_shrunk:
                            for entry in res.values():
                                entry["batch"] = self.batch_shrunk[m.key]
                                entry["batch_note"] = (f"the reference set ({self.batch_shrunk[m.key]} images) is "
                                                       f"smaller than the script's batch and shrank it")
                        out.update(res)
                    except ValueError as e:  # e.g. fewer than 2 images: no distribution to compare
                        out[m.key] = {"value": None, "unavailable": f"{m.key}: {e}", "metric": m.name}
        if self.sequence:
            out.update(self._sequences(records, generated))
        for key, (metric, reason) in self.unavailable.items():
            out[key] = {"value": None, "unavailable": reason, "metric": metric}
        return out

    def _sequences(self, records: list[dict], generated) -> dict:
        """The sequence metrics over the videos of the scored pairs (fpdm_bench.sequences)."""
        from fpdm_bench import sequences

        if generated is None:
            return {m.key: {"value": None, "metric": m.name, "unavailable": f"{m.key}: sequence metrics read the "
                            f"generated frames of a run (run / merge) or a folder (score --dataset)"}
                    for m in self.sequence}
        scored = {r["pair_id"] for r in records if "metrics" in r}
        pairs = [p for p in self.pairs or [] if getattr(p, "pair_id", None) in scored]
        out, self.sequence_rows = sequences.score(self.sequence, self.dataset, pairs, generated, self.protocol,
                                                  self.size, log=self.log)
        return out

    def _with_dropped(self, metric, result: dict) -> dict:
        if self.dropped.get(metric.key):
            for entry in result.values():
                entry["dropped"] = len(self.dropped[metric.key])
                entry["drop_order"] = f"sorted {self.protocol.generated_name}"
        return result

    def reference_set(self) -> tuple[list, str]:
        """The set metrics' reference images and the rule that chose them (for results.json)."""
        if self.reference_folder is not None:
            from fpdm_bench.images import list_images

            return list_images(self.reference_folder), f"folder {self.reference_folder}"
        if self.reference_paths is not None:
            return list(self.reference_paths), "given"
        if self.dataset is None:
            raise BenchError("FID/KID need reference images: give a dataset or reference_paths")
        rule = self.protocol.reference or self.dataset.fid_reference_split
        if rule == "train-list":  # CFLD's set; datasets without a train.lst fall back to their train split
            try:
                return list(self.dataset.reference_images(rule)), rule
            except (DataError, ValueError) as e:
                return list(self.dataset.reference_images("train")), f"train (train-list unavailable: {e})"
        if rule == "test-targets":
            if self.pairs is None:
                raise BenchError(f"protocol {self.protocol.name}: the test-targets reference needs the evaluated pairs")
            return list(dict.fromkeys(self.dataset.image_path(r.target) for r in self.pairs)), rule
        return list(self.dataset.reference_images(rule)), rule

    def _reference(self, name: str, metrics: list):
        from fpdm_bench.refstats import reference_stats

        paths, rule = self.reference_set()
        drops = {d for m in metrics for d in m.reference_drops()} or {0}
        if self.protocol.eval_size:
            self.real_images["reference"] = check_resolution(paths, self.protocol, self.allow_upsampled, "reference")
        ref = reference_stats(paths, self.protocol, metrics[0].extractor, self.size, drops=drops, view=metrics[0].view,
                              cache=self.cache, log=self.log, convert=self.convert)
        first = ref.moments[min(drops)]
        self._reference_info[name] = {"rule": rule, "n_files": len(paths), "n_used": first.n,
                                      "dropped": first.dropped, "cache_key": ref.key, "from_cache": ref.from_cache}
        return ref

    def describe(self) -> dict:
        """The full protocol record plus what this run actually used (for results.json)."""
        d = {**self.protocol.to_dict(), "eval_size_used": list(self.size) if self.size else "native (target size)",
             "metrics_used": {m.key: m.describe() for m in self.paired + self.set + self.sequence}}
        nets = {m.network_name: m.extractor.describe() for m in self.set if hasattr(m.extractor, "describe")}
        if nets:
            d["feature_networks"] = nets
        if self._reference_info:
            d["reference_used"] = (next(iter(self._reference_info.values())) if len(self._reference_info) == 1
                                   else self._reference_info)
        if self.real_images:
            d["real_images"] = self.real_images
        if self.unavailable:
            d["unavailable"] = {k: reason for k, (_, reason) in self.unavailable.items()}
        if self.not_scored:
            d["not_scored"] = self.not_scored
        return d
