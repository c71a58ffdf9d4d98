"""The one interface every model is run through.

An adapter takes a batch from a PairDataset (see ``fpdm_bench.data.base.collate``) and returns
images in [0, 1] at the batch's size. Randomness comes only from the per-sample generators the
runner passes in, one per pair, seeded from (run seed, pair id).
"""
from __future__ import annotations

from typing import Any, ClassVar, Tuple, Union

import torch

#: A profiling stage: a module (forward hooks) or (object, method name) (the method is wrapped).
Stage = Union[torch.nn.Module, Tuple[Any, str]]


class ModelAdapter:
    name: ClassVar[str] = "model"
    #: (H, W) the model generates at natively; None = whatever size the batch has. Descriptive (the
    #: adapter resizes to the batch's size itself); the harness does not read it.
    resolution: ClassVar[tuple[int, int] | None] = None
    #: True for adapters that read the target image (the oracle) or released images. Descriptive:
    #: every batch carries the target; the harness does not read it.
    needs_target: ClassVar[bool] = False
    #: False for adapters whose images do not depend on the inputs (released images): --perturb is refused.
    uses_inputs: ClassVar[bool] = True
    # --- how reports show the model (read from the class; nothing else lists these names) ---------
    #: A floor: a trivial model that bounds every table (a copy of the source, the ground truth, a
    #: non-learned warp). Reports show floors below the table's rule and never rank them;
    #: ``fpdm-bench models --floors`` lists them.
    floor: ClassVar[bool] = False
    #: Position among the floors: floors are listed sorted by it (then by name).
    order: ClassVar[int] = 0
    #: The model's fixed colour in figures ("#rrggbb"); None = the next free colour of the cycle.
    colour: ClassVar[str | None] = None
    #: False for a model whose images already are a column of the report's grid (the oracle's are the
    #: ground truth; a source copy's, the source): the grid leaves its run out.
    in_grid: ClassVar[bool] = True
    #: With ``in_grid = False``: the grid column its images repeat ("ground truth", "source"), which
    #: the grid's caption names.
    repeats: ClassVar[str | None] = None

    def __init__(self, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
        self.device = torch.device(device)
        self.dtype = dtype

    @classmethod
    def from_pretrained(cls, path_or_config: str | None = None, device: str = "cpu",
                        dtype: torch.dtype = torch.float32, **kwargs) -> "ModelAdapter":
        return cls(device=device, dtype=dtype, **kwargs)

    @classmethod
    def from_random(cls, device: str = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0,
                    **kwargs) -> "ModelAdapter":
        """The model's published configuration with random weights, seeded (``--model-arg init=random``,
        ``init_seed=N``; see ``fpdm_bench.models.random_init``): for shapes, memory and time before the
        weights are at hand. Its ``info()`` must say ``"init": "random"``; the runner then scores no
        metric. Other keyword arguments are the sampling settings ``from_pretrained`` takes. Default:
        no such build (models without a published configuration, e.g. the floors)."""
        raise NotImplementedError(f"{cls.name} has no random-weight build")

    @classmethod
    def default_checkpoint(cls, dataset: str | None) -> str | None:
        """The checkpoint used when none is given, for a run on ``dataset`` (None = the adapter's own
        default). A model that ships one checkpoint per kind of data picks it here; the run records
        the choice (model.json ``checkpoint``)."""
        return None

    def prepare(self, pairs: list, dataset, log=print) -> dict[str, str]:
        """Called by the runner once, before anything is generated or written, with every pair of the
        run (all shards' pairs, after --limit) and the dataset. An adapter that reads files made
        elsewhere checks them here and raises a BenchError to refuse the run. Returns {pair_id: reason}
        for pairs it cannot produce and was asked to skip: the runner records them as skipped
        (samples.jsonl, results.json ``skipped``) and scores the rest. Default: nothing to check."""
        return {}

    def generate(self, batch: dict, generators: list[torch.Generator]) -> torch.Tensor:
        """batch: source/target [B,3,H,W] in [0,1], source_kp/target_kp [B,K,2], pair_id list.

        Returns [B, 3, H, W] float in [0, 1] on any device.
        """
        raise NotImplementedError

    def info(self) -> dict:
        """Parameters, NFE, scheduler, checkpoint hash: whatever says how images were produced."""
        return {"name": self.name, "parameters": 0, "nfe": 0, "checkpoint_sha256": None}

    def stages(self) -> dict[str, Stage]:
        """The model's sub-networks by stage name, for ``fpdm-bench profile``'s per-stage latency.

        Each value is an ``nn.Module`` (timed by forward pre/post hooks on its ``__call__``) or an
        ``(object, method_name)`` pair (the method is wrapped for the timed calls only: use it when
        the module does more than the stage, e.g. ``(vae, "decode")`` for a VAE that also encodes,
        or for a stage that is a method or a module-level function rather than a forward).
        Conventional names: ``source_encoder``, ``fusion``, ``pose_render``, ``pose_encoder``,
        ``denoiser`` (the network called once or more per sampler step), ``vae_encode``,
        ``vae_decode``. Stages should not run inside one another (the profiler reports nesting, and
        the stages' sum would count nested time twice). Default: none (only the total is timed)."""
        return {}

    def sampler_steps(self) -> int | None:
        """Sampler iterations one ``generate`` runs (the denoiser's time / this = one denoising
        step), or None for a model without a sampler. Default: ``info()["steps"]``, if any; an
        adapter whose sampler runs another number of iterations (a strength < 1, PNDM's extra
        evaluation) overrides it."""
        steps = self.info().get("steps")
        return int(steps) if steps is not None else None


RANGE_SLACK = 1 / 255  # less than one 8-bit level: rounding noise of a clamped model, not a wrong range


def check_output(images, batch: dict, model: str, check_size: bool = True) -> None:
    """Every adapter's output is checked before anything of its batch is written: a tensor of
    floats, [B, 3, H, W] at the batch's size, finite, in [0, 1]. Raises one BenchError naming the
    model, the first bad pair and what was wrong (a NaN image from an fp16 overflow, a model that
    returns [-1, 1] or 0-255 values, a wrong size). ``check_size=False`` accepts any H, W (images
    read from another code base's folder, which the protocol resizes)."""
    from fpdm_bench.errors import BenchError

    ids = list(batch["pair_id"])
    frame = batch.get("target", batch.get("source"))
    h, w = (int(x) for x in frame.shape[-2:]) if frame is not None else ("H", "W")
    want = (len(ids), 3, h, w)
    if not isinstance(images, torch.Tensor):
        raise BenchError(f"model {model} returned {type(images).__name__} for pairs {ids[0]}…; "
                         f"adapters return a float tensor {list(want)} in [0, 1]")
    if not images.is_floating_point():
        raise BenchError(f"model {model} returned {str(images.dtype).replace('torch.', '')} images for pair "
                         f"{ids[0]}; adapters return float images in [0, 1]")
    if images.ndim != 4 or tuple(images.shape[:2]) != want[:2] or (check_size and tuple(images.shape) != want):
        raise BenchError(f"model {model} returned images of shape {list(images.shape)} for a batch of "
                         f"{len(ids)} pairs at {h}x{w} (first pair {ids[0]}); expected {list(want)}")
    flat = images.detach().float().flatten(1)
    bad = ~torch.isfinite(flat)
    if bad.any():
        i = int(bad.any(1).nonzero()[0])
        n_nan, n_inf = int(flat[i].isnan().sum()), int(flat[i].isinf().sum())
        raise BenchError(f"model {model} returned a non-finite image for pair {ids[i]} ({n_nan} NaN, {n_inf} Inf "
                         f"values of {flat.shape[1]}); nothing was written for it (fp16 overflow? try --dtype "
                         f"float32)")
    lo, hi = flat.amin(1), flat.amax(1)
    out = (lo < -RANGE_SLACK) | (hi > 1 + RANGE_SLACK)
    if out.any():
        i = int(out.nonzero()[0])
        raise BenchError(f"model {model} returned values in [{float(lo[i]):.4g}, {float(hi[i]):.4g}] for pair "
                         f"{ids[i]}; adapters return images in [0, 1] (map [-1, 1] outputs with (x + 1) / 2)")
