"""Precision, recall, density and coverage (Naeem et al., ICML 2020) on the Inception features FID uses.

Kynkäänniemi et al. (NeurIPS 2019) split FID's one number into fidelity (precision: how many
generated images fall on the real manifold) and diversity (recall: how much of the real manifold the
generated images reach), each manifold the union of k-nearest-neighbour balls; Naeem et al. added
density (how many real balls a generated image falls in, /k) and coverage (how many real balls hold
a generated image), which outliers in the real set move less. The four numbers, their definitions and
the exact distances are in :mod:`fpdm_bench.metrics.neighbours`; they equal the ``prdc`` package's
``compute_prdc`` (clovaai/generative-evaluation-prdc) on the same features (tests/test_metrics_prdc.py).

Features: the protocol's Inception backbone (``fid-inception`` in ``standard-plus``), the same
feature group as FID and KID, so a run computes each image's Inception features once for all three
and stores them in ``features/``; ``compare`` recomputes PRDC from those rows without any network.
``nearest_k`` = 5, the paper's default. Reference: the protocol's FID reference set, as KID keeps it
(refstats' ``kid_features``: every reference image up to 10,000, else 10,000 evenly spaced over the
set — Naeem et al. use 10,000 real and 10,000 generated; the sizes here are the reference set's and
the run's, reported as ``n_reference`` and ``n``). All four are higher-is-better fractions (density
can exceed 1) and depend on n (recall and coverage grow with the number of generated images).

CI: a bootstrap over the generated images with the reference fixed, as FID's: replicate r gives image
i the weight w_ri ~ Poisson(1) from (seed, image id) (``fid.poisson_weights``, independent of order,
batching and sharding), and recomputes the four numbers of that multiset with every k-NN ball fixed
at its full-set radius (a resample's duplicates would otherwise shrink generated radii towards 0).
Recall and coverage ask whether *any* image of the multiset is in a ball, so their replicates run
low (a resample holds ~63 % of the distinct images); the interval is the normal one around the
observed value, ± 1.96·sd(replicates), clipped to [0, 1] (density: to ≥ 0). Replicates cost no
distance (one pass over the ball bits each), so 100 are the default.
"""
from __future__ import annotations

import numpy as np

from fpdm_bench.metrics.base import PRDC_BOOTSTRAP, SetMetric
from fpdm_bench.metrics.fid import poisson_weights
from fpdm_bench.metrics.inception import INCEPTION_WEIGHTS
from fpdm_bench.metrics.neighbours import Balls


class PRDC(SetMetric):
    """Precision / recall / density / coverage of the generated Inception features (k-NN balls, k = 5)."""

    name = "prdc"
    higher_is_better = True
    weights = INCEPTION_WEIGHTS
    outputs = {"precision": True, "recall": True, "density": True, "coverage": True}  # Balls.values' keys
    key_titles = {"precision": ("Precision", "Precision"), "recall": ("Recall", "Recall"),
                  "density": ("Density", "Density"), "coverage": ("Coverage", "Coverage")}
    order = 32  # after KID (30), before LPIPS (40)
    resample = PRDC_BOOTSTRAP

    def __init__(self, key: str | None = None, backbone: str = "fid-inception", nearest_k: int = 5,
                 replicates: int = 100, seed: int = 0):
        super().__init__(key, backbone)
        self.nearest_k, self.replicates, self.seed = int(nearest_k), int(replicates), int(seed)
        self._feats: list[np.ndarray] = []
        self._ids: list[str] = []

    def settings(self) -> dict:
        return {"backbone": self.backbone, "nearest_k": self.nearest_k, "replicates": self.replicates}

    def update(self, features, ids=None) -> None:
        feats = np.asarray(features, dtype=np.float32).reshape(len(features), -1)  # the stored rows' dtype
        self._feats.append(feats)
        start = sum(len(f) for f in self._feats[:-1])
        self._ids.extend(ids if ids is not None else [str(start + i) for i in range(len(feats))])

    def merge(self, other: "PRDC") -> None:
        self._feats.extend(other._feats)
        self._ids.extend(other._ids)

    def compute(self, reference) -> dict[str, dict]:
        """The four numbers against ``reference`` (its ``kid_features``, or an array of features)."""
        real = np.asarray(getattr(reference, "kid_features", reference))
        fake = np.concatenate(self._feats) if self._feats else np.zeros((0, 0), np.float32)
        k = self.nearest_k
        if len(fake) <= k or len(real) <= k:
            raise ValueError(f"PRDC with nearest_k = {k} needs more than {k} images per side, got {len(fake)} "
                             f"generated and {len(real)} reference")
        balls = Balls(real, fake, k)
        values = balls.values()
        cis = {o: None for o in self.outputs}
        if self.replicates >= 2:
            w = np.stack([poisson_weights(self.seed, i, self.replicates) for i in self._ids], axis=1)  # [R, n]
            reps = [balls.values(w[r]) for r in range(self.replicates) if w[r].sum() > 0]
            for o in self.outputs:
                sd = float(np.std([x[o] for x in reps], ddof=1))
                hi = values[o] + 1.96 * sd
                cis[o] = [max(0.0, values[o] - 1.96 * sd), hi if o == "density" else min(1.0, hi)]
        method = (f"normal bootstrap of the generated images, {self.replicates} Poisson replicates, k-NN balls fixed"
                  if self.replicates >= 2 else None)
        return {o: {"value": values[o], "ci95": cis[o], "n": len(fake), "n_reference": len(real), "nearest_k": k,
                    "metric": self.name, "ci_method": method} for o in self.outputs}
