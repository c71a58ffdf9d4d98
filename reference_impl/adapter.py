"""The ``fpdm`` model adapter: the reference FPDM pipeline behind fpdm-bench's ModelAdapter.

``FPDMAdapter.from_pretrained(None)`` loads the shipped tiny checkpoint for the dataset
(``default_checkpoint``: ``reference_impl/checkpoints/tiny/`` trained on the synthetic DeepFashion
set, ``tiny-phoenix/`` on the synthetic PHOENIX set; each folder's ``stage2/train_info.json`` says
how); pass a folder with ``stage1/`` and ``stage2/`` for another one. Sampling settings not given
(steps, guidance, scheduler, source_strength, temperature, residual_threshold) come from the checkpoint's
``stage2.sampling``; ``guidance`` turns the three guidance branches on for values above 1 only, as the
official pipeline does (1 or below: the fully conditioned prediction alone). Inputs are used at the batch's size (each encoder resizes them itself); the
output is generated at the model's resolution and resized (antialiased bicubic) to the batch's size,
or, for a checkpoint with a prior (``reference_impl/stage2/prior.py``), is the prior at the batch's
size plus the upsampled residual.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from fpdm_bench.io import checkpoint_sha256
from fpdm_bench.models.base import ModelAdapter
from fpdm_bench.models.random_init import random_info
from fpdm_bench_reference.pipeline import SCHEDULERS, FPDMPipeline, check_sampling, steps_run

TINY_CHECKPOINT = Path(__file__).parent / "checkpoints" / "tiny"
TINY_PHOENIX_CHECKPOINT = Path(__file__).parent / "checkpoints" / "tiny-phoenix"
#: datasets whose default is not TINY_CHECKPOINT
DEFAULT_CHECKPOINTS = {"synthetic-phoenix": TINY_PHOENIX_CHECKPOINT, "phoenix": TINY_PHOENIX_CHECKPOINT}
SAMPLING_DEFAULTS = {"steps": 20, "guidance": 2.0, "scheduler": "ddpm", "source_strength": 1.0, "temperature": 1.0,
                     "residual_threshold": 0.0}


class FPDMAdapter(ModelAdapter):
    """FPDM reference implementation (shipped tiny checkpoint unless --checkpoint; guidance for --guidance > 1 only).

    ``guidance``: the official pipeline runs its three branches (unconditioned, source + pose, all
    conditions; ``u + g(src - u) + g(full - src)``) only for g > 1 and samples the fully conditioned
    prediction alone otherwise (``fpdm_bench_reference.pipeline.guidance_on``); so does this one.
    """

    name = "fpdm"
    colour = "#d62728"

    def __init__(self, pipeline: FPDMPipeline, checkpoint: str | Path | None, steps: int = SAMPLING_DEFAULTS["steps"],
                 guidance: float = SAMPLING_DEFAULTS["guidance"], scheduler: str = SAMPLING_DEFAULTS["scheduler"],
                 source_strength: float = SAMPLING_DEFAULTS["source_strength"],
                 temperature: float = SAMPLING_DEFAULTS["temperature"],
                 residual_threshold: float = SAMPLING_DEFAULTS["residual_threshold"], init_seed: int | None = None):
        super().__init__(device=pipeline.device, dtype=pipeline.dtype)
        from fpdm_bench.errors import BenchError

        if scheduler not in SCHEDULERS:
            raise BenchError(f"fpdm: unknown scheduler {scheduler!r} (expected one of {', '.join(SCHEDULERS)})")
        steps_run(steps, source_strength, who="fpdm")  # refuse a bad strength before the run writes anything
        check_sampling(temperature, residual_threshold, pipeline.stage2.has_prior, who="fpdm")
        self.pipeline = pipeline
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.init_seed = init_seed  # not None: a random-weight build (from_random)
        self.steps, self.guidance, self.scheduler = int(steps), float(guidance), scheduler
        self.source_strength = float(source_strength)
        self.temperature, self.residual_threshold = float(temperature), float(residual_threshold)
        self.resolution = pipeline.resolution  # instance value: depends on the checkpoint
        self._sha = None

    @classmethod
    def default_checkpoint(cls, dataset: str | None) -> Path:
        """The shipped tiny checkpoint trained on ``dataset``'s kind of data."""
        return DEFAULT_CHECKPOINTS.get(dataset or "", TINY_CHECKPOINT)

    @classmethod
    def from_pretrained(cls, path_or_config: str | Path | None = None, device: str = "cpu",
                        dtype: torch.dtype = torch.float32, steps: int | None = None, guidance: float | None = None,
                        scheduler: str | None = None, source_strength: float | None = None,
                        temperature: float | None = None, residual_threshold: float | None = None,
                        stage1_path: str | Path | None = None) -> "FPDMAdapter":
        """path_or_config: checkpoint folder (``stage1/`` + ``stage2/``); None = the shipped tiny one.
        Sampling settings left None come from the checkpoint (``stage2.sampling``), else SAMPLING_DEFAULTS."""
        path = Path(path_or_config) if path_or_config else TINY_CHECKPOINT
        pipe = FPDMPipeline.from_pretrained(path, device=device, dtype=dtype, stage1_path=stage1_path)
        given = {"steps": steps, "guidance": guidance, "scheduler": scheduler, "source_strength": source_strength,
                 "temperature": temperature, "residual_threshold": residual_threshold}
        saved = pipe.stage2.config.get("sampling") or {}
        chosen = {k: v if v is not None else saved.get(k, SAMPLING_DEFAULTS[k]) for k, v in given.items()}
        return cls(pipe, path, **chosen)

    @classmethod
    def from_random(cls, device: str = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0,
                    steps: int | None = None, guidance: float | None = None, scheduler: str | None = None,
                    source_strength: float | None = None, temperature: float | None = None) -> "FPDMAdapter":
        """The paper configuration (``reference_impl/configs/stage{1,2}/paper.yaml``: CLIP ViT-L/14,
        DINOv2-large, SD 2.1 at 512x352) with random weights, sampled as the official code does (DDPM,
        20 steps, guidance 2) unless told otherwise: ``--model-arg init=random``."""
        pipe = FPDMPipeline.from_random("paper", seed=seed, device=device, dtype=dtype)
        given = {"steps": steps, "guidance": guidance, "scheduler": scheduler, "source_strength": source_strength,
                 "temperature": temperature}
        chosen = {k: v if v is not None else SAMPLING_DEFAULTS[k] for k, v in given.items()}
        return cls(pipe, None, init_seed=int(seed), **chosen)

    def generate(self, batch: dict, generators: list[torch.Generator]) -> torch.Tensor:
        source = batch["source"]
        size = tuple(source.shape[-2:])
        out = self.pipeline(source, batch["target_kp"], generators, num_inference_steps=self.steps,
                            guidance_scale=self.guidance, scheduler=self.scheduler, frame=size,
                            source_strength=self.source_strength, source_kp=batch.get("source_kp"),
                            temperature=self.temperature, residual_threshold=self.residual_threshold)
        if tuple(out.shape[-2:]) != size:
            out = F.interpolate(out, size=size, mode="bicubic", antialias=True, align_corners=False)
        return out.clamp(0, 1)

    def stages(self) -> dict:
        """Per-batch stages (``fpdm-bench profile``): the DINOv2 source encoder, the stage-1 fusion
        (``fuse``: its CLIP tower on the source and the pose drawing, and the combiner), the target
        pose drawing at the model resolution, the ControlNet-style pose embedding, the UNet (one call
        per sampler step, the three guidance branches batched) and the VAE decoder only (the VAE also
        encodes when source_strength < 1); with a prior, ``prior`` (the keypoint warp, numpy on the
        CPU: on a GPU it also waits for the device)."""
        s2 = self.pipeline.stage2
        out = {"source_encoder": s2.source_encoder, "fusion": (self.pipeline.stage1, "fuse"),
               "pose_render": (s2, "pose_image"), "pose_encoder": s2.pose_embed, "denoiser": s2.unet,
               "vae_decode": (s2.vae, "decode")}
        if s2.has_prior:
            out["prior"] = (s2, "prior_images")
        if s2.pose_style(False).official:  # the fusion draws its pose with pose_image too: not a stage of its own
            del out["pose_render"]
        return out

    def sampler_steps(self) -> int:
        return steps_run(self.steps, self.source_strength)

    def info(self) -> dict:
        if self._sha is None and self.checkpoint is not None:
            self._sha = checkpoint_sha256(self.checkpoint)
        params = self.pipeline.parameters()
        return {"name": self.name, "parameters": params["total"], "parameters_by_part": params,
                "nfe": self.pipeline.nfe(self.steps, self.guidance, self.source_strength), "steps": self.steps,
                "scheduler": self.scheduler, "guidance": self.guidance, "source_strength": self.source_strength,
                "temperature": self.temperature, "prior": self.pipeline.stage2.prior,
                "residual_threshold": self.residual_threshold, "resolution": list(self.resolution),
                "dtype": str(self.pipeline.dtype).replace("torch.", ""),
                "checkpoint": str(self.checkpoint) if self.checkpoint is not None else None,
                "checkpoint_sha256": self._sha,
                **random_info(self.init_seed, SAMPLING_DEFAULTS["steps"], "paper")}
