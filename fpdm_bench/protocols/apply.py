"""Applying a protocol's image handling: resize library/filter/antialias, 8-bit quantisation, and an
optional JPEG round trip. Images are float [B,3,H,W] in [0,1] throughout."""
from __future__ import annotations

import numpy as np
import torch

from fpdm_bench.images import from_uint8, jpeg_round_trip, to_uint8
from fpdm_bench.modeling.resize import resize as resize_with  # the one resize (models use it too)
from fpdm_bench.protocols.base import Protocol


def side(protocol: Protocol, generated: bool) -> dict:
    """The resize + quantisation settings of one side: generated images, or real ones (ground
    truth and reference set), which some scripts load differently (CFLD: PIL for real images)."""
    gen = {"library": protocol.resize_library, "filter": protocol.resize_filter,
           "antialias": protocol.resize_antialias, "quantize": protocol.quantize}
    return gen if generated or not protocol.real_resize else {**gen, **protocol.real_resize}


def resize(images: torch.Tensor, size: tuple[int, int], protocol: Protocol, generated: bool = True) -> torch.Tensor:
    """Resize as the protocol does it for generated (or real) images."""
    s = side(protocol, generated)
    return resize_with(images, size, s["library"], s["filter"], s["antialias"])


def quantize_with(images: torch.Tensor, mode: str) -> torch.Tensor:
    """8-bit quantisation: "round" (PIL/PNG), "truncate" (CFLD's .to(uint8)), "none" (PIDM's float path)."""
    return images if mode == "none" else from_uint8(to_uint8(images, mode))


def roundtrip(images: torch.Tensor, protocol: Protocol) -> torch.Tensor:
    fmt = protocol.generated_format
    if fmt == "png":
        return images
    if fmt.startswith("jpeg"):
        quality = int(fmt.split(":")[1]) if ":" in fmt else 95
        return from_uint8(np.stack([jpeg_round_trip(a, quality) for a in to_uint8(images)]))
    raise ValueError(f"protocol {protocol.name}: unknown generated_format {fmt!r}")


def prepare(images: torch.Tensor, protocol: Protocol, size: tuple[int, int] | None, generated: bool) -> torch.Tensor:
    """Bring images to what the protocol scores: format round trip (generated side), resize to
    ``size`` (if given and different), 8-bit quantisation — each with the side's settings."""
    if generated:
        images = roundtrip(images, protocol)
    s = side(protocol, generated)
    if size is not None:
        images = resize_with(images, size, s["library"], s["filter"], s["antialias"])
    return quantize_with(images, s["quantize"])


def apply_view(images: torch.Tensor, view: dict | None) -> torch.Tensor:
    """A metric's own view of the prepared images (PIDM's FID/LPIPS: cv2 bilinear to 176x256 as
    float32, no rounding): ``{"size": [H, W], "library", "filter", "antialias", "quantize"}``."""
    if not view:
        return images
    out = resize_with(images, tuple(view["size"]), view.get("library", "pil"), view.get("filter", "bicubic"),
                      view.get("antialias", True))
    return quantize_with(out, view.get("quantize", "round"))


def check_resolution(paths, protocol: Protocol, allow_upsampled: bool, what: str) -> dict:
    """The native sizes of the real images a protocol resizes to its evaluation size. Scoring at a
    size larger than the files would compare against upsampled ground truth (a 512x352 protocol fed
    256x176 files), so that is refused unless ``allow_upsampled``. Returns {"HxW": count, ...,
    "upsampled": n} for results.json."""
    from fpdm_bench.errors import DataError
    from fpdm_bench.images import image_size

    h, w = protocol.eval_size
    sizes: dict[str, int] = {}
    small = []
    for p in paths:
        ph, pw = image_size(p)
        sizes[f"{ph}x{pw}"] = sizes.get(f"{ph}x{pw}", 0) + 1
        if ph < h or pw < w:
            small.append((p, ph, pw))
    if small and not allow_upsampled:
        p, ph, pw = small[0]
        raise DataError(p, f"is {ph}x{pw}, smaller than protocol {protocol.name}'s evaluation size {h}x{w} "
                           f"({len(small)} of {len(paths)} {what} images are): scoring would upsample them. Point "
                           f"--data-root at the high-resolution originals (DeepFashion img_highres, 750x1101), or "
                           f"pass --allow-upsampled to score anyway (results.json records it)")
    return {"sizes": sizes, "resized_to": f"{h}x{w}", "upsampled": len(small)}
