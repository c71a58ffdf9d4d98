"""FD-DINOv2: the Fréchet distance on DINOv2 ViT-L/14 features (Stein et al., NeurIPS 2023).

Stein et al. ("Exposing flaws of generative model evaluation metrics and their unfair treatment of
diffusion models") found Inception features a poor judge of modern generators and proposed the
Fréchet distance in the representation space of DINOv2 ViT-L/14. Their code (layer6ai-labs/dgm-eval,
``dgm_eval/models/dinov2.py``) feeds each image as a PIL image through ``Resize((224, 224),
BICUBIC)`` (a PIL bicubic resize of the 8-bit image, no crop), ``ToTensor`` and ImageNet
normalisation, and takes the model's output: the final-layer-normalised CLS token (1024-d).

Here the model is transformers' ``Dinov2Model`` loaded from a local folder in the transformers
layout (``facebook/dinov2-large``: config.json + model.safetensors), and the feature is its
``pooler_output`` (the layer-normalised CLS token). dgm-eval loads the torch-hub model instead; the
two implementations interpolate the position embeddings from 518 to 224 in slightly different ways,
which is not checked here (no network, no hub model). Missing weights make the metric ``n/a`` with
the folder named (``fpdm-bench weights``).

The statistics, bootstrap CI, reference cache and merging are FID's (:class:`FID`, same code).
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

from fpdm_bench import weights as W
from fpdm_bench.metrics.fid import FID
from fpdm_bench.metrics.inception import IMAGENET_MEAN, IMAGENET_STD

INPUT_SIZE = 224


def dgm_eval_preprocess(images: torch.Tensor) -> torch.Tensor:
    """[B,3,H,W] in [0,1] (8-bit values) -> [B,3,224,224] ImageNet-normalised, as dgm-eval does it:
    PIL bicubic resize of the 8-bit image to 224x224 (aspect ratio not kept), then normalise."""
    from fpdm_bench.images import from_uint8, to_uint8

    arr = to_uint8(images)
    resized = np.stack([np.asarray(Image.fromarray(a).resize((INPUT_SIZE, INPUT_SIZE), Image.BICUBIC)) for a in arr])
    x = from_uint8(resized)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


class DINOv2Features(nn.Module):
    """[B,3,H,W] images in [0,1] -> [B, hidden] CLS features of a transformers Dinov2Model."""

    def __init__(self, model: nn.Module, weights_file: str | None = None, weights_sha256: str | None = None):
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.weights_file, self.weights_sha256 = weights_file, weights_sha256

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        dev = next(self.model.parameters()).device
        x = dgm_eval_preprocess(images.cpu()).to(dev)
        return self.model(pixel_values=x).pooler_output.float()

    def describe(self) -> dict:
        return {"backbone": "dinov2", "weights_file": self.weights_file, "weights_sha256": self.weights_sha256,
                "feature": "pooler_output (layer-normalised CLS token)", "preprocess": "PIL bicubic 224x224"}


def build(path: str | Path | None = None, device="cpu") -> DINOv2Features:
    """DINOv2 features from the folder found by :func:`fpdm_bench.weights.find` (WeightsMissing if absent)."""
    return _build_cached(str(path) if path else None, str(device))


#: The DINOv2 ViT-L/14 weights: a folder in the transformers layout.
DINOV2 = W.WeightSpec("dinov2", "dinov2-large", "FD-DINOv2 (DINOv2 ViT-L/14)",
                      "fd_dinov2 (a folder in the transformers layout: config.json + model.safetensors)",
                      hf_repo="facebook/dinov2-large")


@functools.lru_cache(maxsize=2)
def _build_cached(path: str | None, device: str) -> DINOv2Features:
    from transformers import Dinov2Model

    folder = W.find(DINOV2, path)
    model = Dinov2Model.from_pretrained(str(folder), local_files_only=True)
    return DINOv2Features(model, str(folder), W.weights_sha256(folder)).to(device)


class FDDINOv2(FID):
    """Fréchet distance on DINOv2 ViT-L/14 features (Stein et al. 2023), FID's machinery."""

    name = "fd_dinov2"
    weights = (DINOV2,)
    title, latex_title = "FD-DINOv2", r"FD$_\mathrm{DINOv2}$"
    order = 20
    sweep_summary = False  # FID's, not inherited

    def __init__(self, key: str | None = None, replicates: int = 10, drop_remainder: int = 0, seed: int = 0):
        super().__init__(key, backbone="dinov2", replicates=replicates, drop_remainder=drop_remainder, seed=seed)

    def build_network(self, path, device):
        return build(path, device)
