"""What a run holds for a comparison: results, per-sample values, stored features, reference statistics.

A comparison reads a run directory (or a bare results.json, or a results dict); the per-sample
data exists only for a run directory (samples.jsonl and features/, see :mod:`fpdm_bench.rundir`).
Everything here is read-only: nothing is generated, scored or cached.
"""
from __future__ import annotations

from functools import cache, cached_property
from pathlib import Path

import numpy as np

from fpdm_bench.errors import BenchError
from fpdm_bench.results import Results


class Unavailable(Exception):
    """Per-sample data a statistic needs is not there; the message says what is missing. ``hint``: how
    to get it (said once however many metrics lack it)."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


def rebuild_hint(run: str) -> str:
    return (f"to recompute them, move {run}/results.json aside and run `fpdm-bench merge {run}` (it recomputes the "
            f"reference statistics from the reference images, with the same dataset and weights, and writes the "
            f"same numbers)")


class RunData:
    """A run as a comparison sees it. ``source``: a run directory, its results.json, another
    results.json file, a dict or a :class:`Results`."""

    def __init__(self, source, label: str | None = None):
        self.results = Results.of(source)
        self.label = label or (str(source) if isinstance(source, (str, Path)) else self.results.model)
        self.dir: Path | None = None
        if self.results.path is not None:
            folder = self.results.path.parent
            if (folder / "config.json").is_file() and any(folder.glob("samples*.jsonl")):
                self.dir = folder

    # --- records ---------------------------------------------------------------------------------
    @cached_property
    def records(self) -> dict[str, dict] | None:
        """pair id -> samples.jsonl record (scored or skipped); None without a run directory."""
        if self.dir is None:
            return None
        from fpdm_bench.rundir import read_records

        return read_records(self.dir)

    def pair_status(self) -> dict[str, bool] | None:
        """pair id -> True if scored, False if skipped (records and results.json's ``skipped``)."""
        if self.records is None:
            return None
        status = {pid: "metrics" in rec for pid, rec in self.records.items()}
        for s in self.results.data.get("skipped", []):
            pid = s.get("pair_id") if isinstance(s, dict) else None
            if pid is not None:
                status.setdefault(pid, False)
        return status

    def scored(self) -> list[str]:
        return [p for p, ok in (self.pair_status() or {}).items() if ok]

    def values(self, key: str) -> dict[str, float]:
        """pair id -> the per-sample value of ``key`` (scored pairs that have one)."""
        out = {}
        for pid, rec in (self.records or {}).items():
            v = rec.get("metrics", {}).get(key)
            if v is not None:
                out[pid] = float(v)
        return out

    @cached_property
    def sequences(self) -> list[dict] | None:
        """The run's sequences.jsonl rows (one per video); None without a run directory or the file."""
        if self.dir is None:
            return None
        from fpdm_bench.rundir import read_sequences

        return read_sequences(self.dir)

    def video_values(self, key: str) -> dict[str, float]:
        """video id -> the per-video value of sequence metric ``key`` (videos that have one)."""
        return {row["video"]: float(row["metrics"][key]) for row in self.sequences or []
                if row.get("metrics", {}).get(key) is not None}

    # --- metric settings -------------------------------------------------------------------------
    def entry(self, key: str) -> dict:
        e = self.results.metrics.get(key)
        return e if isinstance(e, dict) else {}

    def settings(self, key: str) -> dict:
        """The settings the run's metric used (results.json protocol.metrics_used)."""
        return dict(self.results.data.get("protocol", {}).get("metrics_used", {}).get(key, {}) or {})

    def metric_class(self, key: str):
        from fpdm_bench.metrics.base import METRICS

        name = self.entry(key).get("metric") or self.settings(key).get("metric") or key
        return METRICS.get(name) if name in METRICS else None

    def drop_remainder(self, key: str) -> int:
        return int(self.settings(key).get("drop_remainder") or 0)

    @cache  # opens the dataset for name-ordered drops: once per run and metric
    def dropped_pairs(self, key: str) -> set[str]:
        """The scored pairs metric ``key`` left out (a protocol's remainder drop: the last len % k
        pairs in the official file order; see Protocol.remainder_dropped)."""
        k = self.drop_remainder(key)
        scored = self.scored()
        if not k or len(scored) < k:
            return set()
        from fpdm_bench.protocols import get_protocol

        try:
            protocol = get_protocol(self.results.protocol)
        except Exception as e:  # noqa: BLE001 - a protocol of a package not installed here
            raise Unavailable(f"protocol {self.results.protocol} unknown here ({e}): its remainder drop cannot be "
                              f"reproduced") from None
        if "{source}" not in protocol.generated_name and "{target}" not in protocol.generated_name:
            return protocol.remainder_dropped(scored, k)
        cfg = self.results.data.get("config", {})
        try:
            from fpdm_bench.data import open_dataset

            ds = open_dataset(cfg["dataset"], cfg.get("data_root"), cfg.get("split", "test"), skip_bad=True)
        except Exception as e:  # noqa: BLE001 - dataset not on this machine
            raise Unavailable(f"the dropped pairs follow file names of the dataset, which cannot be opened here ({e})") \
                from None
        ids = set(scored)
        return protocol.remainder_dropped([r for r in ds.pairs if r.pair_id in ids], k)

    # --- set metrics -----------------------------------------------------------------------------
    def feature_group(self, key: str) -> str:
        """The feature file group of set metric ``key`` (fpdm_bench.scoring.feature_group)."""
        from fpdm_bench.scoring import feature_group

        view = (self.results.data.get("protocol", {}).get("metrics", {}).get(key) or {}).get("view")
        return feature_group(self.settings(key).get("backbone") or "fid-inception", view)

    def features(self, key: str, pair_ids: list[str]) -> np.ndarray:
        """[len(pair_ids), d] float32 stored features of set metric ``key`` (Unavailable if not stored)."""
        if self.records is None:
            raise Unavailable(f"{self.label}: no run directory (samples.jsonl) next to results.json")
        group = self.feature_group(key)
        recs = [self.records[p] for p in pair_ids]
        if not all(group in r.get("features", {}) for r in recs):
            raise Unavailable(f"{self.label}: no stored {group} features (a run made before features were "
                              f"stored)")
        from fpdm_bench.rundir import FeatureStore

        return FeatureStore(self.dir).read(group, recs)

    def reference_info(self, key: str) -> dict:
        used = self.results.data.get("protocol", {}).get("reference_used") or {}
        if "cache_key" in used:
            return used
        return used.get(self.feature_group(key), {})

    def reference_key(self, key: str) -> str | None:
        return self.reference_info(key).get("cache_key")

    @cache  # one read of the cached file per run, metric and cache folder (FID and KID share it)
    def reference(self, key: str, cache: Path | None = None) -> dict:
        """{"mu", "sigma", "factor", "kid_features"} of set metric ``key``'s reference, from the refstats
        cache (the moments of its remainder drop). Unavailable, with the way to rebuild it, if missing."""
        from fpdm_bench.refstats import cached_file, load_cached

        ck = self.reference_key(key)
        if not ck:
            raise Unavailable(f"{self.label}: results.json names no reference statistics for {key}")
        file = cached_file(ck, cache)
        d = self.drop_remainder(key)
        if not file.is_file():
            raise Unavailable(f"its reference statistics (cache key {ck[:12]}…) are not in {file.parent}",
                              "reference statistics: " + (rebuild_hint(str(self.dir)) if self.dir else
                                                          "rerun the run to recompute them"))
        try:
            ref = load_cached(ck, (d,), cache)
        except KeyError as e:
            raise Unavailable(str(e.args[0])) from None
        m = ref.moments[d]
        return {"mu": m.mu, "sigma": m.sigma, "factor": m.factor, "kid_features": ref.kid_features}


def check_comparable(base: RunData, new: RunData) -> None:
    """Refuse (BenchError) runs whose numbers are not comparable: another protocol, dataset, pair set,
    input perturbation or reference set."""
    b, c = base.results, new.results
    for run, role in ((b, "baseline"), (c, "candidate")):
        if run.random_weights:
            raise BenchError(f"the {role} ({run.path or run.model}) is a random-weight run (--model-arg init=random): "
                             f"it scored no metric and is no model's quality; compare runs of trained weights")
    if b.protocol != c.protocol:
        raise BenchError(f"results use different protocols ({b.protocol} vs {c.protocol}); compare runs under the "
                         f"same protocol")
    if b.dataset != c.dataset and "?" not in (b.dataset, c.dataset):
        raise BenchError(f"results are on different datasets ({b.dataset} vs {c.dataset}); compare runs on the "
                         f"same dataset")
    if b.perturbation != c.perturbation:
        raise BenchError(f"results were measured on differently perturbed inputs ({b.perturbation or 'clean'} vs "
                         f"{c.perturbation or 'clean'}); compare runs under the same perturbation")
    if b.pairs_sha256 and c.pairs_sha256 and b.pairs_sha256 != c.pairs_sha256:
        raise BenchError("results were measured on different pairs (pairs_sha256 differ: another --limit, split or "
                         "pair list); their numbers are not comparable")
    for key in set(b.metrics) & set(c.metrics):
        kb, kc = base.reference_key(key), new.reference_key(key)
        if kb and kc and kb != kc:
            raise BenchError(f"{key}: the runs used different reference statistics (cache keys {kb[:12]}… vs "
                             f"{kc[:12]}…: other reference images, --reference-folder or feature weights); "
                             f"their numbers are not comparable")
