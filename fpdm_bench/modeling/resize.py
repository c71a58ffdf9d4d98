"""Resizing a model's inputs and outputs as its official code does (PIL on 8-bit images, torch's
interpolate, or OpenCV on float arrays).

The one resize implementation: evaluation protocols resize whole images with it too
(``fpdm_bench.protocols.apply.resize_with`` is this function); it lives here so that models need
nothing from the protocol layer.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from fpdm_bench.images import from_uint8, to_uint8

LIBRARIES = ("pil", "torch", "cv2")
_PIL = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}


def resize(images: torch.Tensor, size: tuple[int, int], library: str = "pil", filter: str = "bicubic",
           antialias: bool = True) -> torch.Tensor:
    """Resize [B,3,H,W] in [0,1] to size=(H, W) the way ``library`` does it (no-op if the size is
    equal): ``pil`` quantises to 8 bits and always antialiases when downsampling; ``torch`` uses
    ``F.interpolate`` (``antialias`` as given); ``cv2`` resizes float32 0-255 arrays (no antialias,
    as PIDM does)."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    h, w = size
    if library == "pil":
        arr = to_uint8(images)
        out = [np.asarray(Image.fromarray(a).resize((w, h), _PIL[filter])) for a in arr]
        return from_uint8(np.stack(out))
    if library == "torch":
        out = F.interpolate(images.float(), size=(h, w), mode=filter, align_corners=False, antialias=antialias)
        return out.clamp(0, 1)
    if library == "cv2":
        import cv2

        flag = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}[filter]
        arr = images.detach().float().permute(0, 2, 3, 1).cpu().numpy() * 255.0
        out = np.stack([cv2.resize(a, (w, h), interpolation=flag) for a in arr])
        return torch.from_numpy(out).permute(0, 3, 1, 2).div(255.0).clamp(0, 1)
    raise ValueError(f"unknown resize library {library!r}")
