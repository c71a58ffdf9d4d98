"""Train a CFLD (the tiny one on the embedded data; any size on a GPU).

The official recipe (github.com/YanzuoLu/CFLD at f2ea2a7, ``pose_transfer_train.py:95-122,266-300``,
``datasets/deepfashion.py:50-68,89-100``, ``defaults/deepfashion.py``; read, never copied) kept where
it shapes the model: every pair trains twice, as source -> source (with the source's pose) and
source -> target, from one pass of the condition network; the Swin's copy of the source is flipped
horizontally with probability 0.5 (the targets and poses are not); with probability
``u_cond_percent`` (0.2) the decoder's embedding is replaced by the learned null vector while both
residuals are kept; timesteps ``(1 - u^3) * 1000`` (cubic, favouring noisy steps); loss = MSE of the
predicted noise on SD's scaled-linear schedule. The tiny config trains every parameter from random
init (no SD 1.5 UNet, no ImageNet Swin offline), with the tiny FPDM's patch-PCA latent space, a
higher learning rate and an EMA of the weights, which is what gets saved.

Outputs in ``out_dir``: the released layout (``pytorch_model.bin`` = condition network,
``pytorch_model_1.bin`` = UNet under ``model.``, ``config.json``, ``vae/`` = the fitted patch-PCA
autoencoder), ``train_info.json`` and ``train_log.jsonl``; ``checkpoint.pt`` (tensors only) every
``checkpoint_every`` steps, from which a rerun of the same command resumes.

With a ``prior:`` section (``fpdm_bench.modeling.warp_prior``; ``configs/tiny-prior.yaml``) the UNet
diffuses the latent of each example's residual over the keypoint warp of its source (both the
source -> source and the source -> target example), with the patch-PCA autoencoder fitted on those
residuals as the tiny FPDM's is, and the pose encoder sees the warp as three more channels of the pose
map (``cfld.pose.pose_channels`` 24); config.json records the prior, so the adapter adds the warp back.
"""
from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from fpdm_bench.errors import BenchError
from fpdm_bench.modeling import training
from fpdm_bench.modeling.pretrained import save_state_bin
from fpdm_bench.modeling.warp_prior import TrainingPriors, WarpPrior
from fpdm_bench_baselines.cfld.model import CFLDConditioner, CFLDConfig
from fpdm_bench_baselines.cfld.pipeline import FILES
from fpdm_bench_baselines.cfld.pose import POSE_CHANNELS, render_pose
from fpdm_bench_baselines.cfld.sampler import SCHEDULER
from fpdm_bench_baselines.cfld.unet import CFLDUNet
from fpdm_bench_baselines.training import make_train_command

CONFIGS = Path(__file__).parent / "configs"


def load_config(name_or_path: str, overrides: list[str] = ()) -> dict:
    return training.load_config(name_or_path, CONFIGS, "cfld", overrides)


def _tensors(dataset, names: list[str], cfg: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every training image stretched to the generation size and to the Swin input size in [-1, 1]
    (PIL bicubic, as the official ``Resize`` on PIL images), and its 21-channel pose map."""
    from fpdm_bench.modeling.resize import resize

    c = CFLDConfig(**cfg["cfld"])
    gen, cond = tuple(cfg["gen_size"]), (c.cond_size, c.cond_size)
    imgs, conds, poses = [], [], []
    for n in names:
        img = dataset.load_image(n)[None]
        imgs.append(resize(img, gen, "pil", "bicubic")[0] * 2 - 1)
        conds.append(resize(img, cond, "pil", "bicubic")[0] * 2 - 1)
        poses.append(torch.from_numpy(render_pose(dataset.keypoints(n), tuple(img.shape[-2:]),
                                                  (c.pose_size, c.pose_size), c.pose_sigma)))
    return torch.stack(imgs), torch.stack(conds), torch.stack(poses)


def check_channels(config: CFLDConfig, warp: WarpPrior) -> None:
    """The pose encoder's input: the 21-channel pose map and the prior's condition channels."""
    need = POSE_CHANNELS + warp.condition_channels()
    if int(config.pose["pose_channels"]) != need:
        raise BenchError(f"cfld config: cfld.pose.pose_channels is {config.pose['pose_channels']}, but the "
                         f"{POSE_CHANNELS}-channel pose map + the prior's {warp.condition_channels()} make {need}")


def _save(out_dir: Path, cfg: dict, conditioner, unet, vae, dtype, warp: WarpPrior) -> None:
    save_state_bin(out_dir / FILES[0], conditioner.state_dict(), dtype)
    save_state_bin(out_dir / FILES[1], unet.state_dict(), dtype)
    vae.save_pretrained(out_dir / "vae")
    meta = {"cfld": CFLDConfig(**cfg["cfld"]).to_dict(), "unet": cfg["unet"], "gen_size": list(cfg["gen_size"]),
            "sampling": cfg.get("sampling", {}),
            "format": "CFLD released layout (pytorch_model.bin, pytorch_model_1.bin) + vae/ (patch-PCA)",
            **({"prior": warp.to_config()} if warp.enabled else {})}
    from fpdm_bench.io import atomic_write_text

    atomic_write_text(out_dir / "config.json", json.dumps(meta, indent=2) + "\n")


def train_cfld(cfg: dict, dataset, out_dir: str | Path, seed: int = 0, device: str = "cpu",
               max_steps: int | None = None, progress: bool = True, command: str | None = None) -> dict:
    from diffusers import DDPMScheduler

    from fpdm_bench.io import files_sha256

    out_dir, tc, total, device, names, pairs, data_sha = training.open_run(cfg, dataset, out_dir, max_steps, device)
    warp = WarpPrior.from_config(cfg.get("prior"), "cfld config")
    check_channels(CFLDConfig(**cfg["cfld"]), warp)
    identity = {"cfld": cfg["cfld"], "unet": cfg["unet"], "gen_size": cfg["gen_size"], "vae": cfg["vae"],
                "train": training.shaping(tc), "seed": seed, "data": data_sha}
    if warp.enabled:
        identity["prior"] = warp.to_config()

    t0 = time.perf_counter()
    images, conds, poses = _tensors(dataset, names, cfg)
    priors = None
    if warp.enabled:  # every example: source -> source and source -> target
        c = CFLDConfig(**cfg["cfld"])
        both = torch.cat([pairs[:, :1].repeat(1, 2), pairs])
        priors = TrainingPriors(warp, dataset, names, both, tuple(cfg["gen_size"]), (c.pose_size, c.pose_size))
        vae, latents, vae_summary = training.fit_latent_space(cfg["vae"], priors.residuals, warp.residual_scale)
    else:
        vae, latents, vae_summary = training.fit_latent_space(cfg["vae"], images)
    prep_seconds = time.perf_counter() - t0

    torch.manual_seed(seed)
    conditioner = CFLDConditioner(CFLDConfig(**cfg["cfld"])).to(device).train()
    unet = CFLDUNet(cfg["unet"]).to(device).train()
    model = torch.nn.ModuleDict({"conditioner": conditioner, "unet": unet})
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=float(tc["lr"]), weight_decay=0.0)
    sched = training.warmup_schedule(opt, tc)
    gen = torch.Generator().manual_seed(seed)
    noise_scheduler = DDPMScheduler(**SCHEDULER)
    loop = training.Loop("cfld", out_dir, identity, tc, total, model, ema, opt, sched, gen, progress=progress)
    bs = int(tc["batch_size"])
    if bs % 2:
        raise BenchError("cfld train.batch_size must be even (each pair trains as source->source and source->target)")
    n_t = noise_scheduler.config.num_train_timesteps
    with loop:
        while loop.running:
            pick = pairs[torch.randint(len(pairs), (bs // 2,), generator=gen)]
            src_i, tgt_i = pick[:, 0], pick[:, 1]
            cond = conds[src_i]
            flip = torch.rand(len(cond), generator=gen) < float(tc.get("cond_hflip", 0.5))
            cond = torch.where(flip[:, None, None, None], cond.flip(-1), cond)
            both = torch.cat([src_i, tgt_i])
            if priors is None:
                z0, pose = latents[both], poses[both]
            else:  # latents of the examples' residuals; the prior joins the pose map
                rows = priors.rows(torch.cat([src_i, src_i]), both)
                z0, pose = latents[rows], warp.condition_input(poses[both], priors.priors[rows])
            drop = (torch.rand(bs, generator=gen) < float(tc.get("u_cond_percent", 0.2)))[:, None, None]
            u = torch.rand(bs, generator=gen)
            t = ((1 - u ** 3) * n_t).long().clamp(0, n_t - 1) if tc.get("cubic_timesteps", True) else (u * n_t).long()
            noise = torch.randn(z0.shape, generator=gen)
            cond, z0, pose, drop, t, noise = (v.to(device) for v in (cond, z0, pose, drop, t, noise))
            _, features = conditioner.backbone(cond)
            appearance = {k: torch.cat([v, v]) for k, v in conditioner.appearance_encoder(features).items()}
            text = torch.cat([conditioner.decoder(features[-1])] * 2)
            text = torch.where(drop, conditioner.learnable_vector.expand(bs, -1, -1), text)
            eps = unet(noise_scheduler.add_noise(z0, noise, t), t, text, pose=conditioner.pose_encoder(pose),
                       appearance=appearance)
            loop.update(F.mse_loss(eps.float(), noise.float()))
    _save(out_dir, cfg, ema["conditioner"].cpu(), ema["unet"].cpu(), vae, training.save_dtype(tc), warp)
    summary = {**loop.finish(), "prepare_seconds": round(prep_seconds, 1), **vae_summary,
               "checkpoint_sha256": files_sha256(out_dir, [out_dir / f for f in FILES])}
    training.write_info(out_dir, command=command, seed=seed, device=device, cfg=cfg, dataset=dataset,
                        data_sha=data_sha, n_pairs=len(pairs), n_images=len(names), summary=summary)
    return summary


train_command = make_train_command("CFLD", "baselines/cfld/configs", load_config, train_cfld)
