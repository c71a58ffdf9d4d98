"""PoCoLD end to end: a pipeline folder in the official layout -> PNDM, 50 steps, three branches with
the decaying guidance -> VAE decode.

Facts (github.com/BrandonHanx/PoCoLD at c5c7bb7, ``src/pipeline.py:204-470``, ``inference.py``,
``train.py:1001-1046``; read, never copied; docs/models/pocold.md):

- the folder is what the official training saves (``DiffusionPipeline.save_pretrained``):
  ``unet/``, ``rie/``, ``channel_mapper/`` (each ``config.json`` + ``diffusion_pytorch_model.bin``,
  a plain state dict), ``vae/`` (diffusers ``AutoencoderKL``, saved in fp16), ``scheduler/`` (SD
  1.5's ``PNDMScheduler`` config). Weights are read with ``weights_only=True`` (or safetensors when
  a folder has them) and loaded strictly;
- the source latent is ``vae.encode(src).latent_dist.sample() * scaling_factor`` (a posterior
  *sample*; the official one comes from the unseeded global RNG, here from the pair's generator);
  the reference encoder runs once;
- per step: ``null`` = UNet(pose zeroed, so only the ChannelMapper's bias, no reference), ``cat`` =
  UNet(pose, no reference), ``all`` = UNet(pose, reference); ``eps = null + w (all - cat) + w (cat -
  null)`` with ``w = max(scale * t / 1000, end)`` (decay on; published scale 5, end 3) or ``w =
  scale`` (decay off); PNDM with ``skip_prk_steps``: 50 steps are 51 evaluations (t = 961 twice),
  no noise after the initial latents, NFE 3 x 51;
- decode: ``vae.decode(latents / scaling_factor)``, /2 + 0.5, clamped, rounded to 8 bits (the saved
  PNG, ``numpy_to_pil``).

A folder trained over a warp prior (``fpdm_bench.json`` ``prior``, ``fpdm_bench.modeling.warp_prior``;
not PoCoLD's) also holds ``residual_vae/``: the latents are a residual's, decoded by it, and the output
is the prior (the keypoint warp at the batch's size) plus the upsampled residual, rounded to 8 bits.
The source is still encoded by ``vae/``.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from fpdm_bench.errors import BenchError, WeightsMissing
from fpdm_bench.modeling.warp_prior import WarpPrior
from fpdm_bench.models.state import load_strict, read_state_dict
from fpdm_bench.seeding import per_sample_randn
from fpdm_bench_baselines.pocold.network import (ChannelMapper, DoubleAttentionUNet, ReferenceEncoder,
                                                 ReferenceEncoderConfig, UNetConfig)

COMPONENTS = ("unet", "rie", "channel_mapper")
WEIGHT_NAMES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
PUBLISHED_GEN_SIZE = (512, 384)
PUBLISHED_SAMPLING = {"steps": 50, "guidance": 5.0, "end_guidance": 3.0, "decay": True}
#: the published pipeline's ``scheduler/scheduler_config.json``: SD 1.5's PNDM config (runwayml/stable-
#: diffusion-v1-5 scheduler/scheduler_config.json), for a random-weight build that has no folder
SD15_SCHEDULER = {"_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
                  "beta_start": 0.00085, "num_train_timesteps": 1000, "set_alpha_to_one": False,
                  "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None, "clip_sample": False}


def _read_config(folder: Path, name: str) -> dict:
    path = folder / name / "config.json"
    if not path.is_file():
        raise BenchError(f"{path} missing: a PoCoLD pipeline folder holds {', '.join(COMPONENTS)}, vae and scheduler "
                         "(as the official train.py saves it)")
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise BenchError(f"{path}: not valid JSON ({e})") from None


def _read_weights(folder: Path) -> dict:
    for name in WEIGHT_NAMES:
        path = folder / name
        if path.is_file():
            if path.suffix == ".safetensors":
                from fpdm_bench.modeling.pretrained import read_weights

                return read_weights(path, "PoCoLD component")
            return read_state_dict(path)
    raise BenchError(f"{folder}: no weights ({' or '.join(WEIGHT_NAMES)})")


def load_component(folder: Path, name: str) -> torch.nn.Module:
    cfg = _read_config(folder, name)
    try:
        if name == "unet":
            module = DoubleAttentionUNet(UNetConfig.from_json(cfg))
        elif name == "rie":
            module = ReferenceEncoder(ReferenceEncoderConfig.from_json(cfg))
        else:
            module = ChannelMapper(cfg.get("in_channels", 25), cfg.get("out_channels", 4), cfg.get("concat", True),
                                   cfg.get("bias", True))
    except (TypeError, ValueError) as e:
        raise BenchError(f"{folder / name / 'config.json'}: {e}") from None
    sd = _read_weights(folder / name)
    load_strict(module, {k: v.float() if v.is_floating_point() else v for k, v in sd.items()},
                str(folder / name), f"PoCoLD {name}")
    return module.eval()


def guidance_weight(t: int, scale: float, end: float, decay: bool) -> float:
    """``max(scale * t / 1000, end)`` with decay (the published setting), else ``scale``."""
    return max(scale * int(t) / 1000, end) if decay else scale


def guided_eps(unet, cm, latents, t, pose, references, w: float) -> torch.Tensor:
    """One step's three branches; ``null`` and ``cat`` (no reference) share one batched call."""
    x_cat = cm(latents, pose)
    x_null = cm(latents, pose * 0.0)
    null, cat = unet(torch.cat([x_null, x_cat]), t, None).chunk(2)
    full = unet(x_cat, t, references)
    return null + w * (full - cat) + w * (cat - null)


class PoCoLDPipeline:
    def __init__(self, unet, rie, channel_mapper, vae, scheduler_config: dict, gen_size=PUBLISHED_GEN_SIZE,
                 device="cpu", dtype=torch.float32):
        self.device = torch.device(device)
        self.dtype = dtype if self.device.type == "cuda" else torch.float32
        self.unet, self.rie, self.cm = (m.to(self.device, self.dtype).eval() for m in (unet, rie, channel_mapper))
        self.vae = vae.to(self.device, self.dtype).eval()
        self.scheduler_config = dict(scheduler_config)
        self.gen_size = tuple(int(v) for v in gen_size)
        self.meta: dict = {}
        self.warp, self.residual_vae = WarpPrior(), None  # a folder's prior and the autoencoder of its residuals

    @classmethod
    def from_pretrained(cls, folder: str | Path, device="cpu", dtype=torch.float32) -> "PoCoLDPipeline":
        from fpdm_bench.modeling.patch_pca import load_autoencoder

        folder = Path(folder)
        if not folder.is_dir():
            raise BenchError(f"{folder}: not a folder (a PoCoLD pipeline folder holds {', '.join(COMPONENTS)}, vae, "
                             "scheduler)")
        modules = {name: load_component(folder, name) for name in COMPONENTS}
        vae_dir = folder / "vae"
        if not (vae_dir / "config.json").is_file():
            raise WeightsMissing("PoCoLD's VAE (sd-vae-ft-mse, saved in the pipeline folder)", str(vae_dir / "config.json"),
                                 str(vae_dir))
        vae = load_autoencoder(vae_dir)
        sched = folder / "scheduler" / "scheduler_config.json"
        if not sched.is_file():
            raise BenchError(f"{sched} missing: the pipeline folder's scheduler (SD 1.5's PNDM config)")
        meta_path = folder / "fpdm_bench.json"  # ours, optional: generation size and sampling defaults
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        pipe = cls(modules["unet"], modules["rie"], modules["channel_mapper"], vae, json.loads(sched.read_text()),
                   meta.get("gen_size", PUBLISHED_GEN_SIZE), device, dtype)
        pipe.meta = meta
        pipe.warp = WarpPrior.from_config(meta.get("prior"), str(meta_path))
        if pipe.warp.enabled:
            if not (folder / "residual_vae" / "config.json").is_file():
                raise BenchError(f"{folder / 'residual_vae'} missing: a PoCoLD folder trained over a prior keeps the "
                                 "autoencoder of its residuals there")
            pipe.residual_vae = load_autoencoder(folder / "residual_vae").to(pipe.device, pipe.dtype).eval()
        return pipe

    @classmethod
    def from_random(cls, seed: int = 0, device="cpu", dtype=torch.float32) -> "PoCoLDPipeline":
        """The published PoCoLD (``UNetConfig()``, ``ReferenceEncoderConfig()``, the channel mapper, SD's
        VAE from its shipped architecture config, SD 1.5's PNDM, 512x384) with random weights, seeded:
        for shapes, memory and time (``--model-arg init=random``), never for quality."""
        from diffusers import AutoencoderKL

        from fpdm_bench.models.random_init import architecture, seeded

        with seeded(seed):
            unet, rie = DoubleAttentionUNet(UNetConfig()), ReferenceEncoder(ReferenceEncoderConfig())
            cm = ChannelMapper()
            vae = AutoencoderKL(**architecture("sd15-vae"))
        return cls(unet, rie, cm, vae, SD15_SCHEDULER, PUBLISHED_GEN_SIZE, device, dtype)

    def latent_factor(self) -> int:
        from fpdm_bench.modeling.patch_pca import latent_factor

        return latent_factor(self.vae)

    def make_scheduler(self, steps: int):
        from diffusers import PNDMScheduler

        cfg = {k: v for k, v in self.scheduler_config.items() if not k.startswith("_")}
        if self.scheduler_config.get("_class_name", "PNDMScheduler") != "PNDMScheduler":
            raise BenchError(f"pocold: the pipeline's scheduler is {self.scheduler_config['_class_name']}; the official "
                             "sampler is PNDMScheduler")
        scheduler = PNDMScheduler.from_config(cfg)
        scheduler.set_timesteps(int(steps))
        return scheduler

    @torch.no_grad()
    def encode_reference(self, source: torch.Tensor, generators) -> torch.Tensor:
        """source [B,3,H,W] in [-1,1] -> scaled posterior sample (the pair's own noise)."""
        dist = self.vae.encode(source.to(self.device, self.dtype)).latent_dist
        noise = per_sample_randn(tuple(dist.mean.shape[1:]), generators, self.device, self.dtype)
        return (dist.mean + dist.std * noise) * self.vae.config.scaling_factor

    @torch.no_grad()
    def __call__(self, source: torch.Tensor, pose: torch.Tensor, generators, steps: int = 50, guidance: float = 5.0,
                 end_guidance: float = 3.0, decay: bool = True, ref_latents: torch.Tensor | None = None,
                 latents: torch.Tensor | None = None, progress=None, prior: torch.Tensor | None = None,
                 residual_threshold: float | None = None, temperature: float = 1.0) -> torch.Tensor:
        """source [B,3,*gen_size] in [-1,1], pose one-hot [B,25,h,w] (with a prior: and its channels) ->
        images [B,3,*gen_size] in [0,1], 8-bit; with a prior at the size of ``prior`` (its images),
        soft-thresholded by ``residual_threshold`` (None = the folder's). ``temperature``: the initial
        noise's scale (PNDM is deterministic after it, so 0 = one path)."""
        if ref_latents is None:
            ref_latents = self.encode_reference(source, generators)
        references = self.rie(ref_latents.to(self.device, self.dtype))
        if latents is None:
            latents = per_sample_randn(tuple(ref_latents.shape[1:]), generators, self.device, self.dtype) * float(temperature)
        latents = latents.to(self.device, self.dtype)
        pose = pose.to(self.device, self.dtype)
        scheduler = self.make_scheduler(steps)
        for t in scheduler.timesteps:
            w = guidance_weight(t, guidance, end_guidance, decay)
            eps = guided_eps(self.unet, self.cm, latents, t, pose, references, w)
            latents = scheduler.step(eps, t, latents).prev_sample
            if progress:
                progress()
        if self.warp.enabled:
            if prior is None:
                raise BenchError(f"pocold: this checkpoint has the {self.warp.kind} prior: pass its images")
            residual = self.residual_vae.decode(latents / self.residual_vae.config.scaling_factor).sample
            img = self.warp.compose(prior.to(self.device), residual, residual_threshold)
        else:
            img = (self.vae.decode(latents / self.vae.config.scaling_factor).sample / 2 + 0.5).clamp(0, 1)
        return (img.float() * 255).round() / 255
