"""Streaming FID with a bootstrap CI, in float64 sufficient statistics.

``FrechetState`` is the machinery (any feature network); ``FID`` is the registered metric on an
Inception backbone, and other Fréchet distances (``fd_dinov2``) reuse it with their own network.

State: the count n, the feature sum Σx and the outer-product sum Σxxᵀ (float64), so memory is
O(d²) whatever the number of images (d = 2048: 32 MiB per sum matrix); no features are kept.

Determinism: features are folded into the sums in fixed chunks of ``chunk`` consecutive images
(counted from the first update), so the result does not depend on how the caller batched its
updates (a batch-size-1 run and a batch-size-8 run give bit-identical FIDs in one process: the same
sums in the same order). The partial last chunk is folded in by :meth:`FrechetState.finish`, or dropped when ``drop_remainder`` is set (the PIDM/PoCoLD/GFLA
scripts drop the last ``len % 64`` images; set ``chunk=64, drop_remainder=True``).

Bootstrap CI (generated side; the reference statistics are fixed): R Poisson-bootstrap replicates of
the same sums. Image i gets, in replicate r, a weight w_ri ~ Poisson(1) drawn from a generator
seeded by sha256(seed, image id), so the weights depend only on (seed, image id) and not on order,
batching or process. Each replicate keeps Σw, Σwx and Σwxxᵀ; at the end each gives a weighted
mean/covariance and a FID. The CI is the normal bootstrap interval, FID ± 1.96·sd(replicate FIDs).
Memory is (R + 1)·d² float64 (R = 10, d = 2048: ~370 MiB); R = 0 turns the CI off.

States merge across processes by adding the sums (:meth:`FrechetState.merge`), after each is finished.

The Fréchet distance is computed as ‖μ₁-μ₂‖² + tr Σ₁ + tr Σ₂ - 2 tr √(Σ₂^½ Σ₁ Σ₂^½), the symmetric
form of pytorch-fid's tr √(Σ₁Σ₂): a symmetric eigenproblem of size rank(Σ₂) instead of
``scipy.linalg.sqrtm`` of a non-symmetric d×d product (same value, checked against pytorch-fid in
the tests; much faster, and the reference factor is computed once and cached with its statistics).
"""
from __future__ import annotations

import hashlib

import numpy as np

from fpdm_bench.metrics.base import FRECHET_BOOTSTRAP, SetMetric
from fpdm_bench.metrics.inception import INCEPTION_WEIGHTS


def psd_factor(sigma: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
    """B with sigma = B Bᵀ, B = V·diag(√λ) over the positive eigenvalues λ of sigma only (d × r).

    With the features behind sigma and fewer of them than dimensions (a small reference set), the
    eigenvectors come from the n×n Gram matrix instead of a d×d eigendecomposition (same result,
    rank ≤ n-1, much cheaper).
    """
    d = sigma.shape[0]
    if features is not None and len(features) - 1 < d:
        z = np.asarray(features, np.float64)
        z = (z - z.mean(0)) / np.sqrt(len(z) - 1)
        lam, u = np.linalg.eigh(z @ z.T)
        keep = lam > lam.max() * 1e-12 if lam.size and lam.max() > 0 else np.zeros_like(lam, bool)
        return z.T @ u[:, keep]  # columns: v_i·√λ_i (since zᵀu_i = √λ_i·v_i)
    lam, vec = np.linalg.eigh((sigma + sigma.T) / 2)
    keep = lam > 0
    return vec[:, keep] * np.sqrt(lam[keep])


def frechet_distance(mu1, sigma1, mu2, sigma2, factor2: np.ndarray | None = None) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    tr √(Σ₁Σ₂) = tr √(Σ₂^½ Σ₁ Σ₂^½) = Σ √eig(Bᵀ Σ₁ B) with Σ₂ = B Bᵀ (``factor2``, from
    :func:`psd_factor`; computed here if not given): an r×r symmetric eigenproblem, r = rank Σ₂.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"feature sizes differ: {mu1.shape} vs {mu2.shape}")
    b = psd_factor(sigma2) if factor2 is None else factor2
    m = b.T @ sigma1 @ b
    ev = np.linalg.eigvalsh((m + m.T) / 2)
    tr_covmean = np.sqrt(np.clip(ev, 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


def poisson_weights(seed: int, image_id: str, replicates: int) -> np.ndarray:
    """The R bootstrap weights of one image: Poisson(1) draws from a generator seeded by (seed, id)."""
    digest = hashlib.sha256(f"{seed}\0{image_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little")).poisson(1.0, replicates).astype(np.float64)


def mean_cov(n: float, s1: np.ndarray, s2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (like np.cov) from (weighted) sums."""
    mu = s1 / n
    cov = (s2 - n * np.outer(mu, mu)) / (n - 1)
    return mu, cov


class FrechetState:
    """Generated-side state of a Fréchet distance: ``update(features, ids)``, ``finish()``,
    ``compute(ref_mu, ref_sigma)``."""

    def __init__(self, dims: int = 2048, replicates: int = 10, seed: int = 0, chunk: int = 64,
                 drop_remainder: bool = False):
        self.dims, self.replicates, self.seed = dims, replicates, seed
        self.chunk, self.drop_remainder = chunk, drop_remainder
        self.seen = 0  # images given to update (including pending and dropped ones)
        self.n = 0
        self.s1 = np.zeros(dims)
        self.s2 = np.zeros((dims, dims))
        self.rep_n = np.zeros(replicates)
        self.rep_s1 = np.zeros((replicates, dims))
        self.rep_s2 = np.zeros((replicates, dims, dims))
        self._pending: list[tuple[str, np.ndarray]] = []
        self.dropped = 0
        self.finished = False

    def update(self, features, ids: list[str] | None = None) -> None:
        """Add [B, dims] features; ``ids`` name the images for the bootstrap weights (default: their
        running index, which equals the dataset index when images come in dataset order)."""
        if self.finished:
            raise RuntimeError("FrechetState.update after finish()")
        feats = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
        if feats.shape[1] != self.dims:
            raise ValueError(f"expected {self.dims}-d features, got {feats.shape[1]}")
        ids = ids if ids is not None else [str(self.seen + i) for i in range(len(feats))]
        self.seen += len(feats)
        self._pending.extend(zip(ids, feats))
        while len(self._pending) >= self.chunk:
            self._fold(self._pending[: self.chunk])
            self._pending = self._pending[self.chunk:]

    def _fold(self, items) -> None:
        x = np.stack([f for _, f in items])
        self.n += len(x)
        self.s1 += x.sum(0)
        self.s2 += x.T @ x
        if self.replicates:
            w = np.stack([poisson_weights(self.seed, i, self.replicates) for i, _ in items], axis=1)  # [R, m]
            self.rep_n += w.sum(1)
            self.rep_s1 += w @ x
            for r in range(self.replicates):
                self.rep_s2[r] += (x * w[r, :, None]).T @ x

    def finish(self) -> None:
        """Fold in (or, with drop_remainder, drop) the partial last chunk. Idempotent."""
        if self.finished:
            return
        if self._pending:
            if self.drop_remainder and self.n:  # fewer than one chunk in all: the scripts keep them
                self.dropped = len(self._pending)
            else:
                self._fold(self._pending)
        self._pending = []
        self.finished = True

    def merge(self, other: "FrechetState") -> None:
        """Add another finished state (another process's share of the images)."""
        self.finish()
        other.finish()
        if (other.dims, other.replicates, other.seed) != (self.dims, self.replicates, self.seed):
            raise ValueError("cannot merge Fréchet states with different dims/replicates/seed")
        self.seen += other.seen
        self.n += other.n
        self.dropped += other.dropped
        self.s1 += other.s1
        self.s2 += other.s2
        self.rep_n += other.rep_n
        self.rep_s1 += other.rep_s1
        self.rep_s2 += other.rep_s2

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        self.finish()
        if self.n < 2:
            raise ValueError(f"a Fréchet distance needs at least 2 images, got {self.n}")
        return mean_cov(self.n, self.s1, self.s2)

    def compute(self, ref_mu, ref_sigma, ref_factor: np.ndarray | None = None) -> dict:
        """{"value", "ci95", "n", "dropped", "ci_method"} against reference statistics
        (``ref_factor``: :func:`psd_factor` of ref_sigma, cached with the reference statistics)."""
        mu, sigma = self.stats()
        root = psd_factor(ref_sigma) if ref_factor is None else ref_factor
        value = frechet_distance(mu, sigma, ref_mu, ref_sigma, root)
        ci = None
        if self.replicates >= 2:
            reps = [frechet_distance(*mean_cov(self.rep_n[r], self.rep_s1[r], self.rep_s2[r]), ref_mu, ref_sigma, root)
                    for r in range(self.replicates) if self.rep_n[r] > 1]
            sd = float(np.std(reps, ddof=1))
            ci = [value - 1.96 * sd, value + 1.96 * sd]
        return {"value": value, "ci95": ci, "n": self.n, "dropped": self.dropped,
                "ci_method": f"normal bootstrap, {self.replicates} Poisson replicates" if ci else None}


class FID(SetMetric):
    """Fréchet Inception distance to the reference set (float64 streaming statistics, bootstrap CI)."""

    name = "fid"
    higher_is_better = False
    weights = INCEPTION_WEIGHTS
    title = latex_title = "FID"
    order = 10
    sweep_summary = True
    resample = FRECHET_BOOTSTRAP

    def __init__(self, key: str | None = None, backbone: str = "fid-inception", replicates: int = 10,
                 drop_remainder: int = 0, seed: int = 0):
        super().__init__(key, backbone)
        self.replicates, self.seed = int(replicates), int(seed)
        self.drop_remainder = int(drop_remainder)
        self.state: FrechetState | None = None

    def settings(self) -> dict:
        return {"backbone": self.backbone, "replicates": self.replicates, "drop_remainder": self.drop_remainder}

    def reference_drops(self) -> tuple[int, ...]:
        return (self.drop_remainder,)

    def update(self, features, ids) -> None:
        if self.state is None:
            self.state = FrechetState(dims=np.asarray(features).shape[1], replicates=self.replicates, seed=self.seed,
                                      chunk=self.drop_remainder or 64, drop_remainder=bool(self.drop_remainder))
        self.state.update(features, ids)

    def merge(self, other: "FID") -> None:
        if other.state is None:
            return
        if self.state is None:
            self.state = other.state
        else:
            self.state.merge(other.state)

    def compute(self, reference) -> dict[str, dict]:
        if self.state is None:
            raise ValueError(f"{self.key}: no generated images were scored")
        m = reference.moments[self.drop_remainder]
        return {self.key: {**self.state.compute(m.mu, m.sigma, m.factor), "metric": self.name}}
