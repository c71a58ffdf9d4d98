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


class KID:
    def __init__(self, subsets: int = 100, subset_size: int = 1000, seed: int = 0, ci_replicates: int = 10,
                 ci_subsets: int = 10):
        self.subsets, self.subset_size, self.seed = subsets, subset_size, seed
        self.ci_replicates, self.ci_subsets = ci_replicates, ci_subsets
        self._feats: list[np.ndarray] = []

    def update(self, features) -> None:
        self._feats.append(np.asarray(features, dtype=np.float32).reshape(len(features), -1))

    def merge(self, other: "KID") -> None:
        self._feats.extend(other._feats)

    def features(self) -> np.ndarray:
        return np.concatenate(self._feats) if self._feats else np.zeros((0, 0), np.float32)

    def drop_last(self, k: int) -> None:
        """Forget the last k images (protocols that drop a remainder batch)."""
        if k:
            self._feats = [self.features()[:-k]]

    def compute(self, ref_features) -> dict:
        fake = torch.from_numpy(self.features()).double()
        real = torch.as_tensor(np.asarray(ref_features), dtype=torch.float64)
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
        return {"value": value, "ci95": ci, "n": len(fake), "std": float(vals.std(unbiased=False)) if len(vals) > 1 else 0.0,
                "subset_size": size, "subsets": self.subsets,
                "ci_method": f"normal bootstrap, {self.ci_replicates} replicates" if ci else None}
