"""The keypoint-warp prior: one recipe option for every tiny model (FPDM, PIDM, CFLD, PoCoLD).

With it a model does not generate the target image but its *residual* over a cheap first guess, the
keypoint-warp floor's output (``keypoint_warp.warp_batch``: the source's parts moved onto the target
pose). One implementation of each step:

- ``prior_images``: the warp of the source, at the batch's size;
- ``residual``: the training target ``resize(target - prior)`` at the model's size, in pixel units
  (in [-1, 1]), not clamped; times ``residual_scale`` (``WarpPrior.target``). A latent model encodes
  it with an autoencoder fitted on residuals, a pixel model diffuses it as it is;
- ``compose``: the output ``clamp(prior + soft_threshold(upsampled residual, threshold))`` at the
  prior's (the batch's) size: the warp keeps its full resolution, the model's low resolution only
  touches what it changes;
- ``WarpPrior.condition_input``: with ``condition`` the model also sees the prior at its own size, as
  three more channels after its spatial pose input (FPDM's pose embedding, PIDM's UNet input, CFLD's
  pose encoder, PoCoLD's channel mapper, there pixel-unshuffled to the latent grid);
- ``TrainingPriors``: a trainer's priors and residual targets of every training pair, computed once.

Why (measured on the tiny FPDM, docs/models/fpdm.md "The shipped tiny checkpoints"): a model trained
from scratch in minutes on a CPU cannot generate a 64x44 image precisely enough to beat the warp it
could start from; a residual is mostly zero where the warp is right. Not in any of the four papers:
a recipe aid, off unless a recipe's ``prior:`` section turns it on (``WarpPrior.from_config``).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

import torch
import torch.nn.functional as F

from fpdm_bench.errors import BenchError

PRIORS = ("none", "keypoint-warp")


def check_prior(kind: str | None) -> str:
    """The prior a config names (None = 'none'); raises ValueError for an unknown one."""
    kind = kind or "none"
    if kind not in PRIORS:
        raise ValueError(f"prior must be one of {', '.join(PRIORS)}, not {kind!r}")
    return kind


def prior_images(kind: str, source: torch.Tensor, source_kp: torch.Tensor, target_kp: torch.Tensor) -> torch.Tensor:
    """First guesses [B,3,H,W] in [0,1] at the source's size (same device and dtype as ``source``);
    keypoints [B,K,2] in the source's pixels, NaN = missing."""
    if kind == "keypoint-warp":
        from fpdm_bench.modeling.keypoint_warp import warp_batch

        return warp_batch(source, source_kp, target_kp).to(source.device, source.dtype)
    raise ValueError(f"prior {kind!r} draws no image")


def soft_threshold(x: torch.Tensor, tau: float) -> torch.Tensor:
    """sign(x) max(|x| - tau, 0): shrinks every value towards 0 by tau, zeroing the small ones.

    A residual over a prior is mostly zero where the prior is right, and a low-resolution residual
    spills small values there (its upsampling, the model's error); soft-thresholding is the MAP
    estimate of a sparse (Laplace) signal under small Gaussian noise. ``tau`` is chosen per
    checkpoint on its *training* pairs.
    """
    if tau <= 0:
        return x
    return torch.sign(x) * (x.abs() - tau).clamp(min=0)


def resize(x: torch.Tensor, size: tuple[int, int] | None, clamp: bool = True) -> torch.Tensor:
    """[B,C,H,W] -> ``size`` (None or equal: unchanged) with antialiased bicubic; ``clamp`` back into
    [0, 1] (images), not for residuals."""
    if size is None or tuple(x.shape[-2:]) == tuple(size):
        return x
    out = F.interpolate(x, size=tuple(size), mode="bicubic", antialias=True, align_corners=False)
    return out.clamp(0, 1) if clamp else out


def residual(target: torch.Tensor, prior: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """``target - prior`` (same size) resized to ``size``, in pixel units, not clamped."""
    return resize(target - prior.to(target.device, target.dtype), size, clamp=False)


def compose(prior: torch.Tensor, generated: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """The output at the prior's size: the generated residual (pixel units, any size) upsampled with
    bicubic, soft-thresholded, added to the prior and clamped to [0, 1]; float32."""
    r = F.interpolate(generated.float(), size=tuple(prior.shape[-2:]), mode="bicubic", align_corners=False)
    return (prior.float() + soft_threshold(r, threshold)).clamp(0, 1)


@dataclass(frozen=True)
class WarpPrior:
    """A recipe's ``prior:`` section (``from_config``), recorded in the checkpoint it trains
    (``to_config``) so that the checkpoint's adapter composes its output the same way."""

    kind: str = "none"            # PRIORS; "none" = the model generates the image itself
    threshold: float = 0.0        # soft threshold of the upsampled residual at sampling (chosen on training pairs)
    residual_scale: float = 1.0   # what the model generates is residual * residual_scale
    condition: bool = True        # the model also sees the prior (``condition_input``)

    @property
    def enabled(self) -> bool:
        return self.kind != "none"

    @classmethod
    def from_config(cls, section, who: str = "config") -> "WarpPrior":
        """None (off), a kind (``keypoint-warp``, as FPDM's ``stage2.prior``) or a mapping of the fields."""
        if section is None or isinstance(section, str):
            section = {"kind": section}
        if not isinstance(section, dict):
            raise BenchError(f"{who}: prior must be a kind ({', '.join(PRIORS)}) or a mapping, not {section!r}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(section) - set(known))
        if unknown:
            raise BenchError(f"{who}: unknown prior key(s) {', '.join(unknown)} (known: {', '.join(known)})")
        try:
            kind = check_prior(section.get("kind"))
        except ValueError as e:
            raise BenchError(f"{who}: {e}") from None
        condition = section.get("condition", cls.condition)
        if not isinstance(condition, bool):
            raise BenchError(f"{who}: prior.condition must be true or false, not {condition!r}")
        try:
            out = cls(kind, float(section.get("threshold", cls.threshold)),
                      float(section.get("residual_scale", cls.residual_scale)), condition)
        except (TypeError, ValueError):
            raise BenchError(f"{who}: prior.threshold and prior.residual_scale must be numbers") from None
        if not (math.isfinite(out.residual_scale) and out.residual_scale > 0):
            raise BenchError(f"{who}: prior.residual_scale must be > 0, got {out.residual_scale}")
        return out.at_threshold(out.threshold, who)

    def to_config(self) -> dict:
        return asdict(self)

    def at_threshold(self, tau: float | None, who: str = "model") -> "WarpPrior":
        """This prior with the sampling threshold ``tau`` (None: unchanged); refuses a negative (or NaN)
        one, and any above 0 without a prior."""
        if tau is None:
            return self
        if not float(tau) >= 0.0:
            raise BenchError(f"{who}: residual_threshold must be >= 0, got {tau}")
        if float(tau) > 0 and not self.enabled:
            raise BenchError(f"{who}: residual_threshold={tau} needs a checkpoint with a prior (this one has none)")
        return replace(self, threshold=float(tau))

    def images(self, source: torch.Tensor, source_kp: torch.Tensor, target_kp: torch.Tensor) -> torch.Tensor:
        """The prior [B,3,H,W] at the source's size."""
        return prior_images(self.kind, source, source_kp, target_kp)

    def target(self, target: torch.Tensor, prior: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """What the model learns to generate: ``residual(target, prior, size) * residual_scale``."""
        r = residual(target, prior, size)
        return r if self.residual_scale == 1 else r * self.residual_scale

    def compose(self, prior: torch.Tensor, generated: torch.Tensor, threshold: float | None = None) -> torch.Tensor:
        """``compose`` of what the model generated (``target``'s units) at this prior's threshold."""
        r = generated if self.residual_scale == 1 else generated / self.residual_scale
        return compose(prior, r, self.threshold if threshold is None else threshold)

    def condition_channels(self, unshuffle: int = 1) -> int:
        """Channels ``condition_input`` adds to a spatial pose input."""
        return 3 * unshuffle ** 2 if self.enabled and self.condition else 0

    def condition_input(self, pose: torch.Tensor, prior: torch.Tensor | None, unshuffle: int = 1) -> torch.Tensor:
        """``pose`` [B,C,h,w] with the prior (any size; resized to (h u, w u) and clamped, then
        pixel-unshuffled by ``u``) as ``condition_channels(u)`` more channels; unchanged without."""
        if not self.condition_channels():
            return pose
        if prior is None:
            raise BenchError(f"this model has the {self.kind} prior: pass the prior images")
        h, w = pose.shape[-2:]
        p = resize(prior.to(pose.device, pose.dtype), (h * unshuffle, w * unshuffle)).clamp(0, 1)
        return torch.cat([pose, F.pixel_unshuffle(p, unshuffle) if unshuffle > 1 else p], dim=1)


class TrainingPriors:
    """The prior and the residual target of every (source, target) pair a trainer draws, computed
    once before training (the warp takes milliseconds per pair; thousands of pairs, a minute).

    ``pairs`` [N, 2] indexes ``names`` (``training.pair_index``); ``priors[rows(s, t)]`` are the
    priors at ``condition_size`` (not clamped; ``condition_input`` clamps), ``residuals[rows(s, t)]``
    the targets at ``size`` (``WarpPrior.target``).
    """

    def __init__(self, prior: WarpPrior, dataset, names: list[str], pairs: torch.Tensor, size: tuple[int, int],
                 condition_size: tuple[int, int] | None = None, chunk: int = 64):
        keys = torch.unique(pairs, dim=0)
        self._rows = torch.full((len(names), len(names)), -1, dtype=torch.long)
        self._rows[keys[:, 0], keys[:, 1]] = torch.arange(len(keys))
        priors, residuals = [], []
        with torch.no_grad():
            for i in range(0, len(keys), chunk):
                k = keys[i:i + chunk].tolist()
                src = torch.stack([dataset.load_image(names[s]) for s, _ in k])
                tgt = torch.stack([dataset.load_image(names[t]) for _, t in k])
                kps = [torch.stack([torch.from_numpy(dataset.keypoints(names[j[c]])) for j in k]) for c in (0, 1)]
                p = prior.images(src, *kps)
                priors.append(resize(p, condition_size or size, clamp=False))
                residuals.append(prior.target(tgt, p, size))
        self.priors, self.residuals = torch.cat(priors), torch.cat(residuals)

    def __len__(self) -> int:
        return len(self.residuals)

    def rows(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Row of each (source, target) index pair in ``priors`` / ``residuals``."""
        rows = self._rows[source, target]
        if (rows < 0).any():
            raise BenchError("TrainingPriors: a pair was drawn whose prior was not computed")
        return rows
