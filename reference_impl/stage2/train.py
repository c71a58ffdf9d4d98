"""Train FPDM stage 2 (the conditioned latent diffusion model) on a PairDataset.

``train_stage2(config, dataset, stage1_dir, out_dir, seed, ...)`` is the whole procedure; the CLI
(``fpdm-bench train stage2``) is a thin wrapper (``train_stage2_command``).

What a step does (as the official ``denoising_learning``): encode the target image with the frozen
VAE (a posterior sample), noise it (with offset noise), predict v with the UNet given the source
tokens (frozen DINOv2), the fusion vector (frozen stage-1 model) and the target skeleton, and take
the MSE to the true velocity. Each condition is dropped independently with its own probability
(official: pose 0.2, source tokens 0.2, fusion 0.2) so the sampler can guide. The official code
draws one coin per batch with its batch of 1; here each sample gets its own coin.

Tiny configs start from a random VAE, so ``train.vae_steps`` first fits it as an autoencoder on the
training images (L1 + a small KL), then freezes it and measures the latent scale. With a
``stage2.prior`` (``reference_impl/stage2/prior.py``) the VAE encodes, and is fitted on, the
residuals of the training targets over their priors, and the pose embedding also sees the prior.

Outputs in out_dir: ``config.json`` + ``model.safetensors`` (Stage2Model.save_pretrained; EMA
weights when ``train.ema_decay`` is set), ``scheduler_config.json``, ``train_log.jsonl`` (one line
per step), ``train_info.json`` (config, seed, dataset with pairs_sha256, stage-1 checkpoint hash,
the command, versions, summary), and ``checkpoint/`` (model + EMA + optimizer state + step, written
every ``train.checkpoint_every`` steps; a rerun of the same command resumes from it).

Determinism: every random draw of step s (pair order, timesteps, noise, dropout coins, posterior
samples, module dropout) comes from generators seeded by (seed, s), so a resumed run repeats
exactly what an uninterrupted one would have done.
"""
from __future__ import annotations

import hashlib
import json
import math
import platform
import shutil
import sys
import time
from pathlib import Path

import click
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from fpdm_bench.commands.options import training_options
from fpdm_bench.errors import BenchError
from fpdm_bench.io import atomic_write_text, sha256_file
from fpdm_bench.modeling.patch_pca import PatchPCAAutoencoder
from fpdm_bench_reference.config import load_config, resolve_config
from fpdm_bench_reference.stage2.model import WEIGHTS_NAME, Stage2Model, build_model, build_scheduler

TRAIN_DEFAULTS = {"batch_size": 16, "max_steps": 1000, "lr": 1e-4, "weight_decay": 0.0, "warmup_steps": 0,
                  "ema_decay": None, "grad_clip": None, "checkpoint_every": 500, "log_every": 10, "cache": False,
                  "vae_steps": 0, "vae_batch_size": 16, "vae_lr": 1e-3, "vae_kl_weight": 1e-6,
                  "save_dtype": None, "keep_checkpoint": True, "pairs": "dataset"}
CHECKPOINT_DIR = "checkpoint"
_NOT_SHAPING = ("max_steps", "checkpoint_every", "log_every", "save_dtype", "keep_checkpoint", "cache")


def _seed_for(seed: int, *parts) -> int:
    digest = hashlib.sha256(":".join(str(p) for p in (seed, *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def _generator(seed: int, *parts) -> torch.Generator:
    return torch.Generator().manual_seed(_seed_for(seed, *parts))


class _Features:
    """Frozen-encoder inputs per image / pair: DINOv2 tokens of sources, VAE posterior moments of
    targets (per pair with a prior: of the residual), target skeletons and priors at the model size,
    and stage-1 fusion vectors.

    With ``cache`` each is computed once (the tiny configs: tens of MB; ~200 MB for tiny-phoenix's
    3072 pairs with their priors); otherwise per batch.
    """

    def __init__(self, model: Stage2Model, fusion_model, dataset, device, cache: bool):
        self.model, self.fusion_model, self.dataset, self.device, self.cache = model, fusion_model, dataset, device, cache
        self._store: dict[tuple, torch.Tensor] = {}
        self.frame = tuple(dataset.size)

    def _get(self, kind: str, keys: list, compute) -> torch.Tensor:
        """Stack cached values for keys, computing the missing ones in one batch with compute(missing)."""
        missing = [k for k in dict.fromkeys(keys) if (kind, k) not in self._store]
        fresh = {}
        if missing:
            with torch.no_grad():
                values = compute(missing)
            fresh = {k: v for k, v in zip(missing, values)}
            if self.cache:
                self._store.update({(kind, k): v.detach() for k, v in fresh.items()})
        return torch.stack([self._store[(kind, k)] if (kind, k) in self._store else fresh[k] for k in keys])

    def _images(self, names) -> torch.Tensor:
        return torch.stack([self.dataset.load_image(n) for n in names]).to(self.device)

    def tokens(self, names):
        if self.model.source_encoder_trainable:  # cache the encoder's input; the tokens change every step
            pixels = self._get("source_pixels", names, lambda ns: self.model.source_pixels(self._images(ns)))
            return self.model.encode_source_pixels(pixels).float()
        return self._get("tokens", names, lambda ns: self.model.encode_source(self._images(ns)).float())

    def _kps(self, names) -> torch.Tensor:
        return torch.stack([torch.from_numpy(self.dataset.keypoints(n)) for n in names])

    def priors(self, records):
        """Priors at the model size, not clamped (so that resize(target - prior) = resize(target) -
        this: the residual is a linear function of the two resized images)."""
        def compute(recs):
            prior = self.model.prior_images(self._images([r.source for r in recs]), self._kps([r.source for r in recs]),
                                            self._kps([r.target for r in recs]))
            return self.model.resize(prior, clamp=False).float()
        return self._get("prior", list(records), compute)

    def vae_inputs(self, records):
        """What the VAE encodes for these pairs (Stage2Model.vae_input), in [-1, 1] at the model size."""
        if not self.model.has_prior:
            return self.model.vae_input(self._images([r.target for r in records]))
        targets = self.model.resize(self._images([r.target for r in records]), clamp=False)
        return targets - self.priors(records).to(targets.device)

    def moments(self, records):
        """VAE posterior parameters [mean, logvar] (along channels) of the pairs' targets (by target
        image without a prior; by pair with one)."""
        def compute(keys):
            recs = keys if self.model.has_prior else [by_target[k] for k in keys]
            x = self.vae_inputs(recs).to(self.model.vae.dtype)
            return self.model.vae.encode(x).latent_dist.parameters.float()
        by_target = {r.target: r for r in records}
        return self._get("moments", list(records) if self.model.has_prior else [r.target for r in records], compute)

    def condition_images(self, records):
        """The pose embedding's inputs: target skeletons, and the (clamped, as at sampling) priors."""
        pose = self.poses([r.target for r in records])
        if not self.model.has_prior:
            return pose
        return self.model.condition_image(pose, self.priors(records).clamp(0, 1).to(pose.device))

    def poses(self, names):
        def compute(ns):
            return self.model.pose_image(self._kps(ns), self.frame).to(self.device)
        return self._get("pose", names, compute)

    def fusion(self, records):
        def compute(recs):
            src = self._images([r.source for r in recs])
            kps = self._kps([r.target for r in recs]).to(self.device)
            return self.model.fusion(self.fusion_model, src, kps, self.frame).float()
        return self._get("fusion", list(records), compute)

    def forget_latents(self):
        self._store = {k: v for k, v in self._store.items() if k[0] != "moments"}


def _versions() -> dict:
    import diffusers
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__, "diffusers": diffusers.__version__,
            "transformers": transformers.__version__}


# --- checkpoint (resume state) -------------------------------------------------------------------


def _save_checkpoint(out_dir: Path, model: Stage2Model, opt, sched, ema: dict | None, step: int, extra: dict) -> None:
    """Write checkpoint/ atomically: state.safetensors (model, EMA, optimizer tensors) + state.json."""
    final = out_dir / CHECKPOINT_DIR
    tmp = out_dir / f".{CHECKPOINT_DIR}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()
               if not (k.startswith("source_encoder.") and not model.saves_source_encoder())}
    if ema is not None:
        tensors.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in ema.items()})
    opt_state = opt.state_dict()
    scalars = {}
    for pid, st in opt_state["state"].items():
        for name, v in st.items():
            if torch.is_tensor(v):
                tensors[f"optim.{pid}.{name}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{name}"] = v
    save_file(tensors, str(tmp / "state.safetensors"))
    meta = {"step": step, "param_groups": opt_state["param_groups"], "optim_scalars": scalars,
            "lr_scheduler": sched.state_dict(), **extra}
    (tmp / "state.json").write_text(json.dumps(meta, indent=1, default=str))
    old = out_dir / f".{CHECKPOINT_DIR}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def _load_checkpoint(out_dir: Path, model: Stage2Model, opt, sched, ema: dict | None) -> dict:
    ck = out_dir / CHECKPOINT_DIR
    meta = json.loads((ck / "state.json").read_text())
    tensors = load_file(str(ck / "state.safetensors"))
    model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    missing, unexpected = model.load_state_dict(model_state, strict=False)
    missing = [k for k in missing if not k.startswith("source_encoder.")]
    if missing or unexpected:
        raise BenchError(f"{ck}: checkpoint does not match the model (missing {missing[:3]}, unexpected {unexpected[:3]})")
    if ema is not None:
        for k in ema:
            if f"ema.{k}" not in tensors:
                raise BenchError(f"{ck}: checkpoint has no EMA weights but train.ema_decay is set")
            ema[k].copy_(tensors[f"ema.{k}"])
    state = {}
    for key, v in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    for key, v in meta.get("optim_scalars", {}).items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    sched.load_state_dict(meta["lr_scheduler"])
    return meta


# --- VAE fit (tiny configs only) -----------------------------------------------------------------


PAIR_RULES = ("dataset", "all-within-group")


def training_pairs(pairs: list, rule: str) -> list:
    """The pairs stage 2 trains on (``train.pairs``).

    ``dataset``: the split's own pairs. ``all-within-group``: every ordered pair (a, b) of the images
    of each group, where a group is a source image and the targets the split pairs it with (on
    PHOENIX, one video: its first frame and every frame); 16 frames give 256 pairs instead of 16,
    every frame the source of 16. The groups are taken in the split's order; a pair the split has
    keeps its record, a new one gets the id ``<a>-><b>`` (image keys, unambiguous across videos).
    """
    from fpdm_bench.data.base import PairRecord

    if rule == "dataset":
        return list(pairs)
    if rule != "all-within-group":
        raise BenchError(f"stage2 train config: train.pairs must be one of {', '.join(PAIR_RULES)}, not {rule!r}")
    groups: dict[str, list[str]] = {}
    own = {(r.source, r.target): r for r in pairs}
    for r in pairs:
        groups.setdefault(r.source, [r.source])
        if r.target not in groups[r.source]:
            groups[r.source].append(r.target)
    return [own.get((a, b)) or PairRecord(f"{a}->{b}", a, b) for images in groups.values() for a in images for b in images]


def _fit_inputs(model: Stage2Model, pairs: list, dataset, feats: "_Features", device) -> torch.Tensor:
    """What the VAE is fitted on, in [-1, 1] at the model size: every training image once, or with a
    prior the residual of every training pair."""
    if model.has_prior:
        return torch.cat([feats.vae_inputs(pairs[i:i + 64]) for i in range(0, len(pairs), 64)])
    names = sorted({n for r in pairs for n in (r.source, r.target)})
    return model.vae_input(torch.stack([dataset.load_image(n) for n in names])).to(device)


def _fit_vae(model: Stage2Model, inputs: torch.Tensor, cfg: dict, seed: int, progress: bool) -> dict:
    """Fit the random-init VAE on ``inputs`` ([N,3,h,w] in [-1, 1], ``_fit_inputs``), then freeze it
    and set the latent scale to 1 / std of the posterior samples (how SD's 0.18215 was chosen). A
    patch-PCA autoencoder is fitted in closed form instead. Reconstruction MAE is in [0, 1] pixel
    units (``_pixel_mae``)."""
    from tqdm.auto import tqdm

    vae = model.vae
    if isinstance(vae, PatchPCAAutoencoder):
        return _fit_patch_pca(model, inputs)
    n = len(inputs)
    vae.requires_grad_(True).train()
    opt = torch.optim.AdamW(vae.parameters(), lr=float(cfg["vae_lr"]), weight_decay=0.0)
    steps, bs = int(cfg["vae_steps"]), min(int(cfg["vae_batch_size"]), n)
    losses = []
    for step in tqdm(range(1, steps + 1), desc="stage2 vae", unit="step", disable=not progress):
        g = _generator(seed, "vae", step)
        x = inputs[torch.randperm(n, generator=g)[:bs]]
        dist = vae.encode(x).latent_dist
        recon = vae.decode(dist.sample(g)).sample
        loss = F.l1_loss(recon, x) + float(cfg["vae_kl_weight"]) * dist.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    vae.requires_grad_(False).eval()
    with torch.no_grad():
        g = _generator(seed, "vae-scale")
        zs = torch.cat([vae.encode(inputs[i:i + 64]).latent_dist.sample(g) for i in range(0, n, 64)])
        recon = torch.cat([vae.decode(vae.encode(inputs[i:i + 64]).latent_dist.mean).sample for i in range(0, n, 64)])
    scale = float(1.0 / zs.std())
    model.config.setdefault("vae", {})["scaling_factor"] = scale
    recon_mae = _pixel_mae(model, recon, inputs)
    return {"vae_steps": steps, "vae_first_loss": losses[0] if losses else None,
            "vae_final_loss": losses[-1] if losses else None, "vae_recon_mae": round(recon_mae, 5),
            "vae_scaling_factor": scale}


def _pixel_mae(model: Stage2Model, recon: torch.Tensor, inputs: torch.Tensor) -> float:
    """Reconstruction MAE in [0, 1] pixel units: images are encoded as 2x - 1, residuals as they are."""
    return float((recon.clamp(-1, 1) - inputs).abs().mean() / (1.0 if model.has_prior else 2.0))


def _fit_patch_pca(model: Stage2Model, inputs: torch.Tensor) -> dict:
    """Closed-form fit of the patch-PCA autoencoder; latent scale = 1 / std of the training latents."""
    info = model.vae.fit(inputs)
    with torch.no_grad():
        zs = torch.cat([model.vae.encode(inputs[i:i + 64]).latent_dist.mean for i in range(0, len(inputs), 64)])
        recon = torch.cat([model.vae.decode(zs[i:i + 64]).sample for i in range(0, len(inputs), 64)])
    scale = float(1.0 / zs.std())
    model.config.setdefault("vae", {})["scaling_factor"] = scale
    recon_mae = _pixel_mae(model, recon, inputs)
    return {"vae_steps": 0, "vae_kind": PatchPCAAutoencoder.kind, "vae_explained_variance": round(info["explained_variance"], 5),
            "vae_recon_mae": round(recon_mae, 5), "vae_scaling_factor": scale}


# --- main procedure ------------------------------------------------------------------------------


def train_stage2(config, dataset, stage1_dir: str | Path, out_dir: str | Path, seed: int = 0, device: str = "cpu",
                 max_steps: int | None = None, resume: bool = True, progress: bool = True,
                 command: str | None = None) -> dict:
    """Train stage 2 and save it to out_dir. Returns a summary dict (losses, steps, seconds, paths).

    config: preset name ('tiny', 'paper'), YAML path, or a dict with 'stage2' and 'train' sections.
    dataset: a PairDataset (training split). stage1_dir: a stage-1 checkpoint folder (frozen here).
    max_steps overrides train.max_steps. resume: continue from out_dir/checkpoint if present (the
    config, seed and dataset must be the ones it was written with).
    """
    from tqdm.auto import tqdm

    from fpdm_bench_reference.stage1.model import FusionModel

    config = resolve_config(config, "stage2")
    train_cfg = {**TRAIN_DEFAULTS, **(config.get("train") or {})}
    if max_steps is not None:
        train_cfg["max_steps"] = int(max_steps)
    total = int(train_cfg["max_steps"] or 0)
    if total <= 0:
        raise BenchError("stage2 train config: set train.max_steps to a positive number")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs = training_pairs(dataset.pairs, str(train_cfg["pairs"]))
    n_pairs = len(pairs)
    if n_pairs < 1:
        raise BenchError(f"dataset {getattr(dataset, 'name', '?')}: no pairs to train on")
    device = torch.device(device)

    stage1_dir = Path(stage1_dir)
    fusion_model = FusionModel.from_pretrained(stage1_dir, device=device).eval().requires_grad_(False)
    torch.manual_seed(_seed_for(seed, "init"))
    model = build_model(config, fusion_model.embed_dim).to(device)
    scheduler = build_scheduler(model.config)
    describe = dataset.describe() if hasattr(dataset, "describe") else {"n_pairs": n_pairs}
    # What a checkpoint must match to be resumed: everything that shapes the trajectory (not the
    # step count, logging or how the result is stored).
    shaping = {"stage2": {k: v for k, v in (config.get("stage2") or {}).items() if k != "sampling"},  # inference only
               "train": {k: v for k, v in train_cfg.items() if k not in _NOT_SHAPING}}
    identity = {"seed": seed, "pairs_sha256": describe.get("pairs_sha256"),
                "config_sha256": hashlib.sha256(json.dumps(shaping, sort_keys=True, default=str).encode()).hexdigest(),
                "stage1_sha256": sha256_file(stage1_dir / WEIGHTS_NAME)}

    params = list(model.trainable_parameters())
    opt = torch.optim.AdamW(params, lr=float(train_cfg["lr"]), weight_decay=float(train_cfg["weight_decay"]))
    warmup = int(train_cfg["warmup_steps"] or 0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0)
    ema_decay = train_cfg.get("ema_decay")
    ema = ({k: v.detach().clone().float() for k, v in model.trainable_state_dict().items()}
           if ema_decay else None)

    feats = _Features(model, fusion_model, dataset, device, cache=bool(train_cfg["cache"]))
    step, vae_info, t_prev = 0, {}, 0.0
    ck = out_dir / CHECKPOINT_DIR
    log_path = out_dir / "train_log.jsonl"
    if resume and (ck / "state.json").is_file():
        meta = _load_checkpoint(out_dir, model, opt, sched, ema)
        if meta.get("identity") != identity:
            diff = [k for k in identity if (meta.get("identity") or {}).get(k) != identity[k]]
            raise BenchError(f"{ck}: written by a different run ({', '.join(diff)} differ); use another --out "
                             "or delete the checkpoint folder to start over")
        step, vae_info, t_prev = int(meta["step"]), meta.get("vae") or {}, float(meta.get("seconds", 0.0))
        if vae_info.get("vae_scaling_factor") is not None:
            model.config.setdefault("vae", {})["scaling_factor"] = vae_info["vae_scaling_factor"]
        # keep the log lines up to the checkpoint (a killed run may have logged a few more)
        kept = [ln for ln in (log_path.read_text().splitlines() if log_path.exists() else [])
                if ln.strip() and json.loads(ln)["step"] <= step]
        atomic_write_text(log_path, "".join(ln + "\n" for ln in kept))
    else:
        log_path.write_text("")
        pca = isinstance(model.vae, PatchPCAAutoencoder)  # always fitted (closed form)
        if pca or int(train_cfg["vae_steps"] or 0) > 0:
            if not pca and model.config.get("vae", {}).get("kind", "tiny") != "tiny":
                raise BenchError("stage2 train config: train.vae_steps fits a random-init VAE; set it to 0 with a "
                                 "pretrained VAE")
            vae_info = _fit_vae(model, _fit_inputs(model, pairs, dataset, feats, device), train_cfg, seed, progress)
    bs = min(int(train_cfg["batch_size"]), n_pairs)
    steps_per_epoch = max(1, n_pairs // bs)
    drop_p = {k: float(v) for k, v in (model.config.get("condition_dropout") or {}).items()}
    offset = float(model.config.get("noise_offset") or 0.0)
    n_train_t = int(scheduler.config.num_train_timesteps)
    scale = model.scaling_factor
    posterior_mean = isinstance(model.vae, PatchPCAAutoencoder)  # a point posterior: no sampling

    def batch_for(s: int):
        epoch, idx = divmod(s - 1, steps_per_epoch)
        perm = torch.randperm(n_pairs, generator=_generator(seed, "epoch", epoch))
        return [pairs[i] for i in perm[idx * bs:(idx + 1) * bs].tolist()]

    losses: list[float] = []
    t0 = time.perf_counter()
    model.train()
    model.vae.eval()
    if not model.source_encoder_trainable:
        model.source_encoder.eval()
    every = int(train_cfg["checkpoint_every"] or 0)

    def checkpoint(s):
        _save_checkpoint(out_dir, model, opt, sched, ema, s,
                         {"identity": identity, "vae": vae_info, "seconds": t_prev + time.perf_counter() - t0})

    with open(log_path, "a") as log, tqdm(total=total, initial=step, desc="stage2", unit="step",
                                          disable=not progress) as bar:
        while step < total:
            s = step + 1
            records = batch_for(s)
            g = _generator(seed, "step", s)
            torch.manual_seed(_seed_for(seed, "dropout", s))  # nn.Dropout inside the projections
            tokens = feats.tokens([r.source for r in records])
            moments = feats.moments(records)
            pose = feats.condition_images(records)
            fusion = feats.fusion(records)
            mean, logvar = moments.chunk(2, dim=1)
            B = len(records)
            eps = torch.randn(mean.shape, generator=g).to(device)
            latents = (mean if posterior_mean else mean + torch.exp(0.5 * logvar.clamp(-30, 20)) * eps) * scale
            noise = torch.randn(latents.shape, generator=g).to(device)
            if offset:
                noise = noise + offset * torch.randn((B, latents.shape[1], 1, 1), generator=g).to(device)
            timesteps = torch.randint(0, n_train_t, (B,), generator=g).to(device)
            coins = torch.rand((3, B), generator=g).to(device)
            drops = {k: coins[i] < drop_p.get(k, 0.0) for i, k in enumerate(("source", "fusion", "pose"))}
            noisy = scheduler.add_noise(latents, noise, timesteps)
            target = scheduler.get_velocity(latents, noise, timesteps)
            pred = model(noisy, timesteps, tokens, fusion, pose, drop_source=drops["source"],
                         drop_fusion=drops["fusion"], drop_pose=drops["pose"])
            loss = F.mse_loss(pred.float(), target.float())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = None
            if train_cfg.get("grad_clip"):
                grad_norm = float(torch.nn.utils.clip_grad_norm_(params, float(train_cfg["grad_clip"])))
            opt.step()
            sched.step()
            if ema is not None:
                with torch.no_grad():
                    for k, v in model.trainable_state_dict().items():
                        ema[k].lerp_(v.float(), 1.0 - float(ema_decay))
            step = s
            value = loss.item()
            if not math.isfinite(value):
                raise BenchError(f"stage2 training diverged at step {step} (loss {value}); lower train.lr")
            losses.append(value)
            rec = {"step": step, "loss": round(value, 6), "lr": opt.param_groups[0]["lr"],
                   "time_s": round(t_prev + time.perf_counter() - t0, 3)}
            if grad_norm is not None:
                rec["grad_norm"] = round(grad_norm, 4)
            log.write(json.dumps(rec) + "\n")
            if step % int(train_cfg["log_every"]) == 0 or step == total:
                log.flush()
            if every and (step % every == 0 or step == total):
                log.flush()
                checkpoint(step)
            bar.set_postfix(loss=f"{value:.4f}")
            bar.update(1)
    seconds = t_prev + time.perf_counter() - t0
    if every == 0:
        checkpoint(step)

    # final weights: EMA if enabled
    if ema is not None:
        model.load_state_dict({**model.state_dict(), **ema})
    model.eval()
    save_dtype = {"float16": torch.float16, "fp16": torch.float16, "bfloat16": torch.bfloat16}.get(
        str(train_cfg.get("save_dtype")), None)
    model.save_pretrained(out_dir, dtype=save_dtype)
    scheduler.save_config(str(out_dir))
    if not train_cfg.get("keep_checkpoint", True):
        shutil.rmtree(ck, ignore_errors=True)

    if command is None:
        command = (f"fpdm_bench_reference.stage2.train.train_stage2(config={config.get('_source', '<dict>')!r}, "
                   f"dataset=<{describe.get('name')}:{describe.get('split')}>, stage1_dir={str(stage1_dir)!r}, "
                   f"out_dir={str(out_dir)!r}, seed={seed}, device={str(device)!r}, max_steps={max_steps})")
    all_losses = [json.loads(ln)["loss"] for ln in log_path.read_text().splitlines() if ln.strip()]
    tail = all_losses[-max(1, min(50, len(all_losses) // 5)):]
    head = all_losses[:max(1, min(50, len(all_losses) // 5))]
    summary = {"steps": step, "batch_size": bs, "training_pairs": n_pairs, "first_loss_mean": sum(head) / len(head),
               "final_loss_mean": sum(tail) / len(tail), "seconds": round(seconds, 1),
               "seconds_per_step": round(seconds / max(1, step), 3), "out_dir": str(out_dir),
               "checkpoint_sha256": sha256_file(out_dir / WEIGHTS_NAME),
               "parameters": model.count_parameters(), **vae_info}
    info = {"command": command, "seed": seed, "device": str(device), "config": config, "train": train_cfg,
            "dataset": describe, "stage1": {"path": str(stage1_dir), "sha256": identity["stage1_sha256"]},
            "versions": _versions(), "summary": summary}
    atomic_write_text(out_dir / "train_info.json", json.dumps(info, indent=2, default=str) + "\n")
    return {**summary, "losses": losses}


@click.command("stage2")
@training_options("preset (tiny, tiny-phoenix, paper) or YAML file")
@click.option("--stage1", "stage1_dir", required=True, type=click.Path(file_okay=False),
              help="stage-1 checkpoint folder (from `fpdm-bench train stage1`)")
@click.option("--no-resume", is_flag=True, help="start over even if OUT/checkpoint exists")
def train_stage2_command(config_name, dataset, data_root, split, stage1_dir, out_dir, seed, device, max_steps,
                         overrides, no_resume, quiet):
    """Train the FPDM stage-2 latent diffusion model (reference implementation)."""
    from fpdm_bench.data import open_dataset

    cfg = load_config("stage2", config_name, list(overrides))
    ds = open_dataset(dataset, root=data_root, split=split)
    command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
    summary = train_stage2(cfg, ds, stage1_dir, out_dir, seed=seed, device=device, max_steps=max_steps,
                           resume=not no_resume, progress=not quiet, command=command)
    click.echo(f"trained {summary['steps']} steps in {summary['seconds']} s; loss {summary['first_loss_mean']:.4f} -> "
               f"{summary['final_loss_mean']:.4f}; saved {out_dir}")
