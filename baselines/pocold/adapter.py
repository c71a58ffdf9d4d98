"""The ``pocold`` model adapter: PoCoLD (Han et al., ICCV 2023) behind fpdm-bench's ModelAdapter.

``--checkpoint DIR``: a pipeline folder as the official ``train.py`` saves it (``unet/``, ``rie/``,
``channel_mapper/``, ``vae/``, ``scheduler/``; no weights were released). Without it: the shipped
tiny PoCoLD (``checkpoints/tiny``, made by ``make train-tiny-pocold``). Per batch, as the official
``inference.py`` does (docs/models/pocold.md):

1. the source is resized to the generation size (512x384 published; the tiny one's from its
   ``fpdm_bench.json``) with PIL bilinear and mapped to [-1, 1], encoded by the VAE (a posterior
   sample, from the pair's generator);
2. the target pose is the DensePose part index of the *target*, as a 25-class one-hot at 1/8 of the
   generation size (PIL nearest). Two sources: ``--model-arg densepose=DIR`` reads the real
   DensePose IUV PNGs (``DIR/<target stem>.png``, channel 2 = part index; every pair's file is checked
   before the run starts), otherwise the parts are rendered from the target keypoints
   (``parts.render_parts``: the documented deviation for keypoint-only data). ``model.json
   pose_input`` says which;
3. PNDM, 50 steps (51 evaluations), three branches with ``w = max(5 t / 1000, 3)`` (``--steps``,
   ``--guidance`` = the 5, ``--model-arg end_guidance=`` = the 3, ``--model-arg decay=false`` for a
   constant w); NFE = 3 x 51 UNet calls + 1 pass of the VAE encoder and reference encoder;
4. the 8-bit output is resized to the batch's frame with PIL bicubic (the official repository
   does not contain its resize from 512x384 to 256x176).

A folder trained over a warp prior (its ``fpdm_bench.json`` has ``prior``) generates the residual over
the keypoint warp of the source: the warp (at the batch's size), pixel-unshuffled to the latent grid,
joins the part one-hot, and the output is the warp plus the upsampled residual (soft-thresholded by
``--model-arg residual_threshold=``, default the checkpoint's) at the batch's size, rounded to 8 bits.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from fpdm_bench.errors import BenchError, DataError, WeightsMissing
from fpdm_bench.models.base import ModelAdapter
from fpdm_bench.models.random_init import random_info
from fpdm_bench.seeding import check_temperature
from fpdm_bench_baselines.pocold.parts import densepose_one_hot, one_hot, render_parts

if TYPE_CHECKING:  # the pipeline (diffusers) is imported when a model is built, not to read the class's facts
    from fpdm_bench_baselines.pocold.pipeline import PoCoLDPipeline

TINY_CHECKPOINT = Path(__file__).parent / "checkpoints" / "tiny"
# fpdm-bench's own sampling option, at the official behaviour (the published ones: pipeline.PUBLISHED_SAMPLING)
EXTRA_SAMPLING_DEFAULTS = {"temperature": 1.0}


def _flag(value) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("1", "true", "yes", "on"):
        return True
    if str(value).lower() in ("0", "false", "no", "off"):
        return False
    raise BenchError(f"pocold: decay must be true or false, got {value!r}")


class PoCoLDAdapter(ModelAdapter):
    """PoCoLD (a pipeline folder in the official layout)."""

    name = "pocold"
    colour = "#9467bd"

    def __init__(self, pipeline: PoCoLDPipeline, checkpoint: str | Path | None, steps: int, guidance: float,
                 end_guidance: float, decay: bool, densepose: str | Path | None = None,
                 init_seed: int | None = None, residual_threshold: float | None = None, temperature: float = 1.0):
        super().__init__(device=pipeline.device, dtype=pipeline.dtype)
        self.temperature = check_temperature(temperature, "pocold")
        if not 1 <= int(steps) <= 1000:
            raise BenchError(f"pocold: steps must be in 1..1000, got {steps}")
        self.pipeline, self.checkpoint = pipeline, Path(checkpoint) if checkpoint is not None else None
        self.init_seed = init_seed  # not None: a random-weight build (from_random)
        self.steps, self.guidance, self.end_guidance, self.decay = int(steps), float(guidance), float(end_guidance), decay
        self.densepose = Path(densepose) if densepose else None
        self.resolution = pipeline.gen_size
        self.warp = pipeline.warp.at_threshold(residual_threshold, "pocold")
        self._files: dict[str, Path] = {}
        self._sha = None

    @classmethod
    def from_pretrained(cls, path_or_config: str | Path | None = None, device: str = "cpu",
                        dtype: torch.dtype = torch.float32, steps: int | None = None, guidance: float | None = None,
                        scheduler: str | None = None, end_guidance: float | None = None, decay=None,
                        densepose: str | None = None, residual_threshold: float | None = None,
                        temperature: float | None = None) -> "PoCoLDAdapter":
        """path_or_config: a pipeline folder (None = the shipped tiny PoCoLD). Sampling settings left
        None come from the folder's ``fpdm_bench.json`` (else the official ones). ``residual_threshold``:
        a folder with a warp prior only (default: its own). ``temperature``: the initial noise's scale
        (1 = the official; PNDM is deterministic after it)."""
        from fpdm_bench_baselines.pocold.pipeline import PUBLISHED_SAMPLING, PoCoLDPipeline

        if scheduler not in (None, "pndm"):
            raise BenchError(f"pocold: the official sampler is PNDM; scheduler {scheduler!r} is not offered")
        path = Path(path_or_config) if path_or_config else TINY_CHECKPOINT
        if path_or_config is None and not (path / "unet" / "config.json").is_file():
            raise WeightsMissing("the shipped tiny PoCoLD", str(path / "unet" / "config.json"),
                                 f"{path} (make train-tiny-pocold POCOLD_OUT={path.parent}), or pass --checkpoint DIR")
        pipe = PoCoLDPipeline.from_pretrained(path, device=device, dtype=dtype)
        saved = {**EXTRA_SAMPLING_DEFAULTS, **PUBLISHED_SAMPLING, **(pipe.meta.get("sampling") or {})}
        given = {"steps": steps, "guidance": guidance, "end_guidance": end_guidance, "decay": decay,
                 "temperature": temperature}
        chosen = {k: v if v is not None else saved[k] for k, v in given.items()}
        chosen["decay"] = _flag(chosen["decay"])
        return cls(pipe, path, densepose=densepose, residual_threshold=residual_threshold, **chosen)

    @classmethod
    def from_random(cls, device: str = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0,
                    steps: int | None = None, guidance: float | None = None, scheduler: str | None = None,
                    end_guidance: float | None = None, decay=None,
                    temperature: float | None = None) -> "PoCoLDAdapter":
        """The published PoCoLD (UNet, reference encoder, channel mapper, SD VAE, 512x384) with random
        weights, seeded, sampled as the official ``inference.py`` does (PNDM, 50 steps, w = max(5 t /
        1000, 3), temperature 1) unless told otherwise: ``--model-arg init=random``. Poses are rendered
        part maps."""
        from fpdm_bench_baselines.pocold.pipeline import PUBLISHED_SAMPLING, PoCoLDPipeline

        if scheduler not in (None, "pndm"):
            raise BenchError(f"pocold: the official sampler is PNDM; scheduler {scheduler!r} is not offered")
        pipe = PoCoLDPipeline.from_random(seed, device=device, dtype=dtype)
        given = {"steps": steps, "guidance": guidance, "end_guidance": end_guidance, "decay": decay,
                 "temperature": temperature}
        defaults = {**EXTRA_SAMPLING_DEFAULTS, **PUBLISHED_SAMPLING}
        chosen = {k: v if v is not None else defaults[k] for k, v in given.items()}
        chosen["decay"] = _flag(chosen["decay"])
        return cls(pipe, None, init_seed=int(seed), **chosen)

    def prepare(self, pairs: list, dataset, log=print) -> dict[str, str]:
        """With ``densepose=DIR``: every pair's target map must exist; one error lists what is missing."""
        if self.densepose is None:
            return {}
        if not self.densepose.is_dir():
            raise DataError(self.densepose, "not a folder (densepose=DIR holds one DensePose IUV PNG per image, "
                                            "named <image stem>.png)")
        missing = []
        for rec in pairs:
            f = self.densepose / f"{Path(rec.target).stem}.png"
            if f.is_file():
                self._files[rec.pair_id] = f
            else:
                missing.append(f.name)
        if missing:
            shown = ", ".join(sorted(set(missing))[:5]) + (" …" if len(set(missing)) > 5 else "")
            raise DataError(self.densepose, f"{len(missing)} of the {len(pairs)} pairs have no DensePose map of their "
                                            f"target (missing: {shown})")
        log(f"pocold: DensePose maps of all {len(pairs)} targets found in {self.densepose}")
        return {}

    def _pose(self, batch: dict, frame: tuple[int, int]) -> torch.Tensor:
        from PIL import Image

        h, w = self.resolution
        f = self.pipeline.latent_factor()
        size = (h // f, w // f)  # the latent grid: 1/8 with SD's VAE
        if self.densepose is not None:
            maps = []
            for pid in batch["pair_id"]:
                if pid not in self._files:
                    raise BenchError(f"pocold: no DensePose map checked for pair {pid} (prepare() was not called)")
                with Image.open(self._files[pid]) as im:
                    maps.append(densepose_one_hot(np.asarray(im.convert("RGB")), size))
            return torch.stack(maps)
        kps = batch["target_kp"].detach().float().cpu().numpy()
        return torch.stack([one_hot(render_parts(k, frame, (h, w)), size) for k in kps])

    @torch.no_grad()
    def generate(self, batch: dict, generators: list[torch.Generator]) -> torch.Tensor:
        from fpdm_bench.modeling.resize import resize

        source = batch["source"].float().cpu()
        frame = tuple(source.shape[-2:])
        src = resize(source, self.resolution, "pil", "bilinear") * 2 - 1
        pose, prior = self._pose(batch, frame), None
        if self.warp.enabled:
            prior = self.warp.images(source, batch["source_kp"], batch["target_kp"])
            pose = self.warp.condition_input(pose, prior, self.pipeline.latent_factor())
        img = self.pipeline(src, pose, generators, self.steps, self.guidance, self.end_guidance, self.decay,
                            prior=prior, residual_threshold=self.warp.threshold, temperature=self.temperature)
        if tuple(img.shape[-2:]) == frame:
            return img
        return resize(img.cpu(), frame, "pil", "bicubic")

    def stages(self) -> dict:
        """Per-batch stages (``fpdm-bench profile``): the target part maps (rendered, or read from
        the DensePose files), the VAE encoder on the source, the reference encoder, the channel mapper
        (pose + latents into the UNet input: twice per evaluation), the UNet (twice per evaluation:
        null + cat batched, then full) and the VAE decoder (with a prior: the residuals' autoencoder)."""
        p = self.pipeline
        decoder = p.vae if p.residual_vae is None else p.residual_vae
        return {"pose_render": (self, "_pose"), "vae_encode": (p.vae, "encode"), "reference_encoder": p.rie,
                "pose_encoder": p.cm, "denoiser": p.unet, "vae_decode": (decoder, "decode")}

    def sampler_steps(self) -> int:
        """Scheduler evaluations (PNDM with skip_prk_steps: 50 steps are 51)."""
        return len(self.pipeline.make_scheduler(self.steps).timesteps)

    def nfe(self) -> int:
        return 3 * self.sampler_steps() + 1

    def info(self) -> dict:
        from fpdm_bench.io import files_sha256
        from fpdm_bench_baselines.pocold.pipeline import COMPONENTS, PUBLISHED_SAMPLING

        root, files = self.checkpoint, []  # a random build has no files
        if root is not None:
            files = sorted(p for name in (*COMPONENTS, "vae") for p in (root / name).glob("diffusion_pytorch_model.*"))
            files += sorted(p for d in ("vae", "residual_vae") for p in (root / d).glob("model.safetensors"))
        if self._sha is None and root is not None:
            self._sha = files_sha256(root, files)
        p = self.pipeline
        parts = {"unet": p.unet, "rie": p.rie, "channel_mapper": p.cm, "vae": p.vae}
        by_part = {k: sum(x.numel() for x in m.parameters()) for k, m in parts.items()}
        return {"name": self.name, "parameters": sum(by_part.values()), "parameters_by_part": by_part,
                "nfe": self.nfe(), "steps": self.steps, "scheduler": "pndm", "temperature": self.temperature,
                "guidance": self.guidance, "end_guidance": self.end_guidance, "decay": self.decay,
                "resolution": list(self.resolution), "dtype": str(p.dtype).replace("torch.", ""),
                "checkpoint": str(root) if root is not None else None, "checkpoint_sha256": self._sha,
                "checkpoint_sha256_of": [f.relative_to(root).as_posix() for f in files],
                "vae": type(p.vae).__name__,
                "pose_input": f"densepose maps from {self.densepose}" if self.densepose
                else "part maps rendered from the target keypoints (parts.render_parts; not DensePose)",
                "nfe_counts": "3 UNet calls per scheduler evaluation + 1 reference pass",
                **({"prior": self.warp.to_config()} if self.warp.enabled else {}),
                "noise": "per pair (the official: one generator re-seeded per batch of 32, and the VAE posterior "
                         "from the unseeded global RNG)",
                **random_info(self.init_seed, PUBLISHED_SAMPLING["steps"])}
