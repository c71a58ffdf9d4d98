"""Generate + score a model on a dataset, resumably, in one pass.

Run directory layout:
    config.json                  what is being run (written once; a rerun must match it)
    samples/<pair_id>.png        generated images (written atomically before their jsonl line)
    samples.jsonl                one line per finished pair (shard k of n: samples.shard-k-of-n.jsonl)
    results.json                 config, environment, hashes, model info, metrics (written atomically
                                 once every pair of every shard is done)

A rerun of the same command skips pairs that already have a jsonl line, so a run killed at any point
resumes where it stopped. Shards are strided (pair i goes to shard i mod n) and share the run
directory; the last shard to finish (or ``fpdm-bench merge RUN``) writes results.json.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from fpdm_bench import __version__
from fpdm_bench.data import open_dataset
from fpdm_bench.data.base import DataError, collate, pairs_sha256
from fpdm_bench.env import environment, git_commit
from fpdm_bench.errors import BenchError
from fpdm_bench.images import png_bytes, read_image
from fpdm_bench.io import atomic_write_bytes, atomic_write_text
from fpdm_bench.seeding import make_generators, sample_seed

# Fields that define what a run directory holds: a rerun must agree on all of them to resume.
IDENTITY_FIELDS = ("model", "checkpoint", "model_args", "dataset", "data_root", "split", "size", "limit",
                   "seed", "protocol", "skip_bad", "convert", "reference_folder", "allow_upsampled")


@dataclass
class RunConfig:
    model: str
    dataset: str
    out: str
    data_root: str | None = None
    split: str = "test"
    size: list[int] | None = None  # (H, W) to load the dataset at; None = its native size
    checkpoint: str | None = None
    model_args: dict = field(default_factory=dict)
    limit: int | None = None
    batch_size: int = 8
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    shard: str = "0/1"
    protocol: str = "standard"
    skip_bad: bool = False
    convert: bool = False  # read non-RGB dataset images as RGB instead of refusing them
    reference_folder: str | None = None  # set metrics' reference images (default: the protocol's rule)
    allow_upsampled: bool = False  # score even if real images are smaller than the protocol's size
    weights: dict = field(default_factory=dict)  # metric weight name -> file (see fpdm_bench.weights)
    progress: bool = True

    def shard_index(self) -> tuple[int, int]:
        try:
            i, n = (int(x) for x in self.shard.split("/"))
        except ValueError:
            raise BenchError(f"--shard must look like i/n (e.g. 0/2), got {self.shard!r}") from None
        if not (n >= 1 and 0 <= i < n):
            raise BenchError(f"--shard {self.shard}: need 0 <= i < n")
        return i, n

    def identity(self) -> dict:
        d = asdict(self)
        return {k: d[k] for k in IDENTITY_FIELDS}


def _jsonl_name(i: int, n: int) -> str:
    return "samples.jsonl" if n == 1 else f"samples.shard-{i}-of-{n}.jsonl"


def read_records(run_dir: Path, own: Path | None = None) -> dict[str, dict]:
    """All finished pairs of all shards: pair_id -> record. A torn last line (killed mid-write, or
    another shard's line being written right now) is ignored; in this process's own file (``own``)
    it is cut off, so that later appends start on a fresh line."""
    records: dict[str, dict] = {}
    for path in sorted(run_dir.glob("samples*.jsonl")):
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            data = data[: data.rfind(b"\n") + 1]
            if own is not None and path.resolve() == Path(own).resolve():
                with open(path, "r+b") as f:
                    f.truncate(len(data))
        for lineno, line in enumerate(data.decode().splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                raise DataError(path, f"line {lineno} is not valid JSON; remove it to resume") from None
            records.setdefault(rec["pair_id"], rec)
    return records


def _check_config(run_dir: Path, cfg: RunConfig, extra: dict) -> None:
    """Write config.json on the first start; on a rerun, refuse to mix results of different runs."""
    path = run_dir / "config.json"
    if path.exists():
        old = json.loads(path.read_text()).get("identity", {})
        defaults = RunConfig(model="", dataset="", out="").identity()  # fields older runs did not record
        mine = {**cfg.identity(), **extra}
        diff = {k: (old.get(k, defaults.get(k)), v) for k, v in mine.items() if old.get(k, defaults.get(k)) != v}
        if diff:
            details = "; ".join(f"{k}: {a!r} there vs {b!r} now" for k, (a, b) in diff.items())
            raise BenchError(f"{run_dir} holds a different run ({details}). Use another --out, "
                             f"or delete that folder to start over.")
        return
    atomic_write_text(path, json.dumps({"identity": {**cfg.identity(), **extra}, "config": asdict(cfg)},
                                       indent=2, sort_keys=True) + "\n")


def run(cfg: RunConfig, log=print) -> dict | None:
    """Run (or resume) one shard. Returns the results dict once every shard is done, else None."""
    from fpdm_bench.data import DATASETS
    from fpdm_bench.models import MODELS

    shard_i, shard_n = cfg.shard_index()
    MODELS.check(cfg.model)
    DATASETS.check(cfg.dataset)
    run_dir = Path(cfg.out)
    dataset = _open(cfg)
    pairs = dataset.pairs[: cfg.limit] if cfg.limit else dataset.pairs
    if not pairs:
        raise BenchError(f"dataset {cfg.dataset!r} ({dataset.root}) has no {cfg.split} pairs")
    from fpdm_bench.evaluate import evaluate
    from fpdm_bench.models import load_model

    # Settings are validated (protocol vs data, model and checkpoint) before anything is written, so a
    # corrected rerun is not refused as "a different run".
    scorer = _scorer(cfg, dataset, pairs)
    model = load_model(cfg.model, cfg.checkpoint, device=cfg.device, dtype=getattr(torch, cfg.dtype), dataset=cfg.dataset,
                       **cfg.model_args)
    unavailable = model.prepare(pairs, dataset, log=log) or {}  # e.g. released images missing, --model-arg missing=skip
    run_dir.mkdir(parents=True, exist_ok=True)
    _check_config(run_dir, cfg, {"pairs_sha256": pairs_sha256(pairs)})
    atomic_write_text(run_dir / "model.json", json.dumps(model.info(), indent=2, sort_keys=True) + "\n")

    jsonl = run_dir / _jsonl_name(shard_i, shard_n)
    done = read_records(run_dir, own=jsonl)
    position = {rec.pair_id: k for k, rec in enumerate(pairs)}
    mine = [r for k, r in enumerate(pairs) if k % shard_n == shard_i]
    todo = [r for r in mine if r.pair_id not in done]
    unproduced = [r for r in todo if r.pair_id in unavailable]
    todo = [r for r in todo if r.pair_id not in unavailable]
    (run_dir / "samples").mkdir(exist_ok=True)
    log(f"{cfg.model} on {cfg.dataset}/{cfg.split}: {len(pairs)} pairs, shard {shard_i}/{shard_n} has "
        f"{len(mine)}, {len(mine) - len(todo) - len(unproduced)} already done"
        + (f", {len(unproduced)} skipped (the model cannot produce them)" if unproduced else ""))
    fresh = len(todo) == len(pairs)  # this process sees every pair: its set-level state is complete

    with open(jsonl, "a") as out:
        for r in unproduced:  # recorded like --skip-bad's pairs: counted in results.json, never scored
            out.write(json.dumps({"pair_id": r.pair_id, "skipped": unavailable[r.pair_id]}) + "\n")
        out.flush()

        def sink(batch, arr, recs, seconds):
            for pid, a in zip(batch["pair_id"], arr):
                atomic_write_bytes(run_dir / "samples" / f"{pid}.png", png_bytes(a))
            for r in recs:
                out.write(json.dumps({**r, "seed": sample_seed(cfg.seed, r["pair_id"]), "generate_seconds": seconds,
                                      "batch_size": len(recs)}) + "\n")
            out.flush()
            os.fsync(out.fileno())

        def produce(batch):
            return model.generate(batch, make_generators(cfg.seed, batch["pair_id"], device=cfg.device))

        batches = _batches(dataset, todo, cfg.batch_size, position, cfg.skip_bad, out)
        evaluate(batches, produce, scorer if fresh else _PairedOnly(scorer), name=cfg.model, sink=sink,
                 total=len(mine), initial=len(mine) - len(todo), progress=cfg.progress)
    return finalize(run_dir, cfg, dataset, pairs, scorer if fresh else None, log)


class _PairedOnly:
    """A scorer view for a process that does not see every pair: its set-level state would be
    partial, so set metrics are fed later, from samples/, when results.json is written."""

    def __init__(self, scorer):
        self.scorer = scorer

    def update(self, generated, batch, ids=None):
        return self.scorer.update(generated, batch, ids, set_metrics=False)


def _open(cfg: RunConfig):
    """The dataset, loaded at --size, else at the protocol's evaluation size (so ground truth is read
    from the files once at that size, never resized twice), else at its native size."""
    from fpdm_bench.protocols import get_protocol

    size = cfg.size or get_protocol(cfg.protocol).eval_size
    return open_dataset(cfg.dataset, cfg.data_root, cfg.split, tuple(size) if size else None, cfg.skip_bad,
                        cfg.convert)


def _scorer(cfg: RunConfig, dataset, pairs):
    from fpdm_bench.scoring import Scorer

    return Scorer(cfg.protocol, device=cfg.device, dataset=dataset, pairs=pairs, convert=cfg.convert,
                  reference_folder=cfg.reference_folder, allow_upsampled=cfg.allow_upsampled, weights=cfg.weights)


def _batches(dataset, todo, batch_size, position, skip_bad, out):
    """Collated batches of the pairs in ``todo``; with skip_bad, a pair whose image is bad gets a
    'skipped' line in samples.jsonl instead. ``ids`` (the pair's position in the run) key the
    set metrics' bootstrap weights, so they do not depend on batching or sharding."""
    index = {rec.pair_id: i for i, rec in enumerate(dataset.pairs)}
    for start in range(0, len(todo), batch_size):
        samples = []
        for rec in todo[start: start + batch_size]:
            try:
                samples.append(dataset[index[rec.pair_id]])
            except DataError as e:
                if not skip_bad:
                    raise
                out.write(json.dumps({"pair_id": rec.pair_id, "skipped": str(e)}) + "\n")
        if samples:
            batch = collate(samples)
            batch["ids"] = [str(position[p]) for p in batch["pair_id"]]
            yield batch


def finalize(run_dir: Path, cfg: RunConfig, dataset, pairs, scorer=None, log=print):
    """Write results.json if every pair is done. ``scorer`` with complete set-level state is reused;
    otherwise the set-level metrics are recomputed from samples/ (resume and shard merge)."""
    records = read_records(run_dir)
    missing = [r.pair_id for r in pairs if r.pair_id not in records]
    if missing:
        log(f"{len(missing)} pairs not done yet (other shards?); results.json is written when all are")
        return None
    ordered = [records[r.pair_id] for r in pairs]
    finished = [r for r in ordered if "metrics" in r]
    if len(finished) < len(pairs):  # pairs skipped as bad: remainders are counted over the scored ones
        scorer = None
    if scorer is None:
        from fpdm_bench.evaluate import evaluate

        done_ids = {r["pair_id"] for r in finished}
        scorer = _scorer(cfg, dataset, [p for p in pairs if p.pair_id in done_ids])
        if scorer.needs_set_pass():
            position = {rec.pair_id: k for k, rec in enumerate(pairs)}

            def stored(chunk):
                return {"pair_id": [r["pair_id"] for r in chunk], "ids": [str(position[r["pair_id"]]) for r in chunk]}

            batches = (stored(finished[s: s + cfg.batch_size]) for s in range(0, len(finished), cfg.batch_size))
            evaluate(batches, lambda b: torch.stack([read_image(run_dir / "samples" / f"{p}.png") for p in b["pair_id"]]),
                     scorer, name=cfg.model, set_only=True, check_size=False)
    metrics = scorer.compute(finished)
    gen_s = [r["generate_seconds"] for r in finished]
    results = {
        "fpdm_bench_version": __version__,
        "command": " ".join(sys.argv),
        "config": {**asdict(cfg), "shard": None},
        "environment": environment(cfg.device),
        "git_commit": git_commit(),
        "dataset": {**dataset.describe(), "n_pairs_run": len(pairs), "pairs_sha256_run": pairs_sha256(pairs)},
        "model": json.loads((run_dir / "model.json").read_text()),
        "protocol": scorer.describe(),
        "n": len(finished),
        "skipped": [{"pair_id": r["pair_id"], "reason": r["skipped"]} for r in ordered if "skipped" in r]
        + dataset.skipped,
        "timing": {"generate_seconds_per_image_mean": float(np.mean(gen_s)) if gen_s else None,
                   "generate_seconds_total": float(np.sum(gen_s)) if gen_s else None},
        "metrics": metrics,
    }
    atomic_write_text(run_dir / "results.json", json.dumps(results, indent=2, sort_keys=True) + "\n")
    return results


def merge(run_dir: str | Path, log=print) -> dict | None:
    """Write results.json from a run directory whose shards have all finished."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.exists():
        raise DataError(cfg_path, "not a run directory (config.json missing)")
    cfg = RunConfig(**json.loads(cfg_path.read_text())["config"])
    dataset = _open(cfg)
    pairs = dataset.pairs[: cfg.limit] if cfg.limit else dataset.pairs
    return finalize(run_dir, cfg, dataset, pairs, None, log)
