"""The ``cfld`` model adapter: CFLD (Lu et al., CVPR 2024) behind fpdm-bench's ModelAdapter.

``--checkpoint DIR``: the released folder (``pytorch_model.bin`` + ``pytorch_model_1.bin``, optional
``config.json``) and ``--model-arg vae=DIR`` (SD 1.5's VAE, not in the release; or ``DIR/vae``).
Without ``--checkpoint``: the shipped tiny CFLD (``checkpoints/tiny``, made by
``make train-tiny-cfld``; the released layout with a patch-PCA ``vae/``).
Per batch, as the official test does (docs/models/cfld.md):

1. the source is stretched to the Swin input (256x256 published) with PIL bicubic (torchvision's
   ``Resize`` on a PIL image) and mapped to [-1, 1] (no ImageNet normalisation);
2. the target pose becomes the 21-channel map on its canvas (``pose.render_batch``);
3. DDPM, 50 steps, guidance ``uc + g_pose (down - uc) + g (full - down)`` with both 2 (``--steps``,
   ``--guidance`` = g, ``--model-arg pose_guidance=`` = g_pose; a folder's ``config.json`` may carry
   other ``sampling`` defaults); NFE = 3 x steps UNet evaluations + 1 pass of the condition network
   (Swin, decoder, both encoders); per-pair noise (the official code draws all noise from one
   global RNG, so its samples depend on the batch);
4. the 512x512 output (the tiny one's 64x64) is squeezed to the batch's frame with antialiased
   bicubic and truncated to 8 bits (what the official scores).

A folder trained over a warp prior (its config.json has ``prior``) generates the residual over the
keypoint warp of the source: the warp (at the batch's size) joins the pose map at its canvas, and the
output is the warp plus the upsampled residual (soft-thresholded by ``--model-arg
residual_threshold=``, default the checkpoint's), truncated to 8 bits.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from fpdm_bench.errors import BenchError, WeightsMissing
from fpdm_bench.models.base import ModelAdapter
from fpdm_bench.models.random_init import random_info
from fpdm_bench.seeding import check_temperature
from fpdm_bench_baselines.cfld.pose import render_batch

if TYPE_CHECKING:  # the pipeline (diffusers) is imported when a model is built, not to read the class's facts
    from fpdm_bench_baselines.cfld.pipeline import CFLDPipeline

TINY_CHECKPOINT = Path(__file__).parent / "checkpoints" / "tiny"
#: the official sampler (pose_transfer_test.py, defaults/deepfashion.py: DDPM 50 steps, both scales 2)
SAMPLING_DEFAULTS = {"steps": 50, "guidance": 2.0, "pose_guidance": 2.0, "scheduler": "ddpm", "temperature": 1.0}


def _scheduler(name: str) -> str:
    from fpdm_bench_baselines.cfld.sampler import SCHEDULERS

    if name not in SCHEDULERS:
        raise BenchError(f"cfld: unknown scheduler {name!r} (expected one of {', '.join(SCHEDULERS)}; ddpm is the official)")
    return name


class CFLDAdapter(ModelAdapter):
    """CFLD (the released checkpoint folder + SD 1.5's VAE)."""

    name = "cfld"
    colour = "#2ca02c"

    def __init__(self, pipeline: CFLDPipeline, checkpoint: str | Path | None, steps: int = 50, guidance: float = 2.0,
                 pose_guidance: float = 2.0, init_seed: int | None = None, residual_threshold: float | None = None,
                 scheduler: str = "ddpm", temperature: float = 1.0):
        super().__init__(device=pipeline.device, dtype=pipeline.dtype)
        if not 1 <= int(steps) <= 1000:
            raise BenchError(f"cfld: steps must be in 1..1000, got {steps}")
        self.scheduler, self.temperature = _scheduler(scheduler), check_temperature(temperature, "cfld")
        self.pipeline, self.checkpoint = pipeline, Path(checkpoint) if checkpoint is not None else None
        self.init_seed = init_seed  # not None: a random-weight build (from_random)
        self.steps, self.guidance, self.pose_guidance = int(steps), float(guidance), float(pose_guidance)
        self.resolution = pipeline.gen_size
        self.warp = pipeline.warp.at_threshold(residual_threshold, "cfld")
        self._sha = None

    @classmethod
    def from_pretrained(cls, path_or_config: str | Path | None = None, device: str = "cpu",
                        dtype: torch.dtype = torch.float32, steps: int | None = None, guidance: float | None = None,
                        scheduler: str | None = None, vae: str | None = None,
                        pose_guidance: float | None = None, residual_threshold: float | None = None,
                        temperature: float | None = None) -> "CFLDAdapter":
        """path_or_config: a released-layout folder (None = the shipped tiny CFLD). Sampling settings
        left None come from the folder's ``sampling`` (else the official ones). ``residual_threshold``:
        a folder with a warp prior only (default: its own). ``scheduler``: ddpm (official) or ddim;
        ``temperature``: the initial noise's scale (1 = the official)."""
        from fpdm_bench_baselines.cfld.pipeline import FILES, CFLDPipeline  # diffusers: imported when a model is built

        _scheduler(scheduler or "ddpm")  # before any file is read
        path = Path(path_or_config) if path_or_config else TINY_CHECKPOINT
        if path_or_config is None and not (path / FILES[0]).is_file():
            raise WeightsMissing("the shipped tiny CFLD", str(path / FILES[0]),
                                 f"{path} (make train-tiny-cfld CFLD_OUT={path.parent}), or pass --checkpoint DIR")
        pipe = CFLDPipeline.from_pretrained(path, vae, device=device, dtype=dtype)
        saved = {**SAMPLING_DEFAULTS, **(pipe.meta.get("sampling") or {})}
        given = {"steps": steps, "guidance": guidance, "pose_guidance": pose_guidance, "scheduler": scheduler,
                 "temperature": temperature}
        return cls(pipe, path, residual_threshold=residual_threshold,
                   **{k: v if v is not None else saved[k] for k, v in given.items()})

    @classmethod
    def from_random(cls, device: str = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0,
                    steps: int | None = None, guidance: float | None = None, scheduler: str | None = None,
                    pose_guidance: float | None = None, temperature: float | None = None) -> "CFLDAdapter":
        """The published CFLD (condition network, SD 1.5 UNet and VAE, 512x512) with random weights,
        seeded, sampled as the official test does (DDPM, 50 steps, both scales 2) unless told
        otherwise: ``--model-arg init=random``."""
        from fpdm_bench_baselines.cfld.pipeline import CFLDPipeline

        _scheduler(scheduler or "ddpm")
        pipe = CFLDPipeline.from_random(seed, device=device, dtype=dtype)
        given = {"steps": steps, "guidance": guidance, "pose_guidance": pose_guidance, "scheduler": scheduler,
                 "temperature": temperature}
        return cls(pipe, None, init_seed=int(seed),
                   **{k: v if v is not None else SAMPLING_DEFAULTS[k] for k, v in given.items()})

    @torch.no_grad()
    def generate(self, batch: dict, generators: list[torch.Generator]) -> torch.Tensor:
        from fpdm_bench.modeling.resize import resize

        source = batch["source"]
        frame = tuple(source.shape[-2:])
        cfg = self.pipeline.conditioner.config
        src = resize(source.float().cpu(), (cfg.cond_size, cfg.cond_size), "pil", "bicubic") * 2 - 1
        pose = render_batch(batch["target_kp"], frame, (cfg.pose_size, cfg.pose_size), cfg.pose_sigma)
        prior = None
        if self.warp.enabled:
            prior = self.warp.images(source.float().cpu(), batch["source_kp"], batch["target_kp"])
            pose = self.warp.condition_input(pose, prior)
        return self.pipeline(src, pose, generators, frame, self.steps, self.pose_guidance, self.guidance, prior=prior,
                             residual_threshold=self.warp.threshold, scheduler=self.scheduler,
                             temperature=self.temperature)

    def stages(self) -> dict:
        """Per-batch stages (``fpdm-bench profile``): the 21-channel pose drawing, the condition
        network's parts (Swin backbone on the source, appearance encoder, the decoder that makes the
        UNet's text tokens, pose encoder), the UNet (one call per step, three branches batched) and
        the VAE decoder."""
        import sys

        p, c = self.pipeline, self.pipeline.conditioner
        return {"pose_render": (sys.modules[__name__], "render_batch"), "source_encoder": c.backbone,
                "appearance_encoder": c.appearance_encoder, "appearance_decoder": c.decoder,
                "pose_encoder": c.pose_encoder, "denoiser": p.unet, "vae_decode": (p.vae, "decode")}

    def sampler_steps(self) -> int:
        from fpdm_bench_baselines.cfld.sampler import make_scheduler

        return len(make_scheduler(self.steps, self.scheduler).timesteps)

    def info(self) -> dict:
        from fpdm_bench.io import files_sha256
        from fpdm_bench_baselines.cfld.pipeline import FILES

        p, root = self.pipeline, self.checkpoint
        files = [root / f for f in FILES] if root is not None else []  # a random build has none
        own_vae = root / "vae" / "model.safetensors" if root is not None else None  # the tiny one's patch PCA
        if own_vae is not None and p.vae_dir == own_vae.parent and own_vae.is_file():
            files.append(own_vae)
        if self._sha is None and root is not None:
            self._sha = files_sha256(root, files)
        parts = {"condition_network": p.conditioner, "unet": p.unet, "vae": p.vae}
        by_part = {k: sum(x.numel() for x in m.parameters()) for k, m in parts.items()}
        return {"name": self.name, "parameters": sum(by_part.values()), "parameters_by_part": by_part,
                "nfe": 3 * self.steps + 1, "steps": self.steps, "scheduler": self.scheduler,
                "temperature": self.temperature,
                "guidance": self.guidance, "pose_guidance": self.pose_guidance, "resolution": list(self.resolution),
                "dtype": str(p.dtype).replace("torch.", ""), "checkpoint": str(root) if root is not None else None,
                "checkpoint_sha256": self._sha, "checkpoint_sha256_of": [f.relative_to(root).as_posix() for f in files],
                "vae": type(p.vae).__name__, "vae_dir": str(p.vae_dir) if p.vae_dir else None,
                "nfe_counts": "3 UNet calls per step + 1 condition-network pass",
                "noise": "per pair (not the official single global RNG)",
                **({"prior": self.warp.to_config()} if self.warp.enabled else {}),
                **random_info(self.init_seed, SAMPLING_DEFAULTS["steps"])}
