"""The ``pidm`` model adapter: PIDM (Bhunia et al., CVPR 2023) behind fpdm-bench's ModelAdapter.

``--checkpoint`` is either the official ``last.pt`` (its ``ema`` weights, as the official inference
uses; the architecture is read from the weights; 256x256 canvas) or one of our folders
(``config.json`` + ``model.safetensors``, e.g. the shipped tiny PIDM, the default when no checkpoint
is given). Per batch:

1. The source is resized to the model's canvas with PIL bicubic on the 8-bit image (how the official
   data preparation resized the pictures; for the published model that squashes 256x176 people to
   256x256) and mapped to [-1, 1].
2. The target pose becomes the 20-channel PIDM pose tensor on the canvas (``pose.render_batch``).
3. Sampling: DDIM (published: 100 steps, guidance 2) or ancestral DDPM with the learned variance;
   the initial noise (and any per-step noise) of pair i comes from generators[i] only.
4. The output is clamped, truncated to 8 bits as the official scripts save it
   (``(x + 1) / 2 * 255`` -> ``astype(uint8)``, ``utils/gen.py``), and brought back to the batch's
   frame when the canvas differs, with the resize the checkpoint names: PIL bicubic for the official
   256x256 canvas (the squeeze undone the way it was made, and how the ``images`` adapter reads
   PIDM's released files; under the ``pidm`` protocol the frame is 256x256 and nothing is resized),
   antialiased torch bicubic for the tiny one (as for the tiny FPDM).

A folder trained over a warp prior (its config.json has ``prior``, ``fpdm_bench.modeling.warp_prior``)
generates the residual over the keypoint warp of the source: the warp (at the batch's size) joins the
pose channels at the canvas, and the output is the warp plus the upsampled residual, soft-thresholded
by ``--model-arg residual_threshold=`` (default: the checkpoint's), then truncated to 8 bits.
"""
from __future__ import annotations

from pathlib import Path

import torch

from fpdm_bench.io import checkpoint_sha256
from fpdm_bench.modeling.warp_prior import WarpPrior
from fpdm_bench.models.base import ModelAdapter
from fpdm_bench.models.random_init import random_info
from fpdm_bench.seeding import check_temperature, per_sample_randn
from fpdm_bench_baselines.pidm.diffusion import SAMPLERS, GaussianDiffusion, ancestral_sample, ddim_sample
from fpdm_bench_baselines.pidm.pose import render_batch

TINY_CHECKPOINT = Path(__file__).parent / "checkpoints" / "tiny"
#: the official sampler (utils/gen.py: DDIM, 100 steps, guidance 2); ddpm = the full ancestral loop
SAMPLING_DEFAULTS = {"scheduler": "ddim", "steps": 100, "guidance": 2.0, "temperature": 1.0}
OFFICIAL = {"canvas": [256, 256], "output_resize": "pil-bicubic"}
OUTPUT_RESIZES = {"pil-bicubic": ("pil", "bicubic", True), "bicubic": ("torch", "bicubic", True)}


class PIDMAdapter(ModelAdapter):
    """PIDM (official last.pt, or a folder such as the shipped tiny one)."""

    name = "pidm"
    colour = "#1f77b4"

    def __init__(self, model, checkpoint: str | Path | None, canvas, output_resize: str, device="cpu",
                 dtype=torch.float32, scheduler: str = "ddim", steps: int = 100, guidance: float = 2.0,
                 info: dict | None = None, init_seed: int | None = None, warp: WarpPrior = WarpPrior(),
                 temperature: float = 1.0):
        from fpdm_bench.errors import BenchError

        super().__init__(device=device, dtype=dtype if torch.device(device).type == "cuda" else torch.float32)
        if scheduler not in SAMPLERS:
            raise BenchError(f"pidm: unknown scheduler {scheduler!r} (expected one of {', '.join(SAMPLERS)})")
        if not 1 <= int(steps) <= 1000:
            raise BenchError(f"pidm: steps must be in 1..1000, got {steps}")
        self.temperature = check_temperature(temperature, "pidm")
        if output_resize not in OUTPUT_RESIZES:
            raise BenchError(f"pidm: unknown output_resize {output_resize!r} (expected one of {', '.join(OUTPUT_RESIZES)})")
        d = model.config.downsampling
        if canvas[0] % d or canvas[1] % d:
            raise BenchError(f"pidm: canvas {canvas} must be multiples of {d} for this architecture")
        self.model = model.for_inference(self.device, self.dtype)
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.init_seed = init_seed  # not None: a random-weight build (from_random)
        self.resolution = (int(canvas[0]), int(canvas[1]))
        self.output_resize = output_resize
        self.scheduler, self.steps, self.guidance = scheduler, int(steps), float(guidance)
        self.diffusion = GaussianDiffusion.pidm()
        self.warp = warp
        self._load_info = info or {}
        self._sha = None

    @classmethod
    def default_checkpoint(cls, dataset: str | None) -> Path:
        return TINY_CHECKPOINT

    @classmethod
    def from_pretrained(cls, path_or_config: str | Path | None = None, device: str = "cpu",
                        dtype: torch.dtype = torch.float32, scheduler: str | None = None, steps: int | None = None,
                        guidance: float | None = None, weights: str = "ema", canvas=None,
                        output_resize: str | None = None, num_heads: int | None = None,
                        residual_threshold: float | None = None, temperature: float | None = None) -> "PIDMAdapter":
        """path_or_config: an official last.pt or our folder (None = the shipped tiny PIDM). Sampling
        settings left None come from the folder's ``sampling`` (else the official ones). ``num_heads``:
        the attention heads of a last.pt whose pickled config does not say them (the weights cannot).
        ``residual_threshold``: a folder with a warp prior only (default: its own). ``temperature``: the
        scale of the initial noise (1 = the official; 0 with DDIM = one deterministic path)."""
        from fpdm_bench_baselines.pidm.checkpoint import load_any

        path = Path(path_or_config) if path_or_config else TINY_CHECKPOINT
        model, meta = load_any(path, weights=weights, num_heads=num_heads)
        saved = {**SAMPLING_DEFAULTS, **(meta.get("sampling") or {})}
        given = {"scheduler": scheduler, "steps": steps, "guidance": guidance, "temperature": temperature}
        chosen = {k: v if v is not None else saved[k] for k, v in given.items()}
        canvas = canvas or meta.get("canvas") or OFFICIAL["canvas"]
        output_resize = output_resize or meta.get("output_resize") or OFFICIAL["output_resize"]
        warp = WarpPrior.from_config(meta.get("prior"), f"{path}").at_threshold(residual_threshold, "pidm")
        return cls(model, path, canvas, output_resize, device=device, dtype=dtype, info=meta, warp=warp, **chosen)

    @classmethod
    def from_random(cls, device: str = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0,
                    scheduler: str | None = None, steps: int | None = None, guidance: float | None = None,
                    canvas=None, output_resize: str | None = None,
                    temperature: float | None = None) -> "PIDMAdapter":
        """The published DeepFashion PIDM (``PIDMConfig()``, 256x256 canvas, PIL bicubic back to the
        frame) with random weights, seeded, sampled as the official ``gen.py`` does (DDIM, 100 steps,
        guidance 2, temperature 1) unless told otherwise: ``--model-arg init=random``."""
        from fpdm_bench.models.random_init import seeded
        from fpdm_bench_baselines.pidm.network import PIDMConfig, PIDMUNet

        with seeded(seed):
            model = PIDMUNet(PIDMConfig())
        given = {"scheduler": scheduler, "steps": steps, "guidance": guidance, "temperature": temperature}
        chosen = {k: v if v is not None else SAMPLING_DEFAULTS[k] for k, v in given.items()}
        return cls(model, None, canvas or OFFICIAL["canvas"], output_resize or OFFICIAL["output_resize"],
                   device=device, dtype=dtype, info={"format": None}, init_seed=int(seed), **chosen)

    def nfe(self) -> int:
        """Network evaluations per image: one per sampler iteration, two with guidance (the null
        branch). The official DDIM grid has len(range(0, 1000, 1000 // steps)) iterations: 31 for 30."""
        return self.sampler_steps() * (1 if self.guidance == 1 else 2)

    @torch.no_grad()
    def generate(self, batch: dict, generators: list[torch.Generator]) -> torch.Tensor:
        from fpdm_bench.modeling.resize import resize

        source = batch["source"]
        frame = tuple(source.shape[-2:])
        canvas = self.resolution
        src = resize(source.float().cpu(), canvas, "pil", "bicubic") * 2 - 1
        pose = render_batch(batch["target_kp"], frame, canvas)
        prior = None
        if self.warp.enabled:
            prior = self.warp.images(source.float().cpu(), batch["source_kp"], batch["target_kp"])
            pose = self.warp.condition_input(pose, prior)
        src, pose = src.to(self.device, self.dtype), pose.to(self.device, self.dtype)
        noise = per_sample_randn((3, *canvas), generators, self.device, torch.float32) * self.temperature
        if self.scheduler == "ddim":
            x = ddim_sample(self.model, src, pose, noise, self.steps, self.guidance, self.diffusion)
        else:
            x = ancestral_sample(self.model, src, pose, noise, generators, self.steps, self.guidance, self.diffusion)
        if prior is not None:  # the residual over the warp, at the batch's size; then the same truncation
            return (self.warp.compose(prior, x.float().cpu()) * 255).floor() / 255
        img = ((x.float().clamp(-1, 1) + 1) / 2 * 255).floor() / 255  # the official uint8 truncation
        lib, filt, aa = OUTPUT_RESIZES[self.output_resize]
        return resize(img.cpu(), frame, lib, filt, aa).clamp(0, 1)

    def stages(self) -> dict:
        """Per-batch stages (``fpdm-bench profile``): the 20-channel pose drawing, the source encoder
        (twice: the source and the all-zero null source) and the denoising UNet (one call per
        sampler step, the conditional and null branches batched). Pixel space: no VAE."""
        import sys

        return {"pose_render": (sys.modules[__name__], "render_batch"), "source_encoder": self.model.encoder,
                "denoiser": self.model}

    def sampler_steps(self) -> int:
        from fpdm_bench_baselines.pidm.diffusion import ddim_timesteps, respaced_timesteps

        grid = ddim_timesteps if self.scheduler == "ddim" else respaced_timesteps
        return len(grid(self.steps, self.diffusion.num_timesteps))

    def _trained_on(self) -> str | None:
        """The dataset a folder checkpoint was trained on (its train_info.json), None if unknown."""
        import json

        if self.checkpoint is None:
            return None
        f = self.checkpoint / "train_info.json"
        try:
            return json.loads(f.read_text())["dataset"]["name"] if f.is_file() else None
        except (ValueError, KeyError, TypeError):
            return None

    def info(self) -> dict:
        if self._sha is None and self.checkpoint is not None:
            self._sha = checkpoint_sha256(self.checkpoint)
        encoder = sum(p.numel() for p in self.model.encoder.parameters())
        total = sum(p.numel() for p in self.model.parameters())
        return {"name": self.name, "parameters": total,
                "parameters_by_part": {"unet": total - encoder, "source_encoder": encoder},
                "nfe": self.nfe(), "steps": self.steps, "scheduler": self.scheduler, "guidance": self.guidance,
                "temperature": self.temperature, "resolution": list(self.resolution), "output_resize": self.output_resize,
                "dtype": str(self.dtype).replace("torch.", ""), "architecture": self.model.config.to_dict(),
                "checkpoint": str(self.checkpoint) if self.checkpoint is not None else None,
                "checkpoint_sha256": self._sha,
                "checkpoint_format": self._load_info.get("format", "pidm folder"), "trained_on": self._trained_on(),
                **({"prior": self.warp.to_config()} if self.warp.enabled else {}),
                **random_info(self.init_seed, SAMPLING_DEFAULTS["steps"])}
