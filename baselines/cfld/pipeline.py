"""CFLD end to end: conditions -> 50 DDPM steps with three-branch guidance -> VAE decode.

Facts (github.com/YanzuoLu/CFLD at f2ea2a7, ``pose_transfer_test.py:79-122,270-352``,
``models/vae.py:13-27``, read, never copied; docs/models/cfld.md): initial latents [B, 4, G/8, G/8]
for the generation size G (``INPUT.GT.IMG_SIZE``, 512x512 published: people stretched to a
square); decoded as ``vae.decode(latents / scaling_factor) * 0.5 + 0.5``, clamped to [0, 1]; then
resized to the evaluation size with antialiased bicubic ``F.interpolate`` and truncated to 8 bits
(``.to(torch.uint8)``), which is what the official scores (and a release would hold).

A checkpoint folder: the released ``pytorch_model.bin`` (condition network) and
``pytorch_model_1.bin`` (UNet, ``model.`` prefix), both plain state dicts read with
``weights_only=True``; optional ``config.json`` (``{"cfld": CFLDConfig, "unet": diffusers UNet
config, "gen_size": [H, W]}``; absent = the published model). The SD 1.5 VAE is not in the release:
pass its folder (diffusers ``AutoencoderKL`` layout), or keep it as ``vae/`` in the checkpoint
folder. The shipped tiny CFLD keeps a patch-PCA autoencoder there instead
(``fpdm_bench/modeling/patch_pca.py``: no pretrained VAE exists offline); the latent shape
follows the UNet's ``in_channels`` and the VAE's downsampling factor.

A folder trained over a warp prior (``config.json`` ``prior``, ``fpdm_bench.modeling.warp_prior``)
decodes a residual, not an image: the output is the prior (the keypoint warp at ``out_size``) plus the
upsampled residual, then the same 8-bit truncation.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F

from fpdm_bench.errors import BenchError, WeightsMissing
from fpdm_bench.modeling.patch_pca import latent_factor, load_autoencoder
from fpdm_bench.modeling.warp_prior import WarpPrior
from fpdm_bench.models.state import load_strict, read_state_dict
from fpdm_bench.seeding import per_sample_randn
from fpdm_bench_baselines.cfld.model import CFLDConditioner, CFLDConfig
from fpdm_bench_baselines.cfld.sampler import sample
from fpdm_bench_baselines.cfld.unet import SD15_UNET, CFLDUNet

FILES = ("pytorch_model.bin", "pytorch_model_1.bin")
PUBLISHED_GEN_SIZE = (512, 512)


class CFLDPipeline:
    def __init__(self, conditioner: CFLDConditioner, unet: CFLDUNet, vae, gen_size=PUBLISHED_GEN_SIZE,
                 device="cpu", dtype=torch.float32):
        self.device = torch.device(device)
        self.dtype = dtype if self.device.type == "cuda" else torch.float32
        self.conditioner = conditioner.to(self.device, self.dtype).eval()
        self.unet = unet.to(self.device, self.dtype).eval()
        self.vae = vae.to(self.device, self.dtype).eval()
        self.gen_size = tuple(int(v) for v in gen_size)
        self.meta, self.vae_dir = {}, None  # the folder's config.json and the VAE folder, when loaded from one
        self.warp = WarpPrior()  # the folder's prior (none: the model generates the image)

    @classmethod
    def from_pretrained(cls, folder: str | Path, vae: str | Path | None, device="cpu", dtype=torch.float32):
        folder = Path(folder)
        if not folder.is_dir():
            raise BenchError(f"{folder}: not a folder (a CFLD checkpoint is a folder with {' and '.join(FILES)})")
        for name in FILES:
            if not (folder / name).is_file():
                raise BenchError(f"{folder / name} missing: a CFLD checkpoint folder holds {' and '.join(FILES)}")
        meta = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
        cfg = CFLDConfig(**meta["cfld"]) if "cfld" in meta else CFLDConfig()
        conditioner = CFLDConditioner(cfg)
        load_strict(conditioner, read_state_dict(folder / FILES[0]), str(folder / FILES[0]), "CFLD")
        unet = CFLDUNet(meta.get("unet") or SD15_UNET)
        load_strict(unet, read_state_dict(folder / FILES[1]), str(folder / FILES[1]), "CFLD")
        vae_dir = Path(vae) if vae else (folder / "vae" if (folder / "vae").is_dir() else None)
        if vae_dir is None or not (vae_dir / "config.json").is_file():
            raise WeightsMissing("CFLD's VAE (Stable Diffusion 1.5's, not part of the release)",
                                 str(vae_dir / "config.json") if vae_dir else "vae/config.json",
                                 f"{folder / 'vae'} or a diffusers AutoencoderKL folder given as --model-arg vae=DIR")
        vae_model = load_autoencoder(vae_dir)
        pipe = cls(conditioner, unet, vae_model, meta.get("gen_size", PUBLISHED_GEN_SIZE), device, dtype)
        pipe.meta, pipe.vae_dir = meta, vae_dir
        pipe.warp = WarpPrior.from_config(meta.get("prior"), str(folder / "config.json"))
        return pipe

    @classmethod
    def from_random(cls, seed: int = 0, device="cpu", dtype=torch.float32) -> "CFLDPipeline":
        """The published CFLD (``CFLDConfig()``: Swin-B, appearance encoder, decoder, pose encoder; SD
        1.5's UNet as CFLD wraps it; SD 1.5's VAE from its shipped architecture config; 512x512) with
        random weights, seeded: for shapes, memory and time (``--model-arg init=random``), never for
        quality."""
        from diffusers import AutoencoderKL

        from fpdm_bench.models.random_init import architecture, seeded

        with seeded(seed):
            conditioner = CFLDConditioner(CFLDConfig())
            unet = CFLDUNet(SD15_UNET)
            vae = AutoencoderKL(**architecture("sd15-vae"))
        return cls(conditioner, unet, vae, PUBLISHED_GEN_SIZE, device, dtype)

    @torch.no_grad()
    def __call__(self, source: torch.Tensor, pose: torch.Tensor, generators, out_size, steps: int = 50,
                 pose_scale: float = 2.0, appearance_scale: float = 2.0, latents: torch.Tensor | None = None,
                 progress=None, prior: torch.Tensor | None = None,
                 residual_threshold: float | None = None, scheduler: str = "ddpm",
                 temperature: float = 1.0) -> torch.Tensor:
        """source [B,3,S,S] in [-1,1], pose [B,21,P,P] in [0,1] (with a prior: and its 3 channels) ->
        images [B,3,*out_size] in [0,1], 8-bit. ``prior``: the prior images at ``out_size`` (a folder
        with a prior only); ``residual_threshold``: None = the folder's; ``temperature``: the initial
        noise's scale; ``scheduler``: ddpm (the official) or ddim."""
        null, text, pose_res, app = self.conditioner(source.to(self.device, self.dtype), pose.to(self.device, self.dtype))
        if latents is None:
            f = latent_factor(self.vae)
            latents = per_sample_randn((self.unet.model.config.in_channels, self.gen_size[0] // f, self.gen_size[1] // f),
                                       generators, self.device, self.dtype) * float(temperature)
        latents = sample(self.unet, latents, null, text, pose_res, app, generators, steps, pose_scale,
                         appearance_scale, progress, scheduler)
        decoded = self.vae.decode(latents / self.vae.config.scaling_factor).sample
        if self.warp.enabled:
            if prior is None or tuple(prior.shape[-2:]) != tuple(out_size):
                raise BenchError(f"cfld: this checkpoint has the {self.warp.kind} prior: pass its images at {out_size}")
            img = self.warp.compose(prior.to(self.device), decoded, residual_threshold)
        else:
            img = (decoded * 0.5 + 0.5).clamp(0, 1)
            img = F.interpolate(img.float(), size=tuple(out_size), mode="bicubic", antialias=True, align_corners=False)
        return (img * 255.0).clamp(0, 255).to(torch.uint8).float() / 255.0
