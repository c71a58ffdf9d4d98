"""Model inputs as the official FPDM code makes them (``preprocess: official`` in the stage-2 config,
``resample: pil`` in the stage-1 config).

The official code reads 8-bit images with PIL and resizes them with PIL's bicubic filter, then hands
them to transformers' image processors (``FPDM.data_load`` and ``FPDM_Dataset.__getitem__`` in
``src/diffusion/``, ``FusionDataset`` in ``src/fusion/dataset.py``):

- source, stage 2: resized to ``input_s_img_size`` (512x512) first; that image is resized again to
  the DINOv2 input (``src_encoder_size``, 512x512: no change) and to CLIP's 224x224;
- target pose, stage 2: the pre-rendered pose JPEG resized to the UNet input and to 224x224 (drawn
  by ``fpdm_bench.modeling.pose``);
- stage 1: the CLIP processor on the image as read: shortest edge to 224, centre crop 224.

The processors' arithmetic after that: ``uint8 * (1/255)`` in float64 cast to float32 (for all 256
values the same float32 as ``uint8 / 255``, what ``ToTensor`` gives), then ``(x - mean) / std`` in
float32, which the models' own normalisation does. Their resize is a no-op on an image that already
has the size (every stage-2 case); a non-square image gets the processor's geometry here
(``shortest_edge_size``, ``center_crop``). PIL's resize is ``fpdm_bench.modeling.pose.pil_bicubic``:
Pillow 10.3's result (the official pin) under any Pillow.

The models take float images in [0, 1]; the official path starts from 8 bits, so they are rounded back
to 8 bits first (exact for images that were decoded from 8-bit files, as the datasets give them).
"""
from __future__ import annotations

import numpy as np
import torch

from fpdm_bench.modeling.pose import pil_bicubic


def to_uint8(pixels: torch.Tensor) -> np.ndarray:
    """[B,3,H,W] in [0,1] -> [B,H,W,3] uint8 (round to nearest: undoes ``uint8 / 255`` exactly)."""
    x = pixels.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def to_float(images: np.ndarray, device=None) -> torch.Tensor:
    """[B,H,W,3] uint8 -> [B,3,H,W] float32 ``uint8 / 255`` (= the processors' rescale, = ``ToTensor``)."""
    out = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    return out if device is None else out.to(device)


def resize(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[B,H,W,3] uint8 -> [B,h,w,3] with PIL bicubic (``size`` = (h, w))."""
    return np.stack([pil_bicubic(im, (int(size[0]), int(size[1]))) for im in images])


def shortest_edge_size(height: int, width: int, edge: int) -> tuple[int, int]:
    """(h, w) of transformers' processor resize ``{"shortest_edge": edge}``: the short side becomes
    ``edge``, the long side ``int(edge * long / short)`` (truncated), the aspect kept."""
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(edge * long / short)
    return (new_long, edge) if width <= height else (edge, new_long)


def center_crop(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The processors' centre crop of [B,H,W,3] to (h, w) (offsets rounded down), for images at least
    that large (what a shortest-edge resize to the crop size gives)."""
    h, w = int(size[0]), int(size[1])
    H, W = images.shape[1:3]
    if H < h or W < w:
        raise ValueError(f"centre crop {(h, w)} of a {(H, W)} image: resize it first")
    top, left = (H - h) // 2, (W - w) // 2
    return images[:, top:top + h, left:left + w]


def processor_images(images: np.ndarray, size: int, crop: bool) -> np.ndarray:
    """A CLIP / BiT processor's geometry on [B,H,W,3] uint8: shortest edge to ``size`` (PIL bicubic),
    then, with ``crop``, the centre ``size`` x ``size``."""
    h, w = shortest_edge_size(images.shape[1], images.shape[2], int(size))
    out = resize(images, (h, w)) if (h, w) != images.shape[1:3] else images
    return center_crop(out, (size, size)) if crop else out


def stage2_source(pixels: torch.Tensor, source_size: tuple[int, int]) -> np.ndarray:
    """Source images [B,3,H,W] in [0,1] as the official stage 2 holds them: 8 bits, resized to
    ``source_size`` (input_s_img_size, 512x512). [B,h,w,3] uint8."""
    return resize(to_uint8(pixels), source_size)


def stage2_encoder_input(source: np.ndarray, encoder_size: tuple[int, int], device=None) -> torch.Tensor:
    """DINOv2's input in [0,1] (before normalisation) from ``stage2_source``: resized to ``encoder_size``
    (src_encoder_size), then the BiT processor's shortest-edge resize (no crop; the official code sets that
    edge to src_encoder_size[0], its width)."""
    return to_float(processor_images(resize(source, encoder_size), int(encoder_size[1]), crop=False), device)


def stage2_clip_input(source: np.ndarray, clip_size: int, device=None) -> torch.Tensor:
    """CLIP's input in [0,1] (before normalisation) from ``stage2_source``: resized to ``clip_size``
    squared, then the CLIP processor's shortest-edge resize (no crop)."""
    return to_float(processor_images(resize(source, (clip_size, clip_size)), int(clip_size), crop=False), device)
