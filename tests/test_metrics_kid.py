"""KID against torchmetrics' KernelInceptionDistance on the same features."""
import fpdm_bench  # noqa: F401

import numpy as np
import torch
import torch.nn as nn
from torchmetrics.image.kid import KernelInceptionDistance

from fpdm_bench.metrics.kid import KID


class _Identity(nn.Module):
    def forward(self, x):
        return x


def test_kid_matches_torchmetrics():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(40, 32, generator=g, dtype=torch.float64)
    fake = torch.randn(40, 32, generator=g, dtype=torch.float64) * 1.2 + 0.3
    # subset_size = n and one subset: the estimate does not depend on the random permutation.
    tm = KernelInceptionDistance(feature=_Identity(), subsets=1, subset_size=40)
    tm.update(real, real=True)
    tm.update(fake, real=False)
    ref_mean, _ = tm.compute()
    ours = KID(subsets=1, subset_size=40, ci_replicates=0)
    ours.update(fake[:15].numpy())
    ours.update(fake[15:].numpy())
    out = ours.compute(real.numpy())["kid"]
    assert abs(out["value"] - float(ref_mean)) <= 1e-6 * max(1.0, abs(float(ref_mean)))
    assert out["n"] == 40


def test_kid_ci_brackets_value_and_is_deterministic():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(60, 16)), rng.normal(size=(50, 16)) + 0.5
    a, b = KID(subsets=20, subset_size=20, ci_replicates=8), KID(subsets=20, subset_size=20, ci_replicates=8)
    a.update(fake)
    b.update(fake)
    ra, rb = a.compute(real)["kid"], b.compute(real)["kid"]
    assert ra == rb
    lo, hi = ra["ci95"]
    assert lo < ra["value"] < hi and ra["value"] > 0
