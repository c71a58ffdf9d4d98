"""Fréchet distances of many subsets or resamples of one run's stored features, cheaply.

FID(S) for a multiset S of a run's feature rows (a bootstrap resample, a subset for FID∞) against
fixed reference moments (μ_r, Σ_r = B Bᵀ, B from the refstats cache) is

    ‖μ_S - μ_r‖² + tr Σ_S + tr Σ_r - 2 Σ √eig(Bᵀ Σ_S B)

(the form of :func:`fpdm_bench.metrics.fid.frechet_distance`). With the rows centred on μ_r and
projected once, Y = (X - μ_r) B (n × r, r = rank Σ_r), every term is a weighted sum over rows:
μ_S from the counts w (how often each row is in S), tr Σ_S from the rows' squared norms, and
Bᵀ Σ_S B from the k distinct rows of Y in S, whose nonzero eigenvalues are those of a k×k Gram matrix
when k < r. No d×d covariance is ever formed.

Cost per distance: n·d for the mean, k·r·min(k, r) + min(k, r)³ for the eigenvalues (measured on
one core: ~1.5 s at DeepFashion's n = 8,570, d = r = 2,048; a few ms for a few hundred images).
Memory per run: the n×d float32 features (8 KiB per image at d = 2,048) and Y, n×r float64
(16 KiB per image at r = 2,048): ~210 MiB for DeepFashion's test split, ~1.6 GiB for PHOENIX's 64.6k.
"""
from __future__ import annotations

import numpy as np

CHUNK = 4096  # rows converted to float64 at a time


class FrechetProjection:
    """One run's feature rows [n, d] (float32, as stored) against fixed reference moments."""

    def __init__(self, features: np.ndarray, ref_mu: np.ndarray, ref_sigma: np.ndarray, ref_factor: np.ndarray):
        self.x = np.asarray(features, np.float32)
        self.n, self.d = self.x.shape
        self.c = np.asarray(ref_mu, np.float64)
        b = np.asarray(ref_factor, np.float64)
        self.tr_ref = float(np.trace(np.asarray(ref_sigma, np.float64)))
        self.y = np.empty((self.n, b.shape[1]))
        self.sq = np.empty(self.n)
        for s in range(0, self.n, CHUNK):
            z = self.x[s: s + CHUNK].astype(np.float64) - self.c
            self.y[s: s + CHUNK] = z @ b
            self.sq[s: s + CHUNK] = np.einsum("ij,ij->i", z, z)

    def _mean_centred(self, w: np.ndarray, m: float) -> np.ndarray:
        mu = np.zeros(self.d)
        for s in range(0, self.n, CHUNK):
            ws = w[s: s + CHUNK]
            if ws.any():
                mu += ws @ (self.x[s: s + CHUNK].astype(np.float64) - self.c)
        return mu / m

    def fid(self, counts: np.ndarray | None = None) -> float:
        """FID of the multiset with ``counts[i]`` copies of row i (None: every row once)."""
        w = np.ones(self.n) if counts is None else np.asarray(counts, np.float64)
        m = float(w.sum())
        if m < 2:
            raise ValueError(f"a Fréchet distance needs at least 2 images, got {m:g}")
        mu = self._mean_centred(w, m)  # μ_S - μ_r
        tr_s = (float(w @ self.sq) - m * float(mu @ mu)) / (m - 1)
        keep = np.flatnonzero(w)
        yk = self.y[keep]
        a = (yk - (w[keep] @ yk) / m) * np.sqrt(w[keep])[:, None]
        g = a @ a.T if a.shape[0] <= a.shape[1] else a.T @ a
        ev = np.linalg.eigvalsh((g + g.T) / 2) / (m - 1)
        tr_covmean = float(np.sqrt(np.clip(ev, 0, None)).sum())
        return float(mu @ mu) + tr_s + self.tr_ref - 2 * tr_covmean
