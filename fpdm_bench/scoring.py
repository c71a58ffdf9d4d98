"""Scoring under a named protocol: a loop over the protocol's metrics, with no special cases.

``Scorer(protocol, ...)`` builds each metric the protocol names (``fpdm_bench.metrics.METRICS``).
Per batch, ``update(generated, batch)`` prepares the images as the protocol says (format round
trip, resize to the evaluation size, 8-bit quantisation), gives every paired metric its images and
returns the per-sample values (they go to samples.jsonl), and feeds the set metrics (FID, KID,
FD-DINOv2) features of the generated images: each feature network runs once per image, whichever
metrics share it. ``compute(records)`` turns the per-sample values of the finished samples (dataset
order) into means with bootstrap CIs and adds the set metrics against the reference statistics of
``dataset.reference_images(split)`` (cached, see refstats).

Images given to the scorer are the uint8-quantised images that are written to samples/, so scores
from a resumed run (which re-reads finished samples from disk) equal an uninterrupted run's. Features
are computed in fixed chunks of images counted from the start (not per caller batch), so FID/KID do
not depend on the batch size either.

A metric that cannot run here (weights or package missing) is reported under its protocol key as
``{"value": None, "unavailable": "<why>"}``.
"""
from __future__ import annotations

import torch

from fpdm_bench.errors import BenchError, WeightsMissing
from fpdm_bench.metrics.base import METRICS, MetricContext, MetricUnavailable
from fpdm_bench.protocols import get_protocol
from fpdm_bench.protocols.apply import prepare

FEATURE_CHUNK = 16  # images per feature-network call, aligned on the running image count


class Scorer:
    """One protocol's metrics over one set of generated images.

    ``dataset`` gives the reference images and the default eval size; ``reference_paths`` and
    ``size`` replace them for folder scoring. ``networks`` replaces networks by name (tests:
    ``{"fid-inception": stand_in}``); ``weights`` maps weight names (see fpdm_bench.weights) to paths.
    """

    def __init__(self, protocol="standard", device="cpu", dataset=None, *, reference_paths=None, size=None,
                 networks=None, weights=None, cache=None, log=None, convert=False):
        self.protocol = get_protocol(protocol)
        self.device = torch.device(device)
        self.dataset = dataset
        self.reference_paths = reference_paths
        self.cache, self.log, self.convert = cache, log, convert
        p = self.protocol
        self.size = tuple(p.eval_size or size or (dataset.size if dataset is not None else ()) or ()) or None
        ctx = MetricContext(device, weights, networks)
        self.paired, self.set, self.unavailable = [], [], {}
        for key, settings in p.metrics.items():
            cls = METRICS.get(settings.get("metric", key))
            metric = cls(key=key, **{k: v for k, v in settings.items() if k != "metric"})
            try:
                metric.setup(ctx)
            except (WeightsMissing, MetricUnavailable) as e:
                self.unavailable[key] = (cls.name, str(e))
                continue
            (self.paired if metric.kind == "paired" else self.set).append(metric)
        self._buffer: list[tuple[str, torch.Tensor]] = []
        self._seen = 0
        self._reference_info: dict = {}

    # --- per batch ----------------------------------------------------------------------------
    def _eval_size(self, images: torch.Tensor) -> tuple[int, int]:
        return self.size or tuple(images.shape[-2:])

    def update(self, generated: torch.Tensor, batch: dict, ids: list[str] | None = None,
               set_metrics: bool = True) -> list[dict[str, float]]:
        """Score generated [B,3,H,W] against the batch (``target`` for paired metrics, plus what a
        metric reads, e.g. ``target_kp``); returns one {key: value} per sample. ``ids`` name the
        images for the set metrics' bootstrap (default: the pair ids); ``set_metrics=False`` leaves
        the set metrics out (a process that sees only part of the pairs)."""
        size = self._eval_size(batch["target"] if "target" in batch else generated)
        gen = prepare(generated, self.protocol, size, generated=True)
        out = [dict() for _ in range(len(gen))]
        if self.paired:
            tgt = prepare(batch["target"], self.protocol, size, generated=False) if "target" in batch else None
            for m in self.paired:
                rows = m.update(gen, tgt, batch) if m.frame == "eval" else m.update(generated, None, batch)
                for d, r in zip(out, rows):
                    d.update(r)
        if set_metrics:
            self._feed(gen, ids or batch.get("pair_id"))
        return out

    def update_set(self, generated: torch.Tensor, ids: list[str] | None = None) -> None:
        """Feed generated images to the set metrics only (finished samples re-read on resume)."""
        if self.set:
            self._feed(prepare(generated, self.protocol, self._eval_size(generated), generated=True), ids)

    def _feed(self, prepared: torch.Tensor, ids) -> None:
        if not self.set:
            return
        for i, im in enumerate(prepared):
            self._buffer.append((ids[i] if ids else str(self._seen), im))
            self._seen += 1
        while len(self._buffer) >= FEATURE_CHUNK:
            self._extract(self._buffer[:FEATURE_CHUNK])
            self._buffer = self._buffer[FEATURE_CHUNK:]

    def _networks(self) -> dict[str, torch.nn.Module]:
        return {m.network_name: m.extractor for m in self.set}

    def _extract(self, items) -> None:
        if not items:
            return
        imgs = torch.stack([im for _, im in items])
        ids = [i for i, _ in items]
        for name, net in self._networks().items():
            dev = next(iter(net.parameters()), torch.empty(0)).device
            feats = net(imgs.to(dev)).double().cpu().numpy()
            for m in self.set:
                if m.network_name == name:
                    m.update(feats, ids)

    def needs_set_pass(self) -> bool:
        """Whether a set metric is active (so a resumed run must re-read samples/)."""
        return bool(self.set)

    # --- end ----------------------------------------------------------------------------------
    def compute(self, records: list[dict]) -> dict:
        """Means + bootstrap CIs of the per-sample values in ``records`` (finished samples, dataset
        order) and the set metrics; unavailable metrics carry the reason instead of a value."""
        out: dict[str, dict] = {}
        rows = [r["metrics"] for r in records if "metrics" in r]
        for m in self.paired:
            m.load(rows)
            out.update(m.compute())
        if self.set:
            self._extract(self._buffer)
            self._buffer = []
            for name, net in self._networks().items():
                ref = self._reference(name, net)
                for m in self.set:
                    if m.network_name == name:
                        out.update(m.compute(ref))
        for key, (metric, reason) in self.unavailable.items():
            out[key] = {"value": None, "unavailable": reason, "metric": metric}
        return out

    def _reference_paths(self):
        if self.reference_paths is not None:
            return list(self.reference_paths), "given"
        if self.dataset is None:
            raise BenchError("FID/KID need reference images: give a dataset or reference_paths")
        split = self.protocol.fid_reference_split or self.dataset.fid_reference_split
        return list(self.dataset.reference_images(split)), split

    def _reference(self, name: str, net):
        from fpdm_bench.refstats import reference_stats

        paths, split = self._reference_paths()
        users = [m for m in self.set if m.network_name == name]
        drops = {d for m in users for d in m.reference_drops()} or {0}
        ref = reference_stats(paths, self.protocol, net, self.size, drops=drops, cache=self.cache, log=self.log,
                              convert=self.convert)
        first = ref.moments[min(drops)]
        self._reference_info[name] = {"split": split, "n_files": len(paths), "n_used": first.n,
                                      "dropped": first.dropped, "cache_key": ref.key, "from_cache": ref.from_cache}
        return ref

    def describe(self) -> dict:
        """The full protocol record plus what this run actually used (for results.json)."""
        d = {**self.protocol.to_dict(), "eval_size_used": list(self.size) if self.size else "native (target size)",
             "metrics_used": {m.key: m.describe() for m in self.paired + self.set}}
        nets = {name: net.describe() for name, net in self._networks().items() if hasattr(net, "describe")}
        if nets:
            d["feature_networks"] = nets
        if self._reference_info:
            d["reference"] = (next(iter(self._reference_info.values())) if len(self._reference_info) == 1
                              else self._reference_info)
        if self.unavailable:
            d["unavailable"] = {k: reason for k, (_, reason) in self.unavailable.items()}
        return d
