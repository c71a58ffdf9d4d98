"""CMMD: the maximum mean discrepancy of CLIP embeddings (Jayasumana et al., CVPR 2024, "Rethinking FID").

Jayasumana et al. argue that Inception features and FID's Gaussian assumption misjudge modern
generators, and propose the MMD with a Gaussian RBF kernel on CLIP ViT-L/14@336 image embeddings.
Their reference code (google-research/google-research ``cmmd/``) fixes every constant used here:

- ``io_util.py``: each image centre-cropped to a square (the shorter side) and resized to the
  model's input size (336) with PIL bicubic (antialiased), read as float32 and divided by 255;
- ``embedding.py``: CLIP's mean/std normalisation and the projected image embedding of
  ``vit_l14_336px``, which scenic's CLIP L2-normalises (``layers.py``, ``encode_image(normalize=True)``);
- ``distance.py``: the minimum-variance (biased, V-statistic) MMD² estimator of Gretton et al.
  (JMLR 2012, eq. 5) with k(x, y) = exp(-‖x - y‖² / (2σ²)), σ = 10, scaled by 1000:
  CMMD = 1000 · (mean k(x, x') + mean k(y, y') - 2 mean k(x, y)), every mean over all pairs of the two
  sets, the diagonal included.

The network here is transformers' ``CLIPVisionModelWithProjection`` (``image_embeds``) loaded from a
local folder in the transformers layout (``openai/clip-vit-large-patch14-336``: the whole CLIP
checkpoint, whose text tower is not loaded; a loading report with any missing vision weight is
refused, never run half random). Without that folder CMMD is ``n/a`` naming it (``fpdm-bench weights``).

Reference: the protocol's FID reference set, embedded once by CLIP and cached like Inception's
statistics (refstats: every image up to 10,000, else 10,000 evenly spaced). Generated embeddings are
kept (768 float32 each). The kernel sums are taken in float64 in blocks, never as a full matrix.

CI: bootstrap over the generated images with the reference fixed, as FID's: replicate r weighs image i
by w_ri ~ Poisson(1) from (seed, image id), and its CMMD is the weighted estimator
1000 · (k̄_xx + wᵀK_yy w / (Σw)² - 2 · 1ᵀK_xy w / (n_x Σw)); the interval is CMMD ± 1.96·sd(replicates).
``compare`` takes the two results.json intervals (``resample = None``).
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

from fpdm_bench import weights as W
from fpdm_bench.metrics.base import MetricUnavailable, SetMetric
from fpdm_bench.metrics.fid import poisson_weights

SIGMA = 10.0  # google-research cmmd/distance.py: _SIGMA
SCALE = 1000.0  # google-research cmmd/distance.py: _SCALE
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # scenic clip/model.py IMAGE_MEAN (OpenAI CLIP's)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
BLOCK = 1 << 22  # kernel entries per block (float64: 32 MiB)

#: The CLIP ViT-L/14@336 weights: a folder in the transformers layout.
CLIP_VIT_L14_336 = W.WeightSpec("clip-vit-l14-336", "clip-vit-large-patch14-336", "CMMD (CLIP ViT-L/14@336)",
                                "cmmd (a folder in the transformers layout: config.json + model.safetensors)",
                                hf_repo="openai/clip-vit-large-patch14-336")


def kernel_sums(x: np.ndarray, y: np.ndarray, wy: np.ndarray | None = None, sigma: float = SIGMA) -> np.ndarray:
    """Σ_i k(x_i, y_j) for each j as [len(y)] (``wy`` None), or [R] = Σ_j,j' w_rj k(x_j, y_j') w_rj' for
    x = y and weights ``wy`` [R, len(y)]; k the Gaussian RBF kernel, float64, in row blocks."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    xx, yy = np.einsum("ij,ij->i", x, x), np.einsum("ij,ij->i", y, y)
    gamma = 1.0 / (2.0 * sigma ** 2)
    out = np.zeros(len(y) if wy is None else len(wy))
    step = max(1, BLOCK // max(len(y), 1))
    for s in range(0, len(x), step):
        k = np.exp(-gamma * np.maximum(xx[s: s + step, None] + yy[None, :] - 2.0 * (x[s: s + step] @ y.T), 0.0))
        out += k.sum(0) if wy is None else np.einsum("rj,rj->r", wy[:, s: s + step] @ k, wy)
    return out


def mmd(x: np.ndarray, y: np.ndarray, sigma: float = SIGMA, scale: float = SCALE) -> float:
    """The paper's CMMD of embeddings x [n, d] and y [m, d] (distance.py's estimator, in float64)."""
    k_xx = kernel_sums(x, x, sigma=sigma).sum() / len(x) ** 2
    k_yy = kernel_sums(y, y, sigma=sigma).sum() / len(y) ** 2
    k_xy = kernel_sums(x, y, sigma=sigma).sum() / (len(x) * len(y))
    return float(scale * (k_xx + k_yy - 2 * k_xy))


def cmmd_preprocess(images: torch.Tensor, size: int) -> torch.Tensor:
    """[B,3,H,W] in [0,1] (8-bit values) -> [B,3,size,size] CLIP-normalised, as io_util.py and
    embedding.py prepare them: centre crop to a square, PIL bicubic to size × size, /255, mean/std."""
    from fpdm_bench.images import from_uint8, to_uint8

    out = []
    for a in to_uint8(images):
        h, w = a.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        im = Image.fromarray(a[top: top + side, left: left + side]).resize((size, size), Image.BICUBIC)
        out.append(np.asarray(im))
    x = from_uint8(np.stack(out))
    return (x - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)


class CLIPEmbeddings(nn.Module):
    """[B,3,H,W] images in [0,1] -> [B, projection_dim] L2-normalised CLIP image embeddings."""

    def __init__(self, model: nn.Module, weights_file: str | None = None, weights_sha256: str | None = None):
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.size = int(model.config.image_size)
        self.weights_file, self.weights_sha256 = weights_file, weights_sha256

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        dev = next(self.model.parameters()).device
        emb = self.model(pixel_values=cmmd_preprocess(images.cpu(), self.size).to(dev)).image_embeds.float()
        return emb / emb.norm(dim=-1, keepdim=True)

    def describe(self) -> dict:
        return {"backbone": CLIP_VIT_L14_336.name, "weights_file": self.weights_file,
                "weights_sha256": self.weights_sha256, "feature": "image_embeds, L2-normalised",
                "preprocess": f"centre crop, PIL bicubic {self.size}x{self.size}, CLIP mean/std"}


def build(path: str | Path | None = None, device="cpu") -> CLIPEmbeddings:
    """CLIP embeddings from the folder found by :func:`fpdm_bench.weights.find` (WeightsMissing if absent)."""
    return _build_cached(str(path) if path else None, str(device))


@functools.lru_cache(maxsize=2)
def _build_cached(path: str | None, device: str) -> CLIPEmbeddings:
    from transformers import AutoConfig, CLIPVisionModelWithProjection

    folder = W.find(CLIP_VIT_L14_336, path)
    config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    if config.model_type == "clip":  # the whole CLIP checkpoint (the hub repo): its vision tower + projection
        vision = config.vision_config
        vision.projection_dim = config.projection_dim
        config = vision
    model, info = CLIPVisionModelWithProjection.from_pretrained(str(folder), config=config, local_files_only=True,
                                                                output_loading_info=True)
    bad = list(info.get("missing_keys", [])) + [str(m[0]) if isinstance(m, tuple) else str(m)
                                                for m in info.get("mismatched_keys", [])]
    if bad:  # those tensors would be random: refuse rather than score with them
        raise MetricUnavailable(f"{folder}: not a CLIP vision checkpoint ({len(bad)} weights missing or of another "
                                f"shape, e.g. {bad[0]})")
    return CLIPEmbeddings(model, str(folder), W.weights_sha256(folder)).to(device)


class CMMD(SetMetric):
    """MMD of L2-normalised CLIP ViT-L/14@336 embeddings, Gaussian kernel σ = 10, × 1000 (Jayasumana et al.)."""

    name = "cmmd"
    higher_is_better = False
    weights = (CLIP_VIT_L14_336,)
    title = latex_title = "CMMD"
    order = 35  # after KID (30) and PRDC (32), before LPIPS (40)

    def __init__(self, key: str | None = None, sigma: float = SIGMA, scale: float = SCALE, replicates: int = 10,
                 seed: int = 0):
        super().__init__(key, backbone=CLIP_VIT_L14_336.name)
        self.sigma, self.scale = float(sigma), float(scale)
        self.replicates, self.seed = int(replicates), int(seed)
        self._feats: list[np.ndarray] = []
        self._ids: list[str] = []

    def build_network(self, path, device):
        return build(path, device)

    def settings(self) -> dict:
        return {"backbone": self.backbone, "sigma": self.sigma, "scale": self.scale, "replicates": self.replicates}

    def update(self, features, ids=None) -> None:
        feats = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
        start = sum(len(f) for f in self._feats)
        self._feats.append(feats)
        self._ids.extend(ids if ids is not None else [str(start + i) for i in range(len(feats))])

    def merge(self, other: "CMMD") -> None:
        self._feats.extend(other._feats)
        self._ids.extend(other._ids)

    def compute(self, reference) -> dict[str, dict]:
        """CMMD of the generated embeddings against ``reference`` (its ``kid_features``, or an array)."""
        real = np.asarray(getattr(reference, "kid_features", reference), np.float64)
        fake = np.concatenate(self._feats).astype(np.float64) if self._feats else np.zeros((0, 0))
        if len(fake) < 2 or len(real) < 2:
            raise ValueError(f"CMMD needs at least 2 images per side, got {len(fake)} generated, {len(real)} reference")
        n = len(real)
        k_xx = kernel_sums(real, real, sigma=self.sigma).sum() / n ** 2
        k_xy = kernel_sums(real, fake, sigma=self.sigma)  # [m]: Σ_i k(x_i, y_j)
        w = np.ones((1, len(fake)))
        if self.replicates >= 2:
            w = np.vstack([w, np.stack([poisson_weights(self.seed, i, self.replicates) for i in self._ids], axis=1)])
        w = w[w.sum(1) > 0]
        m = w.sum(1)
        vals = self.scale * (k_xx + kernel_sums(fake, fake, w, self.sigma) / m ** 2 - 2 * (w @ k_xy) / (n * m))
        value, ci = float(vals[0]), None
        if len(vals) > 2:
            sd = float(np.std(vals[1:], ddof=1))
            ci = [value - 1.96 * sd, value + 1.96 * sd]
        return {self.key: {"value": value, "ci95": ci, "n": len(fake), "n_reference": n, "metric": self.name,
                           "ci_method": f"normal bootstrap, {self.replicates} Poisson replicates" if ci else None}}
