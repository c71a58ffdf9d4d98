"""FPDM sampling: source image + target pose -> image, diffusers-style.

``FPDMPipeline.from_pretrained(dir)`` loads ``dir/stage1`` (the fusion model), ``dir/stage2`` (the
diffusion model and its ``scheduler_config.json``). Calling it runs, per batch:

1. conditions: DINOv2 tokens of the source, the stage-1 fusion vector of (source, target pose),
   the target skeleton at the model resolution;
2. three guidance branches in one UNet batch, as the official pipeline builds them:
   ``u`` (no source tokens, no fusion, no pose), ``src`` (source tokens + pose, no fusion) and
   ``full`` (all three); guided prediction ``u + g (src - u) + g (full - src)``, for a scale g > 1
   only (``guidance_on``); with g <= 1 only ``full`` runs, as officially;
3. the scheduler loop from per-sample initial latents, then the VAE decoder.

With a ``stage2.prior`` (the tiny recipe, ``reference_impl/stage2/prior.py``) the prior image is
drawn first (it needs the source keypoints), joins the skeleton as the pose embedding's input, and
the decoded residual is added to it: the output is then at the source's size.

Randomness comes only from the caller's generators, one per sample: initial latents and (DDPM) the
per-step noise are drawn sample by sample, so an image does not depend on what else is in the batch.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from fpdm_bench.errors import BenchError, WeightsMissing
from fpdm_bench.seeding import check_temperature, per_sample_randn

SCHEDULERS = ("ddpm", "ddim", "dpmpp")


def guidance_on(guidance_scale: float) -> bool:
    """Whether the three guidance branches run: for a scale above 1 only, as officially
    (``do_classifier_free_guidance = guidance_scale > 1.0`` in the official pipeline's ``__call__``).
    Any scale <= 1 samples the fully conditioned prediction alone (one UNet branch)."""
    return float(guidance_scale) > 1.0


def three_branch_guidance(uncond: torch.Tensor, source_only: torch.Tensor, full: torch.Tensor,
                          guidance_scale: float) -> torch.Tensor:
    """FPDM's guidance: u + g (src - u) + g (full - src).

    The first term steers towards the source appearance (tokens + pose), the second towards what
    the fusion embedding adds. With g = 1 it is just ``full``.
    """
    return uncond + guidance_scale * (source_only - uncond) + guidance_scale * (full - source_only)


def make_scheduler(name: str, config: dict):
    """A diffusers scheduler of kind ``name`` (ddpm | ddim | dpmpp) on the training noise schedule."""
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

    cfg = {k: v for k, v in config.items() if not k.startswith("_")}
    if name == "ddpm":
        return DDPMScheduler.from_config(cfg)
    if name == "ddim":
        return DDIMScheduler.from_config(cfg)
    if name == "dpmpp":
        return DPMSolverMultistepScheduler.from_config(cfg, algorithm_type="dpmsolver++", solver_order=2)
    raise BenchError(f"unknown scheduler {name!r} (expected one of {', '.join(SCHEDULERS)})")


def steps_run(num_inference_steps: int, source_strength: float, who: str = "FPDM pipeline") -> int:
    """How many of ``num_inference_steps`` a sampler starting at ``source_strength`` runs (at least 1);
    raises for a strength outside (0, 1]."""
    if not 0.0 < float(source_strength) <= 1.0:
        raise BenchError(f"{who}: source_strength must be in (0, 1], got {source_strength}")
    n = int(num_inference_steps)
    return max(1, min(n, round(n * float(source_strength))))


def check_sampling(temperature: float, residual_threshold: float, has_prior: bool, who: str = "FPDM pipeline") -> None:
    """Raise for a temperature outside [0, 1] or a residual threshold that is negative (or NaN) or
    given to a model without a prior."""
    check_temperature(temperature, who)
    if not float(residual_threshold) >= 0.0:
        raise BenchError(f"{who}: residual_threshold must be >= 0, got {residual_threshold}")
    if float(residual_threshold) > 0 and not has_prior:
        raise BenchError(f"{who}: residual_threshold={residual_threshold} needs a checkpoint with a prior "
                         f"(this one has stage2.prior 'none')")


class FPDMPipeline:
    """Stage-1 fusion model + stage-2 diffusion model + noise schedule."""

    def __init__(self, stage1, stage2, scheduler_config: dict, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32):
        self.device = torch.device(device)
        # half precision only where it is fast and supported: on CPU everything stays float32
        self.dtype = dtype if self.device.type == "cuda" else torch.float32
        self.stage1 = stage1.to(self.device, self.dtype).eval()
        self.stage2 = stage2.to(self.device, self.dtype).eval()
        self.scheduler_config = dict(scheduler_config)

    @property
    def resolution(self) -> tuple[int, int]:
        return self.stage2.resolution

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                        stage1_path: str | Path | None = None) -> "FPDMPipeline":
        """Load a checkpoint folder holding ``stage1/`` and ``stage2/`` (or pass stage1_path)."""
        from fpdm_bench_reference.stage1.model import FusionModel
        from fpdm_bench_reference.stage2.model import Stage2Model

        path = Path(path)
        if path.is_file():  # exists, so "missing" would mislead: a random file, an official .ckpt, ...
            raise BenchError(f"{path}: not a readable checkpoint: an FPDM checkpoint is a folder with stage1/ and "
                             f"stage2/ (an official .ckpt converts to one with `fpdm-bench fpdm convert`)")
        if not path.is_dir():
            raise WeightsMissing("FPDM checkpoint", path.name, str(path.parent))
        if (path / "results.json").is_file() or (path / "samples").is_dir():
            raise BenchError(f"{path}: is a run directory (results.json, samples/), not an FPDM checkpoint; pass the "
                             f"folder with stage1/ and stage2/ that the run used (its model.json names it)")
        if not (path / "stage2").is_dir() and not (path / "scheduler_config.json").is_file():
            raise BenchError(f"{path}: not an FPDM checkpoint folder (expected stage1/ and stage2/, as written by "
                             f"`fpdm-bench train stage1|stage2` or `fpdm-bench fpdm convert`)")
        s2 = path / "stage2" if (path / "stage2").is_dir() else path
        s1 = Path(stage1_path) if stage1_path else path / "stage1"
        sched_file = s2 / "scheduler_config.json"
        if not sched_file.is_file():
            raise WeightsMissing("FPDM stage-2 noise schedule", sched_file.name, str(s2))
        stage1 = FusionModel.from_pretrained(s1)
        stage2 = Stage2Model.from_pretrained(s2)
        return cls(stage1, stage2, json.loads(sched_file.read_text()), device=device, dtype=dtype)

    @classmethod
    def from_random(cls, config: str = "paper", seed: int = 0, device: str | torch.device = "cpu",
                    dtype: torch.dtype = torch.float32) -> "FPDMPipeline":
        """Both stages of a preset (``paper``: CLIP ViT-L/14, DINOv2-large, SD 2.1 VAE + UNet at 512x352)
        with random weights, every tower built from its shipped architecture config
        (``fpdm_bench/models/architectures``) instead of a folder of weights; seeded. For shapes,
        memory and time (``--model-arg init=random``), never for quality. The weights are drawn on
        ``device`` (the same seed gives other weights on a GPU than on the CPU)."""
        from fpdm_bench.models.random_init import architecture, seeded
        from fpdm_bench_reference.config import load_config
        from fpdm_bench_reference.stage1.model import FusionModel
        from fpdm_bench_reference.stage2.model import Stage2Model

        s1 = {**load_config("stage1", config)["stage1"], "tower": "tiny",
              "vision": architecture("clip-vit-large-patch14-vision")}
        s2 = load_config("stage2", config)["stage2"]
        s2 = {**s2, "vae": {**s2["vae"], "kind": "tiny", "config": architecture("sd21-vae")},
              "unet": {**s2["unet"], "kind": "tiny", "config": architecture("sd21-unet")},
              "source_encoder": {**s2["source_encoder"], "kind": "tiny", "config": architecture("dinov2-large")}}
        # built on the target device: initialising 1.6 B parameters there takes seconds on a GPU
        with seeded(seed), torch.device(device):
            stage1 = FusionModel(s1)
            stage2 = Stage2Model(s2, fusion_dim=stage1.embed_dim)
        return cls(stage1, stage2, architecture("sd21-scheduler"), device=device, dtype=dtype)

    @torch.no_grad()
    def conditions(self, source: torch.Tensor, target_kp: torch.Tensor, frame: tuple[int, int],
                   prior: torch.Tensor | None = None):
        """(source tokens, fusion vectors, pose embedding inputs) for a batch; see Stage2Model.project.
        prior: the prior images when the model has one (Stage2Model.condition_image)."""
        source = source.to(self.device, self.dtype)
        tokens = self.stage2.encode_source(source)
        fusion = self.stage2.fusion(self.stage1, source, target_kp.to(self.device), frame)
        pose = self.stage2.pose_image(target_kp, frame).to(self.device, self.dtype)
        return tokens, fusion, self.stage2.condition_image(pose, prior)

    @torch.no_grad()
    def __call__(self, source: torch.Tensor, target_kp: torch.Tensor, generators: list[torch.Generator],
                 num_inference_steps: int = 20, guidance_scale: float = 2.0, scheduler: str = "ddpm",
                 frame: tuple[int, int] | None = None, source_strength: float = 1.0,
                 source_kp: torch.Tensor | None = None, temperature: float = 1.0,
                 residual_threshold: float = 0.0) -> torch.Tensor:
        """Generate images [B,3,H,W] in [0,1] at the model resolution (with a prior: at the source's size).

        source: [B,3,h,w] in [0,1] (any size: each encoder resizes it); target_kp: [B,K,2] pixels of
        ``frame`` (default: the source's size), NaN = missing; generators: one per sample.
        source_strength: 1 = start from pure noise (the paper); s < 1 = start from the source's latent
        noised to the s-th fraction of the schedule and run only those steps (SDEdit / img2img) —
        for frames of one video, where most of the target is the source; with a prior the start is
        the prior itself (a zero residual).
        source_kp: [B,K,2] in ``frame``; needed (only) by a model with a prior.
        temperature: scales the initial latent noise. 1 = a sample of the model (the paper); 0 with a
        deterministic sampler (ddim, dpmpp) = one path from the zero latent, which approximates the
        model's conditional mean: what paired metrics (MAE, PSNR, SSIM) reward, at the cost of
        detail. ddpm still draws its per-step noise at full scale.
        residual_threshold: with a prior, the decoded residual is soft-thresholded by it
        (``fpdm_bench.modeling.warp_prior.soft_threshold``); 0 = not.
        """
        B = source.shape[0]
        if len(generators) != B:
            raise BenchError(f"FPDM pipeline: got {len(generators)} generators for a batch of {B}")
        if target_kp.shape[0] != B:
            raise BenchError(f"FPDM pipeline: {target_kp.shape[0]} target poses for {B} source images")
        check_sampling(temperature, residual_threshold, self.stage2.has_prior)
        frame = tuple(frame or source.shape[-2:])
        sched = make_scheduler(scheduler, self.scheduler_config)
        sched.set_timesteps(int(num_inference_steps), device=self.device)

        prior = None
        if self.stage2.has_prior:
            if source_kp is None:
                raise BenchError(f"FPDM pipeline: this checkpoint's prior ({self.stage2.prior}) needs source_kp")
            if tuple(source.shape[-2:]) != frame:
                raise BenchError(f"FPDM pipeline: the prior is drawn on the source, so frame {frame} must be its size "
                                 f"{tuple(source.shape[-2:])}")
            # kept in float32 (added to the output last): in bf16 it would move pixels by half a level
            prior = self.stage2.prior_images(source, source_kp, target_kp).to(self.device, torch.float32)
        tokens, fusion, pose = self.conditions(source, target_kp, frame, prior)
        guided = guidance_on(guidance_scale)
        if guided:
            # branch order as officially: uncond, source-only, full
            no, yes = torch.ones(B, dtype=torch.bool, device=self.device), torch.zeros(B, dtype=torch.bool, device=self.device)
            cond = self.stage2.project(tokens.repeat(3, 1, 1), fusion.repeat(3, 1), pose.repeat(3, 1, 1, 1),
                                       drop_source=torch.cat([no, yes, yes]), drop_fusion=torch.cat([no, no, yes]),
                                       drop_pose=torch.cat([no, yes, yes]))
        else:
            cond = self.stage2.project(tokens, fusion, pose)

        keep = steps_run(len(sched.timesteps), source_strength)
        latents = per_sample_randn(self.stage2.latent_shape, generators, self.device, torch.float32) * float(temperature)
        timesteps = sched.timesteps
        if source_strength < 1.0:
            timesteps = timesteps[len(timesteps) - keep:]
            # with a prior the start is the latent of a zero residual (the prior itself)
            start = self.stage2.encode_latents(prior if prior is not None else source, sample=False,
                                               prior=prior).float()
            latents = sched.add_noise(start, latents, timesteps[:1].repeat(B))
        else:
            latents = latents * sched.init_noise_sigma
        per_sample_step = scheduler == "ddpm"  # the only one here that draws noise while stepping
        for t in timesteps:
            x_in = sched.scale_model_input(torch.cat([latents] * 3) if guided else latents, t)
            out = self.stage2.denoise(x_in.to(self.dtype), t, cond).float()
            if guided:
                out = three_branch_guidance(*out.chunk(3), guidance_scale)
            if per_sample_step:
                latents = torch.cat([sched.step(out[i:i + 1], t, latents[i:i + 1], generator=g).prev_sample
                                     for i, g in enumerate(generators)])
            else:
                latents = sched.step(out, t, latents).prev_sample
        return self.stage2.decode_latents(latents.to(self.dtype), prior, float(residual_threshold)).float()

    def nfe(self, num_inference_steps: int, guidance_scale: float, source_strength: float = 1.0) -> int:
        """UNet evaluations per image: steps run x 3 branches (x 1 without guidance)."""
        return steps_run(num_inference_steps, source_strength) * (3 if guidance_on(guidance_scale) else 1)

    def parameters(self) -> dict:
        s2 = self.stage2.count_parameters()
        s1 = sum(p.numel() for p in self.stage1.parameters())
        return {"stage1": s1, **{f"stage2.{k}": v for k, v in s2.items() if k != "total"}, "total": s1 + s2["total"]}
