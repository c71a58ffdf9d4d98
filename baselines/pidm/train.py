"""Train a PIDM (the tiny one on the embedded data; any size on a GPU).

The official recipe (``train.py``, ``config/diffusion.conf``, ``data/fashion_data.py``) kept where it
shapes the model: each batch trains both directions of its pairs (source -> target and target ->
source, ``train.py:111-113``); horizontal flips of both images and both pose tensors with
probability 0.5 (``fashion_data.py:118-128``); t uniform; the source replaced by zeros with
probability ``cond_drop`` (0.1, ``train.py:307``); loss = eps MSE + the variance's VB term
(``diffusion.GaussianDiffusion.training_losses``); gradient clipping at 1; an EMA of the weights,
which is what gets saved. The tiny config only changes sizes, learning rate and EMA decay (from
scratch on 2 CPU cores: the recipe and budget of the tiny FPDM).

With a ``prior:`` section (``fpdm_bench.modeling.warp_prior``; ``configs/tiny-prior.yaml``) the UNet
diffuses, in pixel space, the residual of each direction's target over the keypoint warp of its
source (pixel units, times ``residual_scale``) instead of the target, and sees the warp as three more
channels after the 20 pose channels (``pidm.in_channels`` 26); config.json records the prior, so the
adapter adds the warp back.

Outputs in ``out_dir``: ``config.json`` + ``model.safetensors`` (the adapter's folder format, EMA
weights), ``train_info.json`` (recipe, data hash, versions, time) and ``train_log.jsonl``;
``checkpoint.pt`` (tensors only, read with ``weights_only=True``) every ``checkpoint_every`` steps and
at the end (unless ``keep_checkpoint: false``), from which a rerun of the same command resumes, or
continues to a larger ``--max-steps``.
"""
from __future__ import annotations

import copy
import time
from pathlib import Path

import torch

from fpdm_bench.errors import BenchError
from fpdm_bench.modeling import training
from fpdm_bench.modeling.warp_prior import TrainingPriors, WarpPrior
from fpdm_bench_baselines.pidm.checkpoint import save_pretrained
from fpdm_bench_baselines.pidm.diffusion import GaussianDiffusion
from fpdm_bench_baselines.pidm.network import PIDMConfig, PIDMUNet
from fpdm_bench_baselines.pidm.pose import POSE_CHANNELS, render_pose
from fpdm_bench_baselines.training import make_train_command

CONFIGS = Path(__file__).parent / "configs"


def load_config(name_or_path: str, overrides: list[str] = ()) -> dict:
    return training.load_config(name_or_path, CONFIGS, "pidm", overrides)


def _tensors(dataset, names: list[str], canvas) -> tuple[torch.Tensor, torch.Tensor]:
    """Every training image at the canvas in [-1, 1] (PIL bicubic, as the adapter resizes) and its
    20-channel pose, computed once."""
    from fpdm_bench.modeling.resize import resize

    imgs, poses = [], []
    for n in names:
        img = dataset.load_image(n)
        frame = tuple(img.shape[-2:])
        imgs.append(resize(img[None], canvas, "pil", "bicubic")[0] * 2 - 1)
        poses.append(torch.from_numpy(render_pose(dataset.keypoints(n), frame, canvas)))
    return torch.stack(imgs), torch.stack(poses)


def _identity(cfg: dict, seed: int, data_sha: str, warp: WarpPrior) -> dict:
    out = {"pidm": cfg["pidm"], "canvas": cfg["canvas"], "train": training.shaping(cfg["train"]), "seed": seed,
           "data": data_sha}
    return {**out, "prior": warp.to_config()} if warp.enabled else out


def check_channels(config: PIDMConfig, warp: WarpPrior) -> None:
    """The UNet input: noisy RGB, the 20 pose channels and the prior's condition channels."""
    need = 3 + POSE_CHANNELS + warp.condition_channels()
    if config.in_channels != need:
        raise BenchError(f"pidm config: pidm.in_channels is {config.in_channels}, but noisy RGB + {POSE_CHANNELS} pose "
                         f"channels + the prior's {warp.condition_channels()} make {need}")


def train_pidm(cfg: dict, dataset, out_dir: str | Path, seed: int = 0, device: str = "cpu",
               max_steps: int | None = None, progress: bool = True, command: str | None = None) -> dict:
    from fpdm_bench.io import sha256_file

    out_dir, tc, total, device, names, pairs, data_sha = training.open_run(cfg, dataset, out_dir, max_steps, device)
    canvas = tuple(int(v) for v in cfg["canvas"])
    warp = WarpPrior.from_config(cfg.get("prior"), "pidm config")
    check_channels(PIDMConfig(**cfg["pidm"]), warp)
    identity = _identity(cfg, seed, data_sha, warp)

    torch.manual_seed(seed)
    model = PIDMUNet(PIDMConfig(**cfg["pidm"])).to(device).train()
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=float(tc["lr"]))
    sched = training.warmup_schedule(opt, tc)
    gen = torch.Generator().manual_seed(seed)
    diffusion = GaussianDiffusion.pidm()
    loop = training.Loop("pidm", out_dir, identity, tc, total, model, ema, opt, sched, gen, progress=progress)

    t0 = time.perf_counter()
    images, poses = _tensors(dataset, names, canvas)
    priors = None
    if warp.enabled:  # both directions of every pair are drawn
        priors = TrainingPriors(warp, dataset, names, torch.cat([pairs, pairs.flip(1)]), canvas)
    prep_seconds = time.perf_counter() - t0
    bs = int(tc["batch_size"])
    if bs % 2:
        raise BenchError("pidm train.batch_size must be even (each pair is trained in both directions)")
    with loop:
        while loop.running:
            pick = pairs[torch.randint(len(pairs), (bs // 2,), generator=gen)]
            src_i = torch.cat([pick[:, 0], pick[:, 1]])
            tgt_i = torch.cat([pick[:, 1], pick[:, 0]])
            src, tgt, pose = images[src_i], images[tgt_i], poses[tgt_i].float() / 255
            if priors is not None:  # x0 is the residual; the prior joins the pose channels
                rows = priors.rows(src_i, tgt_i)
                tgt, pose = priors.residuals[rows], warp.condition_input(pose, priors.priors[rows])
            flip = torch.rand(bs, generator=gen) < float(tc.get("hflip", 0.5))
            src, tgt, pose = (torch.where(flip[:, None, None, None], v.flip(-1), v) for v in (src, tgt, pose))
            keep = (torch.rand(bs, generator=gen) >= float(tc.get("cond_drop", 0.1))).float()[:, None, None, None]
            t = torch.randint(diffusion.num_timesteps, (bs,), generator=gen)
            noise = torch.randn(tgt.shape, generator=gen)
            src, tgt, pose, t, noise = (v.to(device) for v in (src * keep, tgt, pose, t, noise))
            xt = diffusion.q_sample(tgt, t, noise)
            out = model(torch.cat([xt, pose], 1), t.float(), model.encode(src))
            loop.update(diffusion.training_losses(out, tgt, xt, t, noise)["loss"].mean())
    meta = {"canvas": list(canvas), "output_resize": cfg.get("output_resize", "bicubic"),
            "sampling": cfg.get("sampling", {}), "format": "pidm folder",
            **({"prior": warp.to_config()} if warp.enabled else {})}
    save_pretrained(ema.cpu(), out_dir, extra=meta, dtype=training.save_dtype(tc))
    summary = {**loop.finish(), "prepare_seconds": round(prep_seconds, 1),
               "checkpoint_sha256": sha256_file(out_dir / "model.safetensors")}
    training.write_info(out_dir, command=command, seed=seed, device=device, cfg=cfg, dataset=dataset,
                        data_sha=data_sha, n_pairs=len(pairs), n_images=len(names), summary=summary)
    return summary


train_command = make_train_command("PIDM", "baselines/pidm/configs", load_config, train_pidm)
