"""OpenPose-style skeleton images: the pose input of both FPDM stages.

A pose is float [K, 2] (x, y) in pixels of the image it belongs to, NaN = missing (see
``fpdm_bench.data.keypoints``). It is drawn as coloured limbs and joints on black, the picture
OpenPose/ControlNet-style models are trained on:

- K = 18: COCO-18 / OpenPose order, limbs from ``COCO18_LIMBS``.
- K = 133: COCO-WholeBody (0-16 body in COCO-17 order, 17-22 feet, 23-90 face, 91-111 left hand,
  112-132 right hand). The body is mapped to COCO-18 (neck = mid-shoulders, as OpenPose defines
  it) and drawn like K = 18; both hands get their finger chains; face points are small white dots.

Drawing uses OpenCV with sub-pixel coordinates and hard (not anti-aliased) edges, as OpenPose's
own drawing does, and no randomness: the same keypoints always give the same bytes.

Two styles, chosen per config (``pose_render.style``, see ``PoseStyle``):

- ``bench`` (default; what the shipped tiny checkpoint was trained with): ``render_skeleton`` in the
  keypoints' own frame, strokes proportional to the frame, nominal OpenPose colours.
- ``fpdm_official``: the drawing of the official FPDM code (dhlee-work/FPDM,
  ``src/fusion/datautil.py`` ``ProcessingKeypoints.draw_img``), reproduced pixel for pixel
  (``render_skeleton_fpdm``): joints first (radius 4), then 17 of the 19 limb pairs as ellipses of
  half-width 4 each blended at alpha 0.6, on a canvas of fixed size (the strokes do not scale with
  it) whose colours come out channel-reversed (drawn as BGR, converted BGR->RGB); optionally a JPEG
  round trip (the pre-rendered ``pose_img`` files), then a PIL bicubic resize to the model input.
"""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from PIL import Image

from fpdm_bench.data.keypoints import COCO18_LIMBS, WHOLEBODY133
from fpdm_bench.images import jpeg_round_trip

# One colour per joint / limb: a hue wheel in 18 steps of 20 degrees (the OpenPose palette: (255, 0, 0),
# (255, 85, 0), (255, 170, 0), ...), shared by every OpenPose-style drawing (FPDM, PIDM, CFLD).
OPENPOSE_COLOURS = [tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(i / 18.0, 1.0, 1.0))
                    for i in range(18)]

# COCO-17 (WholeBody body part) index for each COCO-18 joint; the neck (1) has none, it is derived.
_COCO17_FOR_COCO18 = [0, None, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3]

# A 21-point hand: wrist 0, then four joints per finger (thumb 1-4 ... little 17-20).
_HAND_LIMBS = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10),
               (10, 11), (11, 12), (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18),
               (18, 19), (19, 20)]
_HAND_COLOURS = [tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(i / len(_HAND_LIMBS), 1.0, 1.0))
                 for i in range(len(_HAND_LIMBS))]
_WB_FACE = slice(23, 91)
_WB_LEFT_HAND = slice(91, 112)
_WB_RIGHT_HAND = slice(112, 133)


def stroke_width(size: tuple[int, int]) -> float:
    """Limb thickness in pixels: 4 px at 256 px (the OpenPose look), proportional to the image, >= 1."""
    return max(1.0, min(size) * 4 / 256)


def wholebody_to_coco18(kp: np.ndarray) -> np.ndarray:
    """COCO-WholeBody [133, 2] -> COCO-18 [18, 2]; the neck is the mid-point of the shoulders."""
    out = np.full((18, 2), np.nan, np.float32)
    for j18, j17 in enumerate(_COCO17_FOR_COCO18):
        if j17 is not None:
            out[j18] = kp[j17]
    out[1] = (kp[5] + kp[6]) / 2  # NaN if either shoulder is missing
    return out


def body_keypoints(kp: np.ndarray) -> np.ndarray:
    """The COCO-18 body [18, 2] of a pose of 18 points or of 133 (COCO-WholeBody, reduced as
    ``wholebody_to_coco18``); ValueError for another count."""
    kp = np.asarray(kp)
    if kp.ndim != 2 or kp.shape[1] != 2:
        raise ValueError(f"keypoints must be [K, 2], got shape {kp.shape}")
    if kp.shape[0] == WHOLEBODY133:
        return wholebody_to_coco18(kp)
    if kp.shape[0] != 18:
        raise ValueError(f"unsupported keypoint count {kp.shape[0]} (expected 18 or {WHOLEBODY133})")
    return kp


_SHIFT = 4  # OpenCV fixed-point bits: sub-pixel geometry, so widths scale smoothly with size
_ONE = 1 << _SHIFT


def _ok(p: np.ndarray) -> bool:
    return bool(np.isfinite(p).all())


def _fixed(xy) -> np.ndarray:
    return np.round(np.asarray(xy, np.float64) * _ONE).astype(np.int32)


def _draw_limbs(canvas, kp, limbs, colours, width: float):
    """Each limb is a filled band of `width` px between its two joints (OpenPose draws ellipses)."""
    for (a, b), colour in zip(limbs, colours):
        if not (_ok(kp[a]) and _ok(kp[b])):
            continue
        pa, pb = kp[a].astype(np.float64), kp[b].astype(np.float64)
        d = pb - pa
        length = float(np.hypot(*d))
        if length < 1e-6:
            continue
        n = np.array([-d[1], d[0]]) / length * (width / 2)
        quad = _fixed([pa + n, pb + n, pb - n, pa - n])
        cv2.fillConvexPoly(canvas, quad, colour, lineType=cv2.LINE_8, shift=_SHIFT)


def _draw_joints(canvas, kp, colours, radius: float):
    for p, colour in zip(kp, colours):
        if _ok(p):
            cv2.circle(canvas, tuple(int(v) for v in _fixed(p)), int(round(radius * _ONE)), colour,
                       thickness=-1, lineType=cv2.LINE_8, shift=_SHIFT)


def render_skeleton(kp: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Draw one pose as an RGB skeleton on black.

    kp: [K, 2] (x, y) pixels, NaN = missing, K = 18 (COCO-18) or 133 (COCO-WholeBody).
    size: (H, W) of the image. Returns uint8 [H, W, 3]. Missing points and limbs touching them are
    skipped; points outside the frame are clipped by the drawing, not moved.
    """
    kp = np.asarray(kp, dtype=np.float32)
    body = body_keypoints(kp)
    wholebody = kp if kp.shape[0] == WHOLEBODY133 else None
    h, w = int(size[0]), int(size[1])
    canvas = np.zeros((h, w, 3), np.uint8)
    width = stroke_width((h, w))

    # Limbs first, then joints on top, as OpenPose draws them.
    _draw_limbs(canvas, body, COCO18_LIMBS, OPENPOSE_COLOURS, width)
    _draw_joints(canvas, body, OPENPOSE_COLOURS, width * 0.75)
    if wholebody is not None:
        hand_width = max(1.0, width / 2)
        for hand in (wholebody[_WB_LEFT_HAND], wholebody[_WB_RIGHT_HAND]):
            _draw_limbs(canvas, hand, _HAND_LIMBS, _HAND_COLOURS, hand_width)
            _draw_joints(canvas, hand, [(0, 0, 255)] * len(hand), hand_width * 0.75)
        face_radius = max(0.75, width / 3)
        _draw_joints(canvas, wholebody[_WB_FACE], [(255, 255, 255)] * 68, face_radius)
    return canvas


def render_batch(kps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Render a batch of poses [B, K, 2] to float [B, 3, H, W] in [0, 1] (on the keypoints' device)."""
    arr = kps.detach().float().cpu().numpy()
    imgs = np.stack([render_skeleton(k, size) for k in arr]) if len(arr) else np.zeros((0, size[0], size[1], 3), np.uint8)
    return torch.from_numpy(imgs).permute(0, 3, 1, 2).float().div_(255.0).to(kps.device)


# --- the official FPDM drawing ------------------------------------------------------------------

POSE_STYLES = ("bench", "fpdm_official")
FPDM_STICKWIDTH = 4  # half-width of each limb ellipse, px on the canvas (fixed, whatever the canvas)
FPDM_JOINT_RADIUS = 4  # px on the canvas (fixed)
FPDM_LIMBS = COCO18_LIMBS  # the first 17 of OpenPose's 19 pairs, in the same order and direction
FPDM_ALPHA = 0.6  # each limb: canvas = 0.4 * canvas + 0.6 * (canvas with the limb filled in)
# The official canvas is drawn with the OpenPose colour list and then read as BGR (cv2.cvtColor
# BGR->RGB), so in the RGB output every colour has red and blue swapped: joint/limb 0 is blue.
_FPDM_DRAW_COLOURS = [list(c) for c in OPENPOSE_COLOURS]  # as passed to OpenCV on the "BGR" canvas


def fpdm_canvas_keypoints(kp: np.ndarray, frame: tuple[int, int], canvas: tuple[int, int] | None) -> np.ndarray:
    """COCO-18 points [18, 2] (x, y) in a `frame` (H, W), NaN = missing -> float64 points on the
    `canvas` (H, W) with -1 for missing, the official convention.

    The scale is computed as the official ``trans_keypoins`` does (``1.0 / frame_w * canvas_w``,
    float64, even when the canvas is the frame: 1.0 / w * w is not always 1), so the drawn integer
    pixel positions are the official ones. canvas None = no scaling.
    (Officially -1 marks a missing value in the pose files, which the dataset loaders turn into NaN;
    a real point that lands exactly on -1 on the canvas is skipped, as the official code skips it.)
    """
    kp = np.asarray(kp, np.float32)
    if kp.shape != (18, 2):
        raise ValueError(f"the official FPDM skeleton needs COCO-18 keypoints [18, 2], got shape {kp.shape}")
    out = kp.astype(np.float64)
    missing = ~np.isfinite(out).all(axis=1)
    if canvas is not None:
        fh, fw = frame
        ch, cw = canvas
        out[:, 0] = out[:, 0] * (1.0 / fw * cw)
        out[:, 1] = out[:, 1] * (1.0 / fh * ch)
    out[missing] = -1
    return out


def fpdm_limb_polygon(ends: np.ndarray, stickwidth: int = FPDM_STICKWIDTH) -> np.ndarray:
    """The polygon of one limb between canvas points ends [2, 2] (x, y), as the official OpenPose-style
    drawing of FPDM and PIDM makes it: ``cv2.ellipse2Poly(centre, (int(length / 2), stickwidth),
    int(angle in degrees), 0, 360, 1)``, with the same float operations, so int() truncates the same
    values."""
    xs, ys = ends[:, 0], ends[:, 1]
    length = ((ys[0] - ys[1]) ** 2 + (xs[0] - xs[1]) ** 2) ** 0.5
    angle = math.degrees(math.atan2(ys[0] - ys[1], xs[0] - xs[1]))
    return cv2.ellipse2Poly((int(np.mean(xs)), int(np.mean(ys))), (int(length / 2), int(stickwidth)),
                            int(angle), 0, 360, 1)


def draw_fpdm_skeleton(canvas_kp: np.ndarray, canvas: tuple[int, int], stickwidth: int = FPDM_STICKWIDTH) -> np.ndarray:
    """The official FPDM skeleton of canvas points [18, 2] (-1 = missing): RGB uint8 [H, W, 3].

    Rules (all the official code's): a joint is skipped when its x or y is -1, a limb when any
    coordinate of either end is -1; positions are truncated with int(); each limb is the polygon of
    ``cv2.ellipse2Poly(centre, (int(length / 2), stickwidth), int(angle in degrees), 0, 360, 1)``.
    """
    pts = np.asarray(canvas_kp, np.float64)
    h, w = int(canvas[0]), int(canvas[1])
    img = np.zeros((h, w, 3), np.uint8)
    for (x, y), colour in zip(pts, _FPDM_DRAW_COLOURS):
        if x == -1 or y == -1:
            continue
        cv2.circle(img, (int(x), int(y)), FPDM_JOINT_RADIUS, colour, thickness=-1)
    for (a, b), colour in zip(FPDM_LIMBS, _FPDM_DRAW_COLOURS):
        ends = pts[[a, b]]
        if (ends == -1).any():
            continue
        poly = fpdm_limb_polygon(ends, stickwidth)
        # Officially the whole canvas is copied, the limb filled into the copy and the two blended.
        # Blending a pixel with itself gives it back (0.4 v + 0.6 v rounds to v for every uint8 v),
        # so only the limb's bounding box (+ a margin, clipped to the canvas) is blended here: the
        # same pixels, ~5x less work on a 1101x750 canvas.
        bx, by, bw, bh = cv2.boundingRect(poly)
        x0, y0 = max(bx - 2, 0), max(by - 2, 0)
        x1, y1 = min(bx + bw + 2, w), min(by + bh + 2, h)
        if x1 <= x0 or y1 <= y0:
            continue  # entirely off the canvas: the official blend changes nothing
        roi = img[y0:y1, x0:x1]
        limb = roi.copy()
        cv2.fillConvexPoly(limb, poly - np.array([x0, y0], poly.dtype), colour)
        img[y0:y1, x0:x1] = cv2.addWeighted(roi, 1.0 - FPDM_ALPHA, limb, FPDM_ALPHA, 0)
    return np.ascontiguousarray(img[..., ::-1])  # the BGR -> RGB conversion of the official code


def pil_bicubic(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """RGB uint8 -> (H, W) with PIL's bicubic resize as Pillow 10.3 (the official pin) computes it.

    Pillow resizes in two 8-bit passes. 10.3 always runs the horizontal pass first; later releases
    (13.0 here) pick the order, and since each pass rounds to 8 bits the other order moves values by
    up to ~20 levels (measured on 256x176 -> 224x224 and 1101x750 -> 512x512). Two single-axis resizes,
    width first, give 10.3's result under any Pillow (each runs exactly one pass with the same weights).
    """
    h, w = int(size[0]), int(size[1])
    if img.shape[:2] == (h, w):
        return img
    out = Image.fromarray(img)
    if out.width != w:
        out = out.resize((w, out.height), Image.BICUBIC)
    if out.height != h:
        out = out.resize((w, h), Image.BICUBIC)
    return np.asarray(out)


def render_skeleton_fpdm(kp: np.ndarray, frame: tuple[int, int], canvas: tuple[int, int] | None = None,
                         jpeg_quality: int | None = None) -> np.ndarray:
    """One pose ([18, 2] pixels of `frame`, NaN = missing) drawn as the official FPDM code draws it,
    on `canvas` (H, W; None = the frame), with an optional JPEG round trip. RGB uint8 at the canvas size."""
    pts = fpdm_canvas_keypoints(kp, tuple(frame), None if canvas is None else tuple(canvas))
    img = draw_fpdm_skeleton(pts, tuple(int(v) for v in (canvas or frame)))
    return jpeg_round_trip(img, jpeg_quality) if jpeg_quality else img


@dataclass(frozen=True)
class PoseStyle:
    """How a stage draws its pose images (config section ``pose_render``; absent = ``bench``).

    style: 'bench' (``render_skeleton`` in the keypoints' frame, then the model's own resize) or
    'fpdm_official' (``render_skeleton_fpdm`` on ``canvas``, optional JPEG round trip, then a PIL
    bicubic resize to the model input). canvas: (H, W) the official style draws at (None = the
    keypoints' frame). jpeg_quality: JPEG round trip after drawing (None = none).
    A ``train`` sub-section overrides canvas / jpeg_quality while training (official stage 2 draws its
    training poses on the fly on a 550x375 canvas but reads pre-rendered 1101x750 JPEGs otherwise).
    """

    style: str = "bench"
    canvas: tuple[int, int] | None = None
    jpeg_quality: int | None = None

    @property
    def official(self) -> bool:
        return self.style == "fpdm_official"

    @classmethod
    def from_config(cls, cfg: dict | None, train: bool = False, where: str = "pose_render") -> "PoseStyle":
        cfg = dict(cfg or {})
        over = cfg.pop("train", None) or {}
        if not isinstance(over, dict):
            raise ValueError(f"{where}.train must be a mapping, not {over!r}")
        unknown = (set(cfg) - {"style", "canvas", "jpeg_quality"}) | (set(over) - {"canvas", "jpeg_quality"})
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}")
        if train:
            cfg.update(over)
        style = cfg.get("style", "bench")
        if style not in POSE_STYLES:
            raise ValueError(f"{where}.style must be one of {POSE_STYLES}, not {style!r}")
        canvas = cfg.get("canvas")
        if canvas is not None:
            if len(canvas) != 2 or min(int(v) for v in canvas) < 1:
                raise ValueError(f"{where}.canvas must be [H, W], not {canvas!r}")
            canvas = (int(canvas[0]), int(canvas[1]))
        q = cfg.get("jpeg_quality")
        if q is not None and not 1 <= int(q) <= 100:
            raise ValueError(f"{where}.jpeg_quality must be 1..100 or null, not {q!r}")
        if style == "bench" and (canvas is not None or q is not None):
            raise ValueError(f"{where}: canvas / jpeg_quality apply to the 'fpdm_official' style only")
        return cls(style, canvas, None if q is None else int(q))


def render_batch_fpdm(kps: torch.Tensor, frame: tuple[int, int], size: tuple[int, int], style: PoseStyle) -> torch.Tensor:
    """Official-style pose images of poses [B, 18, 2] (pixels of `frame`) at `size` (H, W): float
    [B, 3, H, W] in [0, 1] on the keypoints' device (uint8 / 255, as ``ToTensor`` gives)."""
    arr = kps.detach().float().cpu().numpy()
    h, w = int(size[0]), int(size[1])
    imgs = [pil_bicubic(render_skeleton_fpdm(k, frame, style.canvas, style.jpeg_quality), (h, w)) for k in arr]
    out = np.stack(imgs) if imgs else np.zeros((0, h, w, 3), np.uint8)
    return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0).to(kps.device)
