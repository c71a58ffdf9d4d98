"""Exact k-nearest-neighbour balls of two feature sets, and precision/recall/density/coverage from them.

The machinery of the ``prdc`` metric (``metrics/prdc.py``) and of its joint bootstrap in ``compare``
(``stats/prdc.py``); it is not itself a metric.

Naeem et al. (ICML 2020, "Reliable fidelity and diversity metrics for generative models";
clovaai/generative-evaluation-prdc ``prdc/prdc.py``) put a ball around every real feature x_i whose
radius r_i is the distance to its k-th nearest other real feature (the package takes the (k+1)-th
smallest distance of the row, the point itself counted at 0), and likewise s_j around every
generated feature y_j among the generated ones. With d_ij = ‖x_i - y_j‖ and strict comparisons, as
the package makes them:

- precision = the fraction of generated j with d_ij < r_i for some real i (Kynkäänniemi et al.);
- recall    = the fraction of real i with d_ij < s_j for some generated j;
- density   = (1/k) · the mean over generated j of #{i : d_ij < r_i};
- coverage  = the fraction of real i with d_ij < r_i for some generated j.

Distances are exact Euclidean distances in float64: d² = ‖x‖² + ‖y‖² - 2 x·y in float64 (what
scikit-learn's ``euclidean_distances``, which the package calls, computes for float64 input), in
row blocks of at most ``BLOCK`` entries, so 10,000 × 10,000 never needs its full matrix; a point's
distance to itself is set to exactly 0. The relations the four numbers need are kept as two bit
matrices (n_real × n_generated / 8 bytes each: 10.2 MiB for 10,000 × 8,570), so a bootstrap
replicate — the same balls, a multiset of the generated images given by its counts — costs one pass
over those bits and no distance (:meth:`Balls.values`).

Cost: three distance passes, real-real, generated-generated and real-generated, each n·m·d
multiply-adds (DeepFashion's 8,570 test pairs against a 10,000-image reference at d = 2,048: ~10¹²
in all, measured 45 s on two shared CPU cores; a replicate of :meth:`Balls.values` ~10 ms); memory:
the two bit matrices plus one block (32 MiB).
"""
from __future__ import annotations

import numpy as np

BLOCK = 1 << 22  # distance entries per block (float64: 32 MiB)


def _rows(x) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x.reshape(len(x), -1)


def distance_blocks(x: np.ndarray, y: np.ndarray, same: bool = False):
    """Yield (start, stop, D) with D[a, b] = ‖x[start + a] - y[b]‖ in float64, in row blocks of x.
    ``same``: x is y, so each point's distance to itself is set to exactly 0."""
    x, y = _rows(x), _rows(y)
    xx, yy = np.einsum("ij,ij->i", x, x), np.einsum("ij,ij->i", y, y)
    step = max(1, BLOCK // max(len(y), 1))
    for s in range(0, len(x), step):
        e = min(len(x), s + step)
        d2 = xx[s:e, None] + yy[None, :] - 2.0 * (x[s:e] @ y.T)
        np.maximum(d2, 0.0, out=d2)  # cancellation can leave -1e-13 for (near-)equal points
        d = np.sqrt(d2, out=d2)
        if same:
            d[np.arange(e - s), np.arange(s, e)] = 0.0
        yield s, e, d


def knn_radii(x: np.ndarray, k: int) -> np.ndarray:
    """[n] distance of each row of ``x`` to its k-th nearest other row: the (k+1)-th smallest entry
    of its distance row, itself included at 0 (the package's ``get_kth_value(d, k + 1)``)."""
    x = _rows(x)
    if len(x) <= k:
        raise ValueError(f"k-nearest-neighbour radii with k = {k} need more than {k} points, got {len(x)}")
    out = np.empty(len(x))
    for s, e, d in distance_blocks(x, x, same=True):
        out[s:e] = np.partition(d, k, axis=1)[:, k]
    return out


class Balls:
    """The k-NN balls of ``real`` [n, d] and ``fake`` [m, d] features and which points fall in which
    ball; :meth:`values` gives precision/recall/density/coverage of the generated set or of any
    multiset of it (bootstrap counts), with the balls fixed."""

    def __init__(self, real, fake, k: int = 5):
        real, fake = _rows(real), _rows(fake)
        if real.shape[1] != fake.shape[1]:
            raise ValueError(f"feature sizes differ: {real.shape[1]} (reference) vs {fake.shape[1]} (generated)")
        self.k, self.n_real, self.n_fake = int(k), len(real), len(fake)
        self.real_radii, self.fake_radii = knn_radii(real, self.k), knn_radii(fake, self.k)
        self.count = np.zeros(self.n_fake, np.int64)  # #{i : d_ij < r_i}: real balls holding fake j
        width = (self.n_fake + 7) // 8
        self.in_real = np.empty((self.n_real, width), np.uint8)  # bit j of row i: d_ij < r_i
        self.in_fake = np.empty((self.n_real, width), np.uint8)  # bit j of row i: d_ij < s_j
        for s, e, d in distance_blocks(real, fake):
            inside = d < self.real_radii[s:e, None]
            self.count += inside.sum(0)
            self.in_real[s:e] = np.packbits(inside, axis=1)
            self.in_fake[s:e] = np.packbits(d < self.fake_radii[None, :], axis=1)

    def values(self, counts=None) -> dict[str, float]:
        """{precision, recall, density, coverage} of the multiset with ``counts[j]`` copies of generated
        image j (None: each once, the package's numbers). Precision and density are means over the
        multiset; recall and coverage ask whether any image of it is in a ball."""
        w = np.ones(self.n_fake) if counts is None else np.asarray(counts, np.float64)
        m = float(w.sum())
        if m <= 0:
            raise ValueError("an empty multiset of generated images")
        present = np.packbits(w > 0)
        step = max(1, BLOCK // max(self.in_real.shape[1], 1))
        covered = recalled = 0
        for s in range(0, self.n_real, step):
            covered += int(np.any(self.in_real[s: s + step] & present, axis=1).sum())
            recalled += int(np.any(self.in_fake[s: s + step] & present, axis=1).sum())
        return {"precision": float(w @ (self.count > 0)) / m, "recall": recalled / self.n_real,
                "density": float(w @ self.count) / (self.k * m), "coverage": covered / self.n_real}
