"""Train the stage-1 fusion model on a PairDataset.

``train_stage1(config, dataset, out_dir, seed, ...)`` is the whole procedure; the CLI
(``fpdm-bench train stage1``) is a thin wrapper around it (``train_stage1_command`` below).

Outputs in out_dir: ``config.json`` + ``model.safetensors`` (FusionModel.save_pretrained),
``train_log.jsonl`` (one line per step), ``train_info.json`` (config, seed, dataset description with
pairs_sha256, the call that ran, package versions, checkpoint sha256, loss summary).

Deterministic given the seed on one machine: model init, pair order and dropout all come from
torch RNGs seeded here, and images are decoded without randomness.
"""
from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import click
import torch

from fpdm_bench.commands.options import training_options
from fpdm_bench.errors import BenchError
from fpdm_bench.io import atomic_write_text, sha256_file
from fpdm_bench_reference.config import load_config, resolve_config
from fpdm_bench_reference.stage1.loss import info_nce_loss
from fpdm_bench_reference.stage1.model import WEIGHTS_NAME, FusionModel, build_model

TRAIN_DEFAULTS = {"batch_size": 48, "epochs": 10, "max_steps": None, "lr": 1e-5, "weight_decay": 1e-4,
                  "warmup_steps": 0, "temperature": 0.07, "l1_weight": 1e-4, "source_enhanced": True,
                  "pairs_per_source": 0, "cache_images": False, "num_threads": None, "log_every": 10}


def epoch_order(pairs, generator: torch.Generator, pairs_per_source: int = 0) -> list[int]:
    """Pair indices for one epoch.

    0 = a plain shuffle (the official loader). k > 0 = shuffled runs of up to k pairs sharing a
    source image, so a batch holds several targets of the same person in different poses: those
    in-batch negatives can only be told apart by pose, which a from-scratch tower needs to learn
    the pose at all (the tiny config; the paper config starts from CLIP and shuffles).
    """
    n = len(pairs)
    perm = torch.randperm(n, generator=generator).tolist()
    if not pairs_per_source:
        return perm
    by_source: dict[str, list[int]] = {}
    for i in perm:  # shuffled order within each source
        by_source.setdefault(pairs[i].source, []).append(i)
    runs = [idx[j:j + pairs_per_source] for idx in by_source.values() for j in range(0, len(idx), pairs_per_source)]
    return [i for r in torch.randperm(len(runs), generator=generator).tolist() for i in runs[r]]


class _Inputs:
    """Tower-sized inputs per image name: person images (resized) and target skeletons (rendered).

    With ``cache`` every image is decoded and resized once (the tiny config on the embedded data);
    without it each batch loads from disk (the paper config on DeepFashion would not fit in memory).
    """

    def __init__(self, model: FusionModel, dataset, cache: bool):
        self.model, self.dataset, self.cache = model, dataset, cache
        self._img: dict[str, torch.Tensor] = {}
        self._pose: dict[str, torch.Tensor] = {}

    def _image(self, name: str) -> torch.Tensor:
        if name in self._img:
            return self._img[name]
        x = self.model.resize(self.dataset.load_image(name)[None])[0]
        if self.cache:
            self._img[name] = x
        return x

    def _skeleton(self, name: str) -> torch.Tensor:
        if name in self._pose:
            return self._pose[name]
        kp = torch.from_numpy(self.dataset.keypoints(name))[None]
        x = self.model.render_pose(kp, tuple(self.dataset.size))[0]
        if self.cache:
            self._pose[name] = x
        return x

    def batch(self, records) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        src = torch.stack([self._image(r.source) for r in records])
        tgt = torch.stack([self._image(r.target) for r in records])
        pose = torch.stack([self._skeleton(r.target) for r in records])
        return src, tgt, pose


def _versions() -> dict:
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__}


def train_stage1(config, dataset, out_dir: str | Path, seed: int = 0, device: str = "cpu",
                 max_steps: int | None = None, progress: bool = True, command: str | None = None) -> dict:
    """Train a FusionModel and save it to out_dir. Returns a summary dict (losses, steps, time, paths).

    config: preset name ('tiny', 'paper'), YAML path, or a dict with 'stage1' (model) and 'train'
    sections. dataset: a PairDataset (its training split). max_steps caps the number of optimiser
    steps (overrides train.max_steps). command: the invocation to record (default: this call).
    """
    config = resolve_config(config, "stage1")
    train_cfg = {**TRAIN_DEFAULTS, **(config.get("train") or {})}
    if max_steps is not None:
        train_cfg["max_steps"] = int(max_steps)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_pairs = len(dataset)
    if n_pairs < 2:
        raise BenchError(f"dataset {getattr(dataset, 'name', '?')}: stage-1 training needs at least 2 pairs, got {n_pairs}")

    threads_before = torch.get_num_threads()
    if train_cfg["num_threads"]:
        # on a small shared CPU one intra-op thread is often much faster than two (no spin-waiting);
        # results can differ in the last bits between thread counts, so it is part of the config
        torch.set_num_threads(int(train_cfg["num_threads"]))
    try:
        return _train(config, train_cfg, dataset, out_dir, seed, device, max_steps, progress, command)
    finally:
        torch.set_num_threads(threads_before)


def _train(config, train_cfg, dataset, out_dir, seed, device, max_steps, progress, command) -> dict:
    from tqdm.auto import tqdm

    n_pairs = len(dataset)
    torch.manual_seed(seed)
    model = build_model(config).to(device).train()
    inputs = _Inputs(model, dataset, cache=bool(train_cfg["cache_images"]))
    opt = torch.optim.AdamW(model.parameters(), lr=float(train_cfg["lr"]), weight_decay=float(train_cfg["weight_decay"]))
    warmup = int(train_cfg["warmup_steps"] or 0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0)

    # Like the official loader: shuffled, incomplete last batch dropped (the batch is the negatives).
    batch_size = min(int(train_cfg["batch_size"]), n_pairs)
    steps_per_epoch = n_pairs // batch_size
    total = steps_per_epoch * int(train_cfg["epochs"]) if train_cfg.get("epochs") else None
    if train_cfg["max_steps"] is not None:
        total = int(train_cfg["max_steps"]) if total is None else min(total, int(train_cfg["max_steps"]))
    if not total:
        raise BenchError("stage1 train config: set train.epochs or train.max_steps to a positive number")
    order_gen = torch.Generator().manual_seed(seed)

    log_path = out_dir / "train_log.jsonl"
    losses: list[float] = []
    t0 = time.perf_counter()
    step = 0
    with open(log_path, "w") as log, tqdm(total=total, desc="stage1", unit="step", disable=not progress) as bar:
        epoch = 0
        while step < total:
            perm = epoch_order(dataset.pairs, order_gen, int(train_cfg["pairs_per_source"] or 0))
            for b in range(steps_per_epoch):
                if step >= total:
                    break
                records = [dataset.pairs[i] for i in perm[b * batch_size:(b + 1) * batch_size]]
                src, tgt, pose = (x.to(device) for x in inputs.batch(records))
                # one tower pass for all three inputs: the tower has no batch statistics
                emb = model.embed_tower_inputs(torch.cat([src, tgt, pose]))
                src_e, tgt_e, pose_e = emb.split(len(records))
                fusion = model.fuse_embeddings(src_e, pose_e)
                loss, stats = info_nce_loss(tgt_e, fusion, src_e, temperature=float(train_cfg["temperature"]),
                                            l1_weight=float(train_cfg["l1_weight"]),
                                            source_enhanced=bool(train_cfg["source_enhanced"]))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                step += 1
                losses.append(stats["loss"])
                log.write(json.dumps({"step": step, "epoch": epoch, **{k: round(v, 6) for k, v in stats.items()},
                                      "lr": opt.param_groups[0]["lr"], "time_s": round(time.perf_counter() - t0, 3)}) + "\n")
                if step % int(train_cfg["log_every"]) == 0 or step == total:
                    log.flush()
                bar.set_postfix(loss=f"{stats['loss']:.3f}", acc=f"{stats['acc_top1']:.2f}")
                bar.update(1)
            epoch += 1
    seconds = time.perf_counter() - t0

    model.eval().save_pretrained(out_dir)
    describe = dataset.describe() if hasattr(dataset, "describe") else {"n_pairs": n_pairs}
    if command is None:
        command = (f"fpdm_bench_reference.stage1.train.train_stage1(config={config.get('_source', '<dict>')!r}, "
                   f"dataset=<{describe.get('name')}:{describe.get('split')}>, out_dir={str(out_dir)!r}, seed={seed}, "
                   f"device={device!r}, max_steps={max_steps})")
    tail = losses[-max(1, min(20, len(losses) // 5)):]
    summary = {
        "steps": step, "epochs_run": epoch, "batch_size": batch_size, "steps_per_epoch": steps_per_epoch,
        "first_loss": losses[0] if losses else None, "final_loss": losses[-1] if losses else None,
        "final_loss_mean_last": sum(tail) / len(tail) if tail else None,
        "seconds": round(seconds, 1), "out_dir": str(out_dir),
        "checkpoint_sha256": sha256_file(out_dir / WEIGHTS_NAME),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    info = {"command": command, "seed": seed, "device": str(device), "config": config, "train": train_cfg,
            "dataset": describe, "versions": _versions(), "summary": summary}
    atomic_write_text(out_dir / "train_info.json", json.dumps(info, indent=2, default=str) + "\n")
    return {**summary, "losses": losses}


@click.command("stage1")
@training_options("preset (tiny, paper) or YAML file")
def train_stage1_command(config_name, dataset, data_root, split, out_dir, seed, device, max_steps, overrides, quiet):
    """Train the FPDM stage-1 fusion embedding (reference implementation)."""
    from fpdm_bench.data import open_dataset

    cfg = load_config("stage1", config_name, list(overrides))
    ds = open_dataset(dataset, root=data_root, split=split)
    command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])  # the invocation as typed
    summary = train_stage1(cfg, ds, out_dir, seed=seed, device=device, max_steps=max_steps, progress=not quiet,
                           command=command)
    click.echo(f"trained {summary['steps']} steps in {summary['seconds']} s; loss {summary['first_loss']:.3f} -> "
               f"{summary['final_loss_mean_last']:.3f}; saved {out_dir}")
