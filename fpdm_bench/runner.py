"""Generate + score a model on a dataset, resumably, in one pass.

The run directory's files are described in :mod:`fpdm_bench.rundir`. A rerun of the same command
skips pairs that already have a jsonl line, so a run killed at any point resumes where it stopped;
rerunning a finished run reads its results.json and does nothing else. Shards are strided (pair i
goes to shard i mod n) and share the run directory; the last shard to finish (or ``fpdm-bench merge
RUN``) writes results.json. One process per shard: a second one started on the same shard (a double
launch, a requeued job) is refused with the holder's name (:mod:`fpdm_bench.lock`). Under torchrun,
rank r of w runs shard r/w and rank 0 writes results.json (:mod:`fpdm_bench.distributed`).

While the model works, the next batches are decoded (and perturbed, ``--perturb``) in DataLoader
workers (:mod:`fpdm_bench.loader`) and the last ones are written by a background thread
(:mod:`fpdm_bench.writer`): PNGs, the set metrics' feature rows, then the jsonl lines. The set
metrics are computed at the end from the stored features, folded in dataset order, so a resumed,
sharded or multi-process run gives the numbers of one uninterrupted process; the sequence metrics
(videos) too, from the stored images, video by video (:mod:`fpdm_bench.sequences`, ``sequences.jsonl``).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from fpdm_bench.data import open_for_protocol
from fpdm_bench.data.base import pairs_sha256
from fpdm_bench.errors import BenchError
from fpdm_bench.images import png_bytes, read_image
from fpdm_bench.io import atomic_write_bytes, atomic_write_text
from fpdm_bench.results import build as build_results
from fpdm_bench.run_config import RunConfig
from fpdm_bench.rundir import (FeatureStore, check_config, check_samples, has_features, jsonl_name, public,
                               read_records, sha256_hex, write_sequences)
from fpdm_bench.seeding import make_generators, sample_seed

def run(cfg: RunConfig, log=print) -> dict | None:
    """Run (or resume) one shard. Returns the results dict once every shard is done, else None
    (and None on ranks other than 0 under torchrun)."""
    from fpdm_bench import distributed, weights_fetch

    dist = distributed.context()
    if dist is not None:
        if cfg.shard != "0/1":
            raise BenchError("--shard and torchrun do not combine: under torchrun each rank is a shard")
        cfg.shard, cfg.device = f"{dist.rank}/{dist.world}", dist.device(cfg.device)
        cfg.progress = cfg.progress and dist.rank == 0
    # a metric's weight fetched while scoring draws its bar only where the run draws one
    with weights_fetch.progress_bars(cfg.progress):
        return _run(cfg, dist, log)


def _run(cfg: RunConfig, dist, log) -> dict | None:
    from fpdm_bench.data import DATASETS
    from fpdm_bench.models import MODELS

    cfg.validate()
    shard_i, shard_n = cfg.shard_index()
    MODELS.check(cfg.model)
    DATASETS.check(cfg.dataset)
    perturbation = cfg.perturbation()
    if perturbation and not MODELS.get(cfg.model).uses_inputs:
        raise BenchError(f"model {cfg.model!r} does not read its inputs (released images), so --perturb "
                         f"{cfg.perturb} cannot change its images; perturb a model that generates")
    run_dir = Path(cfg.out)
    dataset = _open(cfg)
    pairs = dataset.pairs[: cfg.limit] if cfg.limit else dataset.pairs
    if not pairs:
        raise BenchError(f"dataset {cfg.dataset!r} ({dataset.root}) has no {cfg.split} pairs")
    if cfg.random_weights:
        from fpdm_bench.models.random_init import RANDOM_NOTE

        log(f"{cfg.model}: {RANDOM_NOTE}")
    identity = {**cfg.identity(), "pairs_sha256": pairs_sha256(pairs)}
    finished = _finished(run_dir, cfg, identity)
    if finished is not None:
        log(f"{run_dir} is finished already: its results.json is read, nothing is run again "
            f"(delete results.json to score again, or the folder to start over)")
        return finished if dist is None or dist.rank == 0 else None
    from fpdm_bench.lock import ShardLock
    from fpdm_bench.models import load_model

    jsonl = run_dir / jsonl_name(shard_i, shard_n)
    lock = ShardLock(jsonl.with_suffix(".lock"), f"{run_dir} shard {shard_i}/{shard_n}")
    lock.check()  # a second launch is refused before it loads the model (acquire() below decides)
    # Settings are validated (protocol vs data, model and checkpoint) before anything is written, so a
    # corrected rerun is not refused as "a different run".
    scorer = _scorer(cfg, dataset, pairs, log)
    log(f"loading model {cfg.model}" + (f" from {cfg.checkpoint}" if cfg.checkpoint else "") + " ...")
    model = load_model(cfg.model, cfg.checkpoint, device=cfg.device, dtype=getattr(torch, cfg.dtype), dataset=cfg.dataset,
                       **cfg.model_args)
    unavailable = model.prepare(pairs, dataset, log=log) or {}  # e.g. released images missing, --model-arg missing=skip
    if dist is not None:
        dist.init(cfg.device)
    run_dir.mkdir(parents=True, exist_ok=True)
    check_config(run_dir, identity, {**asdict(cfg), "shard": cfg.shard if dist is None else "0/1"},
                 RunConfig(model="", dataset="", out="").identity())
    atomic_write_text(run_dir / "model.json", json.dumps(model.info(), indent=2, sort_keys=True) + "\n")

    timing: dict = {}
    with lock:
        if lock.taken_over:
            log(f"took over the lock of pid {lock.taken_over.get('pid')} on {lock.taken_over.get('host')}, "
                f"which is gone")
        _generate(cfg, run_dir, jsonl, dataset, pairs, model, scorer, unavailable, perturbation, timing, log)
    if dist is not None:
        return _finalize_distributed(dist, run_dir, cfg, dataset, pairs, scorer, log)
    return finalize(run_dir, cfg, dataset, pairs, log, timing=timing, scorer=scorer)


def _finished(run_dir: Path, cfg: RunConfig, identity: dict) -> dict | None:
    """A finished run's results, when run_dir holds this very run (a different one is refused)."""
    if not (run_dir / "results.json").is_file() or not (run_dir / "config.json").is_file():
        return None
    check_config(run_dir, identity, {}, RunConfig(model="", dataset="", out="").identity())
    from fpdm_bench.results import Results

    return Results.load(run_dir).data


def _generate(cfg, run_dir, jsonl, dataset, pairs, model, scorer, unavailable, perturbation, timing, log) -> None:
    """This shard's missing pairs: generated, scored, written (PNG, features, jsonl line). The samples
    of this shard's pairs that are reused are checked first (:func:`fpdm_bench.rundir.check_samples`):
    one that fails (PNG missing, unreadable or not its checksum, a feature row changed) is reported and
    generated again, never scored as it is."""
    from fpdm_bench.evaluate import evaluate
    from fpdm_bench.loader import batches
    from fpdm_bench.writer import BackgroundWriter

    shard_i, shard_n = cfg.shard_index()
    done = read_records(run_dir, own=jsonl)
    position = {rec.pair_id: k for k, rec in enumerate(pairs)}
    mine = [r for k, r in enumerate(pairs) if k % shard_n == shard_i]
    failed = check_samples(run_dir, [done[r.pair_id] for r in mine if r.pair_id in done])
    if failed:
        n, shown = len(failed), "; ".join(list(failed.values())[:3]) + ("; ..." if len(failed) > 3 else "")
        log(f"resume: {n} sample{'s' if n > 1 else ''} failed {'their' if n > 1 else 'its'} check ({shown}) and "
            f"{'are' if n > 1 else 'is'} generated again")
        done = {pid: rec for pid, rec in done.items() if pid not in failed}
    todo = [r for r in mine if r.pair_id not in done]
    unproduced = [r for r in todo if r.pair_id in unavailable]
    todo = [r for r in todo if r.pair_id not in unavailable]
    (run_dir / "samples").mkdir(exist_ok=True)
    log(f"{cfg.model} on {cfg.dataset}/{cfg.split}: {len(pairs)} pairs, shard {shard_i}/{shard_n} has "
        f"{len(mine)}, {len(mine) - len(todo) - len(unproduced)} already done"
        + (f", {len(unproduced)} skipped (the model cannot produce them)" if unproduced else "")
        + (f"; inputs perturbed: {cfg.perturb}" if perturbation else ""))
    store = FeatureStore(run_dir)

    with open(jsonl, "a") as out, BackgroundWriter() as writer:
        def lines(recs):
            out.write("".join(json.dumps(r) + "\n" for r in recs))
            out.flush()

        # recorded like --skip-bad's pairs: counted in results.json, never scored
        def redo(pid):  # the line of a sample that failed its check supersedes the old one (read_records)
            return {"regenerated": failed[pid]} if pid in failed else {}

        writer.submit(lambda: lines([{"pair_id": r.pair_id, "skipped": unavailable[r.pair_id], **redo(r.pair_id)}
                                     for r in unproduced]))

        def write(batch, arr, recs, seconds, feats):
            digest = {}
            for pid, a in zip(batch["pair_id"], arr):
                data = png_bytes(a)
                atomic_write_bytes(run_dir / "samples" / f"{pid}.png", data)
                digest[pid] = sha256_hex(data)
            rows = {g: store.append(g, jsonl.name, f) for g, f in (feats or {}).items()}
            lines([{**r, "seed": sample_seed(cfg.seed, r["pair_id"]), "generate_seconds": seconds,
                    "batch_size": len(recs), "png_sha256": digest[r["pair_id"]],
                    **({"features": {g: rows[g] + k for g in rows},
                        "features_sha256": {g: sha256_hex(np.asarray(feats[g][k])) for g in rows}} if rows else {}),
                    **redo(r["pair_id"])}
                   for k, r in enumerate(recs)])
            os.fsync(out.fileno())

        def sink(batch, arr, recs, seconds, feats):
            writer.submit(lambda: write(batch, arr, recs, seconds, feats))

        def produce(batch):
            return model.generate(batch, make_generators(cfg.seed, batch["pair_id"], device=cfg.device))

        def loaded():
            for batch, bad in batches(dataset, todo, cfg.batch_size, position, cfg.workers, perturbation, cfg.seed):
                if bad and not cfg.skip_bad:
                    raise bad[0][1]
                if bad:
                    writer.submit(lambda bad=bad: lines([{"pair_id": pid, "skipped": str(e), **redo(pid)}
                                                         for pid, e in bad]))
                if batch is not None:
                    yield batch

        t0 = time.perf_counter()
        evaluate(loaded(), produce, scorer, name=cfg.model, sink=sink, total=len(mine),
                 initial=len(mine) - len(todo), progress=cfg.progress, features=True, timing=timing)
        writer.close()
        timing["wall_seconds"] = time.perf_counter() - t0
        timing["writer_seconds"] = writer.busy_seconds
        timing["images"] = len(todo)


def _open(cfg: RunConfig):
    return open_for_protocol(cfg.dataset, cfg.data_root, cfg.split, cfg.protocol, cfg.size, cfg.skip_bad, cfg.convert)


def _scorer(cfg: RunConfig, dataset, pairs, log=None):
    """The run's Scorer; ``log`` gets its notes on long waits (the FID reference statistics on a cold cache)."""
    from fpdm_bench.models.random_init import RANDOM_NOTE
    from fpdm_bench.scoring import Scorer

    return Scorer(cfg.protocol, device=cfg.device, dataset=dataset, pairs=pairs, convert=cfg.convert,
                  reference_folder=cfg.reference_folder, allow_upsampled=cfg.allow_upsampled, weights=cfg.weights,
                  not_scored=RANDOM_NOTE if cfg.random_weights else None, log=log)


def _finalize_distributed(dist, run_dir, cfg, dataset, pairs, scorer, log):
    """Gather every rank's records and feature rows to rank 0, which writes results.json. A rank sends
    the pairs of its stride, whichever jsonl holds them (pairs finished by an earlier run with another
    layout are done, so no rank generates them again)."""
    position = {rec.pair_id: k for k, rec in enumerate(pairs)}
    own = {pid: rec for pid, rec in read_records(run_dir).items()
           if pid in position and position[pid] % dist.world == dist.rank}
    groups = scorer.feature_groups()
    store = FeatureStore(run_dir)
    scored = [r for r in own.values() if "metrics" in r and has_features(r, groups)]
    feats = {g: dict(zip([r["pair_id"] for r in scored], store.read(g, scored))) for g in groups} if scored else {}
    gathered = dist.gather((own, feats))
    if dist.rank != 0:
        return None
    records, features = {}, {g: {} for g in groups}
    for recs, fs in gathered:
        records.update(recs)
        for g, rows in fs.items():
            features[g].update(rows)
    return finalize(run_dir, cfg, dataset, pairs, log, records=records, features=features, scorer=scorer,
                    distributed=dist.describe())


def finalize(run_dir: Path, cfg: RunConfig, dataset, pairs, log=print, records: dict | None = None,
             features: dict | None = None, timing: dict | None = None, scorer=None, distributed: dict | None = None):
    """Write results.json if every pair is done. The set metrics are fed the stored features of the
    finished pairs in dataset order (``features``: {group: {pair_id: row}} gathered in memory
    instead; records of runs from before features were stored are re-read from samples/).
    ``scorer``: the run's, reused when every pair was scored (its set metrics were never fed: the
    runner only took features from it); rebuilt over the scored pairs otherwise. ``distributed``: the
    launch (world size, backend) under torchrun, recorded in results.json. Skipped pairs (``--skip-bad``,
    pairs the model cannot produce) are also logged: their count and the first few with the reason."""
    records = read_records(run_dir) if records is None else records
    missing = [r.pair_id for r in pairs if r.pair_id not in records]
    if missing:
        log(f"{len(missing)} pairs not done yet (other shards?); results.json is written when all are")
        return None
    ordered = [records[r.pair_id] for r in pairs]
    finished = [r for r in ordered if "metrics" in r]
    done_ids = {r["pair_id"] for r in finished}
    if scorer is None or len(finished) < len(pairs):  # remainders are counted over the scored pairs
        scorer = _scorer(cfg, dataset, [p for p in pairs if p.pair_id in done_ids], log)
    groups = scorer.feature_groups()
    if groups:
        position = {rec.pair_id: k for k, rec in enumerate(pairs)}
        store = FeatureStore(run_dir)
        for s in range(0, len(finished), 256):
            chunk = finished[s: s + 256]
            ids = [r["pair_id"] for r in chunk]
            scorer.add_set_features(_chunk_features(chunk, groups, scorer, store, features, run_dir), ids,
                                    [str(position[p]) for p in ids])
    if scorer.paired or scorer.set:  # the bootstrap CIs and the FID/KID fold can take a while: say so
        log(f"scoring {len(finished)} images: {', '.join(m.key for m in scorer.paired + scorer.set)} "
            f"(means, bootstrap 95 % CIs{', reference statistics' if scorer.set else ''}) ...")
    # the sequence metrics read the stored images, video by video, once every shard is done
    metrics = scorer.compute([public(r) for r in finished],
                             generated=lambda pid: read_image(run_dir / "samples" / f"{pid}.png"))
    if scorer.sequence:
        write_sequences(run_dir, scorer.sequence_rows)
    gen_s = [r["generate_seconds"] for r in finished]
    results = build_results(
        "run", config={**asdict(cfg), "shard": None}, device=cfg.device,
        dataset={**dataset.describe(), "n_pairs_run": len(pairs), "pairs_sha256_run": pairs_sha256(pairs)},
        model=json.loads((run_dir / "model.json").read_text()), protocol=scorer.describe(), metrics=metrics,
        n=len(finished), perturbation=_describe_perturbation(cfg),
        skipped=[{"pair_id": r["pair_id"], "reason": r["skipped"]} for r in ordered if "skipped" in r]
        + dataset.skipped,
        timing={"generate_seconds_per_image_mean": float(np.mean(gen_s)) if gen_s else None,
                "generate_seconds_total": float(np.sum(gen_s)) if gen_s else None,
                **({"last_session": timing} if timing else {})},
        **({"random_weights": True, "note": scorer.not_scored} if scorer.not_scored else {}),
        **({"distributed": distributed} if distributed else {}))
    atomic_write_text(run_dir / "results.json", json.dumps(results, indent=2, sort_keys=True) + "\n")
    if results["skipped"]:
        sk = results["skipped"]
        log(f"{len(sk)} pair{'s' if len(sk) > 1 else ''} skipped, not scored (listed in results.json): "
            + ", ".join(s["pair_id"] for s in sk[:3]) + (", ..." if len(sk) > 3 else "")
            + f" ({'e.g. ' if len(sk) > 1 else ''}{sk[0]['reason']})")
    return results


def _chunk_features(chunk, groups, scorer, store, features, run_dir) -> dict:
    """{group: [len(chunk), d]} for finished records: gathered rows, stored rows, or (runs from before
    features were stored) features of the PNGs in samples/."""
    out = {}
    stale = [r for r in chunk if not has_features(r, groups) and not (features and r["pair_id"] in features[groups[0]])]
    recomputed = {}
    if stale:
        imgs = torch.stack([read_image(run_dir / "samples" / f"{r['pair_id']}.png") for r in stale])
        recomputed = scorer.set_features(imgs)
    for g in groups:
        rows = []
        for r in chunk:
            pid = r["pair_id"]
            if features and pid in features[g]:
                rows.append(features[g][pid])
            elif pid in {x["pair_id"] for x in stale}:
                rows.append(recomputed[g][[x["pair_id"] for x in stale].index(pid)])
            else:
                rows.append(None)
        todo = [k for k, v in enumerate(rows) if v is None]
        if todo:
            read = store.read(g, [chunk[k] for k in todo])
            for k, v in zip(todo, read):
                rows[k] = v
        out[g] = np.stack(rows)
    return out


def _describe_perturbation(cfg: RunConfig) -> dict | None:
    pert = cfg.perturbation()
    if pert is None:
        return None
    from fpdm_bench.perturb import get_perturbation

    p = get_perturbation(pert[0])
    return {**p.describe(), "severity": pert[1], "value": p.levels[pert[1] - 1], "seed": cfg.seed}


def merge(run_dir: str | Path, log=print) -> dict | None:
    """Write results.json from a run directory whose shards have all finished."""
    from fpdm_bench.errors import DataError

    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.exists():
        raise DataError(cfg_path, "not a run directory (config.json missing)")
    cfg = RunConfig(**json.loads(cfg_path.read_text())["config"])
    dataset = _open(cfg)
    pairs = dataset.pairs[: cfg.limit] if cfg.limit else dataset.pairs
    return finalize(run_dir, cfg, dataset, pairs, log)
