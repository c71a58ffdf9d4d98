"""Applying a protocol's image handling: resize library/filter/antialias, 8-bit quantisation, and an
optional JPEG round trip. Images are float [B,3,H,W] in [0,1] throughout."""
from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from fpdm_bench.images import from_uint8, to_uint8
from fpdm_bench.protocols.base import Protocol

_PIL = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}


def resize(images: torch.Tensor, size: tuple[int, int], protocol: Protocol) -> torch.Tensor:
    """Resize [B,3,H,W] to size=(H, W) the way the protocol's library does it (no-op if equal)."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    h, w = size
    lib, filt = protocol.resize_library, protocol.resize_filter
    if lib == "pil":  # PIL works on 8-bit images and always antialiases when downsampling
        arr = to_uint8(images)
        out = [np.asarray(Image.fromarray(a).resize((w, h), _PIL[filt])) for a in arr]
        return from_uint8(np.stack(out))
    if lib == "torch":
        out = F.interpolate(images.float(), size=(h, w), mode=filt, align_corners=False,
                            antialias=protocol.resize_antialias)
        return out.clamp(0, 1)
    if lib == "cv2":  # PIDM resizes float32 0-255 arrays with cv2's default INTER_LINEAR (no antialias)
        import cv2

        flag = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}[filt]
        arr = images.detach().float().permute(0, 2, 3, 1).cpu().numpy() * 255.0
        out = np.stack([cv2.resize(a, (w, h), interpolation=flag) for a in arr])
        return torch.from_numpy(out).permute(0, 3, 1, 2).div(255.0).clamp(0, 1)
    raise ValueError(f"protocol {protocol.name}: unknown resize library {lib!r}")


def quantize(images: torch.Tensor, protocol: Protocol) -> torch.Tensor:
    """8-bit quantisation as the protocol's script does it (round, or CFLD's truncation)."""
    return from_uint8(to_uint8(images, protocol.quantize))


def roundtrip(images: torch.Tensor, protocol: Protocol) -> torch.Tensor:
    fmt = protocol.generated_format
    if fmt == "png":
        return images
    if fmt.startswith("jpeg"):
        quality = int(fmt.split(":")[1]) if ":" in fmt else 95
        out = []
        for a in to_uint8(images):
            buf = io.BytesIO()
            Image.fromarray(a).save(buf, format="JPEG", quality=quality)
            out.append(np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")))
        return from_uint8(np.stack(out))
    raise ValueError(f"protocol {protocol.name}: unknown generated_format {fmt!r}")


def prepare(images: torch.Tensor, protocol: Protocol, size: tuple[int, int] | None, generated: bool) -> torch.Tensor:
    """Bring images to what the protocol scores: format round trip (generated side), resize to
    ``size`` (if given and different), 8-bit quantisation."""
    if generated:
        images = roundtrip(images, protocol)
    if size is not None:
        images = resize(images, size, protocol)
    return quantize(images, protocol)
