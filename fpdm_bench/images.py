"""The one image decoder and the 8-bit conversions every part of the harness uses.

Policy (datasets, generated folders, run samples and reference sets alike): an image is read as
8-bit RGB. A file that is not RGB (grayscale, RGBA, palette, CMYK, 16-bit) is refused with one
message naming it, because in this field that nearly always means a wrong export; ``convert=True``
(``--convert`` on the command line) converts it to RGB instead, dropping alpha. Any decoding
problem (missing, truncated, not an image) is a DataError naming the file.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from fpdm_bench.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
_MODE_NAMES = {"L": "grayscale", "LA": "grayscale+alpha", "RGBA": "RGBA", "P": "palette", "I;16": "16-bit grayscale",
               "I": "32-bit grayscale", "CMYK": "CMYK", "1": "1-bit"}


def read_image(path: str | Path, size: tuple[int, int] | None = None, convert: bool = False) -> torch.Tensor:
    """Decode an image file to float [3, H, W] in [0, 1]; resize to size=(H, W) with PIL bicubic
    (antialiased) when given and different."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "image file not found")
    try:
        with Image.open(path) as im:
            im.load()  # full decode: a truncated file fails here, not later
            if im.mode != "RGB":
                if not convert:
                    kind = _MODE_NAMES.get(im.mode, im.mode)
                    raise DataError(path, f"is a {kind} image (mode {im.mode}), not RGB; re-export it, or pass "
                                          f"--convert to convert such images to RGB")
                im = im.convert("RGB")
            if size is not None and (im.height, im.width) != tuple(size):
                im = im.resize((size[1], size[0]), Image.BICUBIC)
            arr = np.array(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(path, f"unreadable image ({e})") from None
    return from_uint8(arr[None])[0]


def image_size(path: str | Path) -> tuple[int, int]:
    """(H, W) of an image file without decoding its pixels."""
    try:
        with Image.open(path) as im:
            return im.height, im.width
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(path, f"unreadable image ({e})") from None


def list_images(folder: str | Path) -> list[Path]:
    """Image files below folder, sorted; a DataError if it is not a folder or holds none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "not a folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(folder, f"contains no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def to_uint8(images: torch.Tensor, mode: str = "round") -> np.ndarray:
    """[B,3,H,W] in [0,1] -> uint8 [B,H,W,3]. ``round`` is what PIL/torchvision's to_pil_image and
    PNG writers do; ``truncate`` is CFLD's ``.to(torch.uint8)`` of x*255."""
    x = images.detach().float().clamp(0, 1).mul(255)
    x = x.round() if mode == "round" else x.floor()
    return x.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def from_uint8(arr: np.ndarray) -> torch.Tensor:
    """uint8 [B,H,W,3] -> float [B,3,H,W] in [0,1]."""
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float().div(255.0)


def png_bytes(arr: np.ndarray) -> bytes:
    """One uint8 [H,W,3] image as PNG file contents."""
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_round_trip(arr: np.ndarray, quality: int, subsampling: str | None = None) -> np.ndarray:
    """One uint8 [H,W,3] image saved as JPEG by PIL (``quality``; chroma ``subsampling`` such as
    "4:2:0", default PIL's) and read back as RGB uint8: what a JPEG file on disk holds."""
    buf = io.BytesIO()
    kwargs = {"subsampling": subsampling} if subsampling is not None else {}
    Image.fromarray(arr).save(buf, format="JPEG", quality=int(quality), **kwargs)
    buf.seek(0)
    with Image.open(buf) as img:
        return np.asarray(img.convert("RGB"))
