"""Train a PoCoLD (the tiny one on the embedded data, on part maps rendered from the keypoints).

The official recipe (github.com/BrandonHanx/PoCoLD at c5c7bb7, ``train.py:535-579,799-895``,
``src/transform.py``; read, never copied; docs/models/pocold.md) kept where it shapes the model:
loss = MSE of the predicted noise at uniform t on SD's scaled-linear schedule; one draw per batch
drops the pose (its one-hot times 0, so only the channel mapper's bias remains) with probability
0.15 or the source (no reference: every double attention skipped) with another 0.15, never both;
the target and its part map are flipped together with probability 0.5 (part ids are not swapped)
and the source independently; AdamW with weight decay 0.01; gradients clipped to norm 1 for the
UNet and channel mapper only. The tiny config differs in sizes, learning rate, an EMA of the
weights (what gets saved), the patch-PCA latent space and no constraint penalty (tiny.yaml).

Outputs in ``out_dir``: the official pipeline folder (``unet/``, ``rie/``, ``channel_mapper/``: each
``config.json`` + ``diffusion_pytorch_model.bin``; ``vae/`` = the fitted patch PCA; ``scheduler/``;
``model_index.json``) plus our ``fpdm_bench.json`` (generation size, sampling defaults),
``train_info.json`` and ``train_log.jsonl``; ``checkpoint.pt`` for resuming.

With a ``prior:`` section (``fpdm_bench.modeling.warp_prior``; ``configs/tiny-prior.yaml``) the UNet
diffuses the latent of the target's residual over the keypoint warp of the source, in a second
patch-PCA autoencoder fitted on those residuals (``residual_vae/``; the reference encoder keeps
reading the source through ``vae/``, fitted on images as without a prior), and the channel mapper sees
the warp, pixel-unshuffled to the latent grid, after the part one-hot (``channel_mapper.in_channels``
25 + 3 x 4 x 4 = 73); ``fpdm_bench.json`` records the prior, so the adapter adds the warp back.
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
from fpdm_bench.modeling.patch_pca import PatchPCAAutoencoder
from fpdm_bench.modeling.pretrained import save_state_bin
from fpdm_bench.modeling.warp_prior import TrainingPriors, WarpPrior
from fpdm_bench_baselines.pocold.network import (ChannelMapper, DoubleAttentionUNet, ReferenceEncoder,
                                                 ReferenceEncoderConfig, UNetConfig)
from fpdm_bench_baselines.pocold.parts import N_CLASSES, one_hot, render_parts
from fpdm_bench_baselines.training import make_train_command

CONFIGS = Path(__file__).parent / "configs"
CLASS_NAMES = {"unet": "UNet2DDoubleAttentionConditionModel", "rie": "MultiScaleReferenceImageEncoder",
               "channel_mapper": "ChannelMapper"}


def load_config(name_or_path: str, overrides: list[str] = ()) -> dict:
    return training.load_config(name_or_path, CONFIGS, "pocold", overrides)


def _tensors(dataset, names: list[str], gen: tuple[int, int], latent: tuple[int, int]):
    """Every training image resized to the generation size in [-1, 1] (PIL bilinear, as the official
    transform), and its part one-hot at the latent size (rendered from its keypoints)."""
    from fpdm_bench.modeling.resize import resize

    imgs, parts = [], []
    for n in names:
        img = dataset.load_image(n)[None]
        imgs.append(resize(img, gen, "pil", "bilinear")[0] * 2 - 1)
        parts.append(one_hot(render_parts(dataset.keypoints(n), tuple(img.shape[-2:]), gen), latent))
    return torch.stack(imgs), torch.stack(parts)


def check_channels(cfg: dict, warp: WarpPrior) -> None:
    """The channel mapper's input: the part one-hot and the prior's condition channels at the latent grid."""
    extra = warp.condition_channels(int(cfg["vae"]["patch"]))
    if int(cfg["channel_mapper"]["in_channels"]) != N_CLASSES + extra:
        raise BenchError(f"pocold config: channel_mapper.in_channels is {cfg['channel_mapper']['in_channels']}, but "
                         f"the {N_CLASSES}-class one-hot + the prior's {extra} make {N_CLASSES + extra}")


def save_pipeline(out_dir: Path, cfg: dict, modules: dict, vae: PatchPCAAutoencoder, dtype=None,
                  residual_vae: PatchPCAAutoencoder | None = None, warp: WarpPrior = WarpPrior()) -> None:
    """The official folder layout (what ``DiffusionPipeline.save_pretrained`` writes), our own code;
    with a prior also ``residual_vae/`` and the prior in ``fpdm_bench.json``."""
    from fpdm_bench.io import atomic_write_text

    configs = {"unet": cfg["unet"], "rie": {"down_block_types": ["DownBlock2D"] * len(cfg["rie"]["block_out_channels"]),
                                            **cfg["rie"]}, "channel_mapper": {**cfg["channel_mapper"], "concat": True}}
    for name, module in modules.items():
        d = out_dir / name
        d.mkdir(parents=True, exist_ok=True)
        save_state_bin(d / "diffusion_pytorch_model.bin", module.state_dict(), dtype)
        atomic_write_text(d / "config.json", json.dumps({"_class_name": CLASS_NAMES[name], **configs[name]}, indent=2))
    vae.save_pretrained(out_dir / "vae")
    if residual_vae is not None:
        residual_vae.save_pretrained(out_dir / "residual_vae")
    (out_dir / "scheduler").mkdir(exist_ok=True)
    atomic_write_text(out_dir / "scheduler" / "scheduler_config.json", json.dumps(cfg["scheduler"], indent=2))
    index = {"_class_name": "PoseTransferPipeline", **{n: [None, c] for n, c in CLASS_NAMES.items()},
             "vae": [None, "PatchPCAAutoencoder"], "scheduler": ["diffusers", "PNDMScheduler"]}
    atomic_write_text(out_dir / "model_index.json", json.dumps(index, indent=2))
    atomic_write_text(out_dir / "fpdm_bench.json", json.dumps({"gen_size": list(cfg["gen_size"]),
                                                              "sampling": cfg.get("sampling", {}),
                                                              "pose_input": "rendered part maps",
                                                              **({"prior": warp.to_config()} if warp.enabled else {})},
                                                             indent=2))


def train_pocold(cfg: dict, dataset, out_dir: str | Path, seed: int = 0, device: str = "cpu",
                 max_steps: int | None = None, progress: bool = True, command: str | None = None) -> dict:
    from diffusers import DDPMScheduler

    from fpdm_bench.io import files_sha256

    out_dir, tc, total, device, names, pairs, data_sha = training.open_run(cfg, dataset, out_dir, max_steps, device)
    identity = {k: cfg[k] for k in ("unet", "rie", "channel_mapper", "gen_size", "vae", "scheduler")}
    identity.update(train=training.shaping(tc), seed=seed, data=data_sha)
    warp = WarpPrior.from_config(cfg.get("prior"), "pocold config")
    check_channels(cfg, warp)
    if warp.enabled:
        identity["prior"] = warp.to_config()

    t0 = time.perf_counter()
    gen_size, patch = tuple(cfg["gen_size"]), int(cfg["vae"]["patch"])
    images, parts = _tensors(dataset, names, gen_size, (gen_size[0] // patch, gen_size[1] // patch))
    vae, latents, vae_summary = training.fit_latent_space(cfg["vae"], images)
    priors = residual_vae = None
    if warp.enabled:  # what is diffused: the targets' residuals, in their own latent space
        priors = TrainingPriors(warp, dataset, names, pairs, gen_size)
        residual_vae, residual_latents, fit = training.fit_latent_space(cfg["vae"], priors.residuals,
                                                                        warp.residual_scale)
        vae_summary.update({f"residual_{k}": v for k, v in fit.items()})
    prep_seconds = time.perf_counter() - t0

    torch.manual_seed(seed)
    unet = DoubleAttentionUNet(UNetConfig.from_json(cfg["unet"]))
    rie = ReferenceEncoder(ReferenceEncoderConfig.from_json(cfg["rie"]))
    cm = ChannelMapper(**cfg["channel_mapper"])
    model = torch.nn.ModuleDict({"unet": unet, "rie": rie, "channel_mapper": cm}).to(device).train()
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=float(tc["lr"]), weight_decay=float(tc.get("weight_decay", 0.01)))
    sched = training.warmup_schedule(opt, tc)
    gen = torch.Generator().manual_seed(seed)
    noise_scheduler = DDPMScheduler.from_config({k: v for k, v in cfg["scheduler"].items() if not k.startswith("_")})
    bs, n_t = int(tc["batch_size"]), noise_scheduler.config.num_train_timesteps
    loop = training.Loop("pocold", out_dir, identity, tc, total, model, ema, opt, sched, gen,
                         clip_params=[*unet.parameters(), *cm.parameters()], progress=progress)
    with loop:
        while loop.running:
            pick = pairs[torch.randint(len(pairs), (bs,), generator=gen)]
            z0, pose, ref = latents[pick[:, 1]], parts[pick[:, 1]], latents[pick[:, 0]]
            flip_t = torch.rand(bs, generator=gen) < float(tc.get("hflip", 0.5))
            flip_s = torch.rand(bs, generator=gen) < float(tc.get("hflip", 0.5))
            if priors is None:
                z0, pose = (torch.where(flip_t[:, None, None, None], v.flip(-1), v) for v in (z0, pose))
            else:  # the residual's latent; the prior flips with the target (as an image), then joins the parts
                rows = priors.rows(pick[:, 0], pick[:, 1])
                z0, pose, prior = (torch.where(flip_t[:, None, None, None], v.flip(-1), v)
                                   for v in (residual_latents[rows], pose, priors.priors[rows]))
                pose = warp.condition_input(pose, prior, patch)
            ref = torch.where(flip_s[:, None, None, None], ref.flip(-1), ref)
            draw = float(torch.rand(1, generator=gen))
            p_pose, p_src = float(tc.get("drop_pose", 0.15)), float(tc.get("drop_source", 0.15))
            drop_pose, drop_source = draw < p_pose, p_pose <= draw < p_pose + p_src
            t = torch.randint(n_t, (bs,), generator=gen)
            noise = torch.randn(z0.shape, generator=gen)
            z0, pose, ref, t, noise = (v.to(device) for v in (z0, pose, ref, t, noise))
            x = cm(noise_scheduler.add_noise(z0, noise, t), pose * 0.0 if drop_pose else pose)
            eps = unet(x, t, None if drop_source else rie(ref))
            loop.update(F.mse_loss(eps.float(), noise.float()))
    save_pipeline(out_dir, cfg, {k: ema[k].cpu() for k in CLASS_NAMES}, vae, training.save_dtype(tc),
                  residual_vae, warp)
    weights = sorted(out_dir.glob("*/diffusion_pytorch_model.bin"))
    summary = {**loop.finish(), "prepare_seconds": round(prep_seconds, 1), **vae_summary,
               "checkpoint_sha256": files_sha256(out_dir, weights)}
    training.write_info(out_dir, command=command, seed=seed, device=device, cfg=cfg, dataset=dataset,
                        data_sha=data_sha, n_pairs=len(pairs), n_images=len(names), summary=summary)
    return summary


train_command = make_train_command("PoCoLD", "baselines/pocold/configs", load_config, train_pocold)
