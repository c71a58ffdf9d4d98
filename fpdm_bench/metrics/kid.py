"""KID (kernel inception distance) with torchmetrics' estimator and a bootstrap CI.

KID's unbiased MMD² with the cubic polynomial kernel needs pairwise kernel sums, which have no
small sufficient statistic, so the generated features are kept (float32, 8 KiB per image at d=2048);
the reference side keeps a capped, deterministic subset (see refstats). The value is torchmetrics'
estimator: the mean over ``subsets`` random subsets of ``subset_size`` of ``poly_mmd`` (from
torchmetrics), with subsets drawn by a seeded generator. ``subset_size`` is capped at the smaller
set's size (torchmetrics raises instead); the cap is reported.

CI: generated-set bootstrap. B replicates each resample the generated features with replacement and
recompute KID with ``ci_subsets`` subsets; the CI is KID ± 1.96·sd(replicates) (normal bootstrap). The
replicates also carry subset noise, so the interval errs on the wide side.
"""
from __future__ import annotations

import numpy as np
import torch

from fpdm_bench.metrics.base import KID_BOOTSTRAP, SetMetric, remainder
from fpdm_bench.metrics.inception import INCEPTION_WEIGHTS


def kid_subsets(real: torch.Tensor, fake: torch.Tensor, subsets: int, subset_size: int,
                generator: torch.Generator) -> torch.Tensor:
    """[subsets] MMD² values, torchmetrics-style (random subsets without replacement)."""
    from torchmetrics.image.kid import poly_mmd

    vals = []
    for _ in range(subsets):
        ri = torch.randperm(len(real), generator=generator)[:subset_size]
        fi = torch.randperm(len(fake), generator=generator)[:subset_size]
        vals.append(poly_mmd(real[ri], fake[fi]))
    return torch.stack(vals)


class KID(SetMetric):
    """Kernel Inception distance to the reference set (torchmetrics' estimator, bootstrap CI)."""

    name = "kid"
    higher_is_better = False
    weights = INCEPTION_WEIGHTS
    title = latex_title = "KID"
    order = 30
    resample = KID_BOOTSTRAP

    def __init__(self, key: str | None = None, backbone: str = "fid-inception", subsets: int = 100,
                 subset_size: int = 1000, seed: int = 0, ci_replicates: int = 10, ci_subsets: int = 10,
                 drop_remainder: int = 0):
        super().__init__(key, backbone)
        self.subsets, self.subset_size, self.seed = int(subsets), int(subset_size), int(seed)
        self.ci_replicates, self.ci_subsets = int(ci_replicates), int(ci_subsets)
        self.drop_remainder = int(drop_remainder)
        self._feats: list[np.ndarray] = []

    def settings(self) -> dict:
        return {"backbone": self.backbone, "subsets": self.subsets, "subset_size": self.subset_size,
                "drop_remainder": self.drop_remainder}

    def update(self, features, ids=None) -> None:
        self._feats.append(np.asarray(features, dtype=np.float32).reshape(len(features), -1))

    def merge(self, other: "KID") -> None:
        self._feats.extend(other._feats)

    def features(self) -> np.ndarray:
        return np.concatenate(self._feats) if self._feats else np.zeros((0, 0), np.float32)

    def compute(self, reference) -> dict[str, dict]:
        """KID of the generated features against ``reference`` (its ``kid_features``, or an array)."""
        ref = getattr(reference, "kid_features", reference)
        fake_np = self.features()
        dropped = remainder(len(fake_np), self.drop_remainder)
        fake = torch.from_numpy(fake_np[: len(fake_np) - dropped]).double()
        real = torch.as_tensor(np.asarray(ref), dtype=torch.float64)
        if len(fake) < 2 or len(real) < 2:
            raise ValueError(f"KID needs at least 2 images per side, got {len(fake)} generated, {len(real)} reference")
        size = min(self.subset_size, len(fake), len(real))
        g = torch.Generator().manual_seed(self.seed)
        vals = kid_subsets(real, fake, self.subsets, size, g)
        value = float(vals.mean())
        ci = None
        if self.ci_replicates >= 2:
            reps = []
            for _ in range(self.ci_replicates):
                idx = torch.randint(len(fake), (len(fake),), generator=g)
                reps.append(float(kid_subsets(real, fake[idx], self.ci_subsets, size, g).mean()))
            sd = float(np.std(reps, ddof=1))
            ci = [value - 1.96 * sd, value + 1.96 * sd]
        out = {"value": value, "ci95": ci, "n": len(fake), "std": float(vals.std(unbiased=False)) if len(vals) > 1 else 0.0,
               "subset_size": size, "subsets": self.subsets, "metric": self.name,
               "ci_method": f"normal bootstrap, {self.ci_replicates} replicates" if ci else None}
        if dropped:
            out["dropped"] = dropped
        return {self.key: out}
