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
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fpdm_bench import __version__
from fpdm_bench.data import open_dataset
from fpdm_bench.data.base import DataError, collate, load_rgb
from fpdm_bench.env import environment, git_commit
from fpdm_bench.errors import BenchError
from fpdm_bench.io import atomic_write_bytes, atomic_write_text
from fpdm_bench.seeding import make_generators, sample_seed

# Fields that define what a run directory holds: a rerun must agree on all of them to resume.
IDENTITY_FIELDS = ("model", "checkpoint", "model_args", "dataset", "data_root", "split", "size", "limit",
                   "seed", "protocol", "skip_bad")


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


def read_records(run_dir: Path) -> dict[str, dict]:
    """All finished pairs of all shards: pair_id -> record. A torn last line (killed mid-write) is
    dropped from the file so that later appends start on a fresh line."""
    records: dict[str, dict] = {}
    for path in sorted(run_dir.glob("samples*.jsonl")):
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            data = data[: data.rfind(b"\n") + 1]
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


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    """[B,3,H,W] in [0,1] -> uint8 [B,H,W,3], rounding like PIL/torchvision's to_pil_image."""
    arr = images.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)
    return arr.permute(0, 2, 3, 1).cpu().numpy()


def _from_uint8(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float().div(255.0)


def _save_png(path: Path, arr: np.ndarray) -> None:
    import io

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def _check_config(run_dir: Path, cfg: RunConfig, extra: dict) -> None:
    """Write config.json on the first start; on a rerun, refuse to mix results of different runs."""
    path = run_dir / "config.json"
    if path.exists():
        old = json.loads(path.read_text())
        mine = {**cfg.identity(), **extra}
        diff = {k: (old.get("identity", {}).get(k), v) for k, v in mine.items()
                if old.get("identity", {}).get(k) != v}
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
    dataset = open_dataset(cfg.dataset, cfg.data_root, cfg.split, tuple(cfg.size) if cfg.size else None,
                           cfg.skip_bad)
    pairs = dataset.pairs[: cfg.limit] if cfg.limit else dataset.pairs
    if not pairs:
        raise BenchError(f"dataset {cfg.dataset!r} ({dataset.root}) has no {cfg.split} pairs")
    pairs_sha = _pairs_sha(pairs)
    run_dir.mkdir(parents=True, exist_ok=True)
    _check_config(run_dir, cfg, {"pairs_sha256": pairs_sha})

    from fpdm_bench.models import load_model
    from fpdm_bench.scoring import Scorer

    dtype = getattr(torch, cfg.dtype)
    model = load_model(cfg.model, cfg.checkpoint, device=cfg.device, dtype=dtype, **cfg.model_args)
    atomic_write_text(run_dir / "model.json", json.dumps(model.info(), indent=2, sort_keys=True) + "\n")
    scorer = Scorer(cfg.protocol, device=cfg.device, dataset=dataset)

    index = {rec.pair_id: i for i, rec in enumerate(dataset.pairs)}
    done = read_records(run_dir)
    mine = [r for k, r in enumerate(pairs) if k % shard_n == shard_i]
    todo = [r for r in mine if r.pair_id not in done]
    (run_dir / "samples").mkdir(exist_ok=True)
    jsonl = run_dir / _jsonl_name(shard_i, shard_n)
    log(f"{cfg.model} on {cfg.dataset}/{cfg.split}: {len(pairs)} pairs, shard {shard_i}/{shard_n} has "
        f"{len(mine)}, {len(mine) - len(todo)} already done")

    from tqdm.auto import tqdm

    bar = tqdm(total=len(mine), initial=len(mine) - len(todo), unit="img", disable=not cfg.progress,
               desc=cfg.model, file=sys.stderr)
    fresh = len(todo) == len(pairs)  # this process sees every pair: its set-level state is complete
    skipped: list[dict] = []
    with open(jsonl, "a") as out:
        for start in range(0, len(todo), cfg.batch_size):
            chunk = todo[start: start + cfg.batch_size]
            samples = []
            for rec in chunk:
                try:
                    samples.append(dataset[index[rec.pair_id]])
                except DataError as e:
                    if not cfg.skip_bad:
                        raise
                    skipped.append({"pair_id": rec.pair_id, "reason": str(e)})
                    out.write(json.dumps({"pair_id": rec.pair_id, "skipped": str(e)}) + "\n")
            if not samples:
                continue
            batch = collate(samples)
            gens = make_generators(cfg.seed, batch["pair_id"], device=cfg.device)
            t0 = time.perf_counter()
            with torch.inference_mode():
                images = model.generate(batch, gens)
            if images.shape[-2:] != batch["target"].shape[-2:]:
                raise BenchError(f"model {cfg.model} returned {tuple(images.shape[-2:])} images for "
                                 f"{tuple(batch['target'].shape[-2:])} inputs")
            seconds = (time.perf_counter() - t0) / len(samples)
            arr = _to_uint8(images)
            quantised = _from_uint8(arr)  # score exactly what is saved
            for pid, a in zip(batch["pair_id"], arr):
                _save_png(run_dir / "samples" / f"{pid}.png", a)
            per = scorer.paired(quantised, batch)
            if fresh:
                scorer.update_set(quantised)
            for pid, m in zip(batch["pair_id"], per):
                out.write(json.dumps({"pair_id": pid, "seed": sample_seed(cfg.seed, pid), "metrics": m,
                                      "generate_seconds": seconds, "batch_size": len(samples)}) + "\n")
            out.flush()
            os.fsync(out.fileno())
            bar.update(len(chunk))
    bar.close()
    return finalize(run_dir, cfg, dataset, pairs, scorer if fresh else None, log)


def _pairs_sha(pairs) -> str:
    import hashlib

    h = hashlib.sha256()
    for r in pairs:
        h.update(f"{r.pair_id}\t{r.source}\t{r.target}\n".encode())
    return h.hexdigest()


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
    if scorer is None:
        from fpdm_bench.scoring import Scorer

        scorer = Scorer(cfg.protocol, device=cfg.device, dataset=dataset)
        if scorer.needs_set_pass():
            for start in range(0, len(finished), cfg.batch_size):
                paths = [run_dir / "samples" / f"{r['pair_id']}.png" for r in finished[start: start + cfg.batch_size]]
                scorer.update_set(torch.stack([load_rgb(p) for p in paths]))
    metrics = scorer.finalize(finished)
    gen_s = [r["generate_seconds"] for r in finished]
    results = {
        "fpdm_bench_version": __version__,
        "command": " ".join(sys.argv),
        "config": {**asdict(cfg), "shard": None},
        "environment": environment(cfg.device),
        "git_commit": git_commit(),
        "dataset": {**dataset.describe(), "n_pairs_run": len(pairs), "pairs_sha256_run": _pairs_sha(pairs)},
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
    dataset = open_dataset(cfg.dataset, cfg.data_root, cfg.split, tuple(cfg.size) if cfg.size else None,
                           cfg.skip_bad)
    pairs = dataset.pairs[: cfg.limit] if cfg.limit else dataset.pairs
    return finalize(run_dir, cfg, dataset, pairs, None, log)
