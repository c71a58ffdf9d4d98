"""Pose fidelity: detect the pose on the generated image and compare it with the target keypoints.

The detector is MediaPipe Pose (BlazePose, 33 landmarks) from ``mediapipe==0.10.21``, whose wheel
bundles the landmark model (``pose_landmark_full.tflite``, model complexity 1), so it runs offline.
Newer mediapipe releases have no ``solutions`` module and ship no model. It is an optional extra
(``pip install 'fpdm-bench[pose]'``) because 0.10.21 needs numpy<2; mediapipe is imported only when
a detection is asked for, so this module imports without it.

Per image (``PoseFidelity.per_sample``; the registered metric is ``pose``, its results are the keys
below):

- the 33 landmarks are mapped onto the dataset's keypoint order (COCO-18: neck = mid-shoulders,
  needing both shoulders; COCO-WholeBody: body points 0-16 only). A landmark counts as detected
  when its visibility is at least ``min_visibility`` and it lies inside the image (the targets mark
  out-of-frame points missing too).
- ``pckh``: of the keypoints both the target and the detection define, the fraction within the
  head-size tolerance of the target (0 when none are compared). Tolerance, as in the PCKh scripts of PATN/GFLA that the
  pose-transfer papers use: the box of the target's head points (nose, neck, eyes, ears; at least
  two needed) gives (w, h), and a point is right when |dx| < 0.5 w and |dy| < 0.5 h.
- ``pckh_target``: the same count of right points divided by all keypoints the target defines, so a
  point the detector misses counts as wrong (the PATN/GFLA denominator).
- ``pose_dist``: mean Euclidean distance over the compared keypoints, divided by the diagonal of
  the bounding box of the target's keypoints (a size that exists for every pose, unlike the torso,
  whose hips may be out of frame).
- ``pose_n`` (keypoints compared), ``pose_n_target`` (keypoints the target defines),
  ``pose_detected`` (1 if the detector found a person).

An image where no person is detected gets ``pckh = pckh_target = 0`` (the pose was not reproduced
well enough to be found) and ``pose_dist = NaN`` (no distance exists); the detection rate is
reported next to them, so a model is not rewarded for images the detector skips. ``pckh`` and
``pckh_target`` are NaN when the target's head size is undefined (fewer than two head points, or a
degenerate box), as the reference scripts skip such images. ``pose_dist`` is NaN when nothing was
compared. NaN values are left out of means (``metrics.bootstrap.mean_ci95`` drops them).

Detection uses MediaPipe's static-image mode (every image on its own, no tracking), so results do
not depend on batch order; the same image gives the same landmarks.

BlazePose is trained on photographs. On the embedded synthetic figures it is weak: the oracle
(target images against their own keypoints, 240 test pairs) was detected in 41 % of images with
PCKh 0.197, against keypoint-warp 0.128 and copy-source 0.056 (an earlier version of the set: front
views 0.70 detected, back views 0.25). It separates the floors but is far from saturating; read it
as a coarse signal there.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch

from fpdm_bench.metrics.base import MetricUnavailable, PairedMetric

INSTALL_HINT = "pip install 'fpdm-bench[pose]' in its own venv: it needs numpy<2, see docs/protocols-and-metrics.md, 'Pose fidelity'"
MEDIAPIPE_VERSION = "0.10.21"

# MediaPipe Pose landmark indices (BlazePose topology). Left/right are the person's own sides, as
# in COCO and OpenPose.
MP = {
    "nose": 0, "l_eye": 2, "r_eye": 5, "l_ear": 7, "r_ear": 8,
    "l_shoulder": 11, "r_shoulder": 12, "l_elbow": 13, "r_elbow": 14, "l_wrist": 15, "r_wrist": 16,
    "l_hip": 23, "r_hip": 24, "l_knee": 25, "r_knee": 26, "l_ankle": 27, "r_ankle": 28,
}
MP_NUM_LANDMARKS = 33
NECK = -1  # marker: mid-point of the two shoulders

# For each point of a keypoint format, the MediaPipe landmark it comes from.
# COCO-18 / OpenPose order (fpdm_bench.data.keypoints.COCO18_NAMES).
MP_TO_COCO18 = [
    MP["nose"], NECK, MP["r_shoulder"], MP["r_elbow"], MP["r_wrist"], MP["l_shoulder"], MP["l_elbow"],
    MP["l_wrist"], MP["r_hip"], MP["r_knee"], MP["r_ankle"], MP["l_hip"], MP["l_knee"], MP["l_ankle"],
    MP["r_eye"], MP["l_eye"], MP["r_ear"], MP["l_ear"],
]
# COCO-17 order, which is also COCO-WholeBody's body points 0-16.
MP_TO_COCO17 = [
    MP["nose"], MP["l_eye"], MP["r_eye"], MP["l_ear"], MP["r_ear"], MP["l_shoulder"], MP["r_shoulder"],
    MP["l_elbow"], MP["r_elbow"], MP["l_wrist"], MP["r_wrist"], MP["l_hip"], MP["r_hip"], MP["l_knee"],
    MP["r_knee"], MP["l_ankle"], MP["r_ankle"],
]


@dataclass(frozen=True)
class KeypointFormat:
    """How to compare a dataset's keypoints: which of its points the detector gives, and the head."""

    name: str
    num_points: int         # K of the dataset's poses
    mapping: list[int]      # MediaPipe landmark (or NECK) for points 0..len(mapping)-1
    head: list[int]         # points whose box defines the PCKh head size
    shoulders: tuple[int, int] | None  # (right, left) points, to derive a neck for the head box


FORMATS = {
    "coco18": KeypointFormat("coco18", 18, MP_TO_COCO18, head=[0, 1, 14, 15, 16, 17], shoulders=None),
    "coco17": KeypointFormat("coco17", 17, MP_TO_COCO17, head=[0, 1, 2, 3, 4], shoulders=(6, 5)),
    "wholebody133": KeypointFormat("wholebody133", 133, MP_TO_COCO17, head=[0, 1, 2, 3, 4], shoulders=(6, 5)),
}
_BY_K = {f.num_points: f.name for f in FORMATS.values()}


def lookup_format(name: str, num_points: int | None = None) -> KeypointFormat:
    """Look up a format by name; ``"auto"`` picks it from the number of points (18, 17 or 133)."""
    if name == "auto":
        if num_points not in _BY_K:
            raise ValueError(f"cannot tell the keypoint format of poses with {num_points} points; "
                             f"pass one of {sorted(FORMATS)}")
        name = _BY_K[num_points]
    if name not in FORMATS:
        raise ValueError(f"unknown keypoint format {name!r}; known: {sorted(FORMATS)}")
    fmt = FORMATS[name]
    if num_points is not None and num_points != fmt.num_points:
        raise ValueError(f"keypoint format {name!r} has {fmt.num_points} points, the poses have {num_points}")
    return fmt


def landmarks_to_format(landmarks: np.ndarray, fmt: KeypointFormat | str) -> np.ndarray:
    """MediaPipe landmarks [33, 2] (x, y in pixels, NaN = not detected) -> the format's [K, 2].

    Points the detector does not give (COCO-WholeBody feet, face, hands) are NaN. The neck is the
    mid-point of the shoulders and is NaN unless both are detected.
    """
    if isinstance(fmt, str):
        fmt = lookup_format(fmt)
    landmarks = np.asarray(landmarks, np.float32)
    if landmarks.shape != (MP_NUM_LANDMARKS, 2):
        raise ValueError(f"expected landmarks of shape (33, 2), got {tuple(landmarks.shape)}")
    out = np.full((fmt.num_points, 2), np.nan, np.float32)
    for k, src in enumerate(fmt.mapping):
        if src == NECK:
            # NaN propagates: a missing shoulder gives a missing neck
            out[k] = (landmarks[MP["r_shoulder"]] + landmarks[MP["l_shoulder"]]) / 2
        else:
            out[k] = landmarks[src]
    return out


def head_size(target: np.ndarray, fmt: KeypointFormat | str) -> tuple[float, float] | None:
    """(w, h) of the box around the target's head points, or None when undefined.

    Needs at least two head points and a box with positive width and height. For COCO-17/WholeBody,
    which have no neck point, the mid-shoulder point joins the head points, matching COCO-18.
    """
    if isinstance(fmt, str):
        fmt = lookup_format(fmt)
    pts = [target[i] for i in fmt.head]
    if fmt.shoulders is not None:
        pts.append((target[fmt.shoulders[0]] + target[fmt.shoulders[1]]) / 2)
    pts = np.array([p for p in pts if np.isfinite(p).all()], np.float64).reshape(-1, 2)
    if len(pts) < 2:
        return None
    w, h = pts.max(axis=0) - pts.min(axis=0)
    if w <= 0 or h <= 0:
        return None
    return float(w), float(h)


def compare_pose(detected: np.ndarray | None, target: np.ndarray, fmt: KeypointFormat | str,
                 alpha: float = 0.5) -> dict[str, float]:
    """Pose-fidelity values for one image: detected [K, 2] (None = no person found) vs target [K, 2].

    Both in the same pixel frame, NaN = missing. Returns ``pckh``, ``pckh_target``, ``pose_dist``,
    ``pose_n``, ``pose_n_target``, ``pose_detected`` as described in the module docstring.
    """
    if isinstance(fmt, str):
        fmt = lookup_format(fmt)
    target = np.asarray(target, np.float64)
    if target.shape != (fmt.num_points, 2):
        raise ValueError(f"target keypoints must be ({fmt.num_points}, 2) for {fmt.name}, got {target.shape}")
    # only the points the detector can give take part (WholeBody: body 0-16)
    target = target[: len(fmt.mapping)]
    tgt_ok = np.isfinite(target).all(axis=1)
    n_target = int(tgt_ok.sum())
    head = head_size(target, fmt)
    nan = float("nan")
    if detected is None:
        zero = 0.0 if head is not None and n_target else nan
        return {"pckh": zero, "pckh_target": zero, "pose_dist": nan, "pose_n": 0,
                "pose_n_target": n_target, "pose_detected": 0}
    det = np.asarray(detected, np.float64)[: len(fmt.mapping)]
    both = tgt_ok & np.isfinite(det).all(axis=1)
    n = int(both.sum())
    d = det[both] - target[both]
    if n:
        lo, hi = target[tgt_ok].min(axis=0), target[tgt_ok].max(axis=0)
        diag = float(np.hypot(*(hi - lo)))
        pose_dist = float(np.hypot(d[:, 0], d[:, 1]).mean() / diag) if diag > 0 else nan
    else:
        pose_dist = nan
    if head is None:
        pckh = pckh_target = nan
    else:
        right = int(((np.abs(d[:, 0]) < alpha * head[0]) & (np.abs(d[:, 1]) < alpha * head[1])).sum())
        pckh = right / n if n else 0.0
        pckh_target = right / n_target if n_target else nan
    return {"pckh": pckh, "pckh_target": pckh_target, "pose_dist": pose_dist, "pose_n": n,
            "pose_n_target": n_target, "pose_detected": 1}


def available() -> tuple[bool, str]:
    """Whether the detector can run here, and if not, a one-line reason with the fix."""
    try:
        mp_pose = _import_pose_solution()
    except ImportError as e:
        return False, str(e)
    model = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(mp_pose.__file__))),
                         "modules", "pose_landmark", "pose_landmark_full.tflite")
    if not os.path.exists(model):
        return False, f"pose fidelity unavailable: {model} missing (reinstall: {INSTALL_HINT})"
    return True, ""


def _import_pose_solution():
    """Import ``mediapipe.solutions.pose`` or raise ImportError with the reason the metric reports."""
    # MediaPipe's C++ logging (glog/absl) writes several lines per graph to stderr; keep warnings.
    os.environ.setdefault("GLOG_minloglevel", "2")
    try:
        import mediapipe as mp
    except ImportError:
        raise ImportError(f"pose fidelity unavailable: mediapipe not installed ({INSTALL_HINT})") from None
    try:
        from mediapipe.python.solutions import pose as mp_pose
    except ImportError:
        raise ImportError(f"pose fidelity unavailable: mediapipe {getattr(mp, '__version__', '?')} has no "
                          f"solutions.pose (needs mediapipe=={MEDIAPIPE_VERSION}: {INSTALL_HINT})") from None
    return mp_pose


class PoseFidelity(PairedMetric):
    """Pose fidelity: MediaPipe keypoints on the generated image vs the target pose (PCKh, distance).

    Args:
        min_visibility: a landmark counts only if MediaPipe's visibility is at least this.
        min_detection_confidence: person-detector threshold (MediaPipe's default 0.5).
        min_side: images whose shorter side is below this are upscaled (bicubic) before detection;
            landmarks are mapped back to the input frame. Generated images are small (176 px wide).
        pad: border added on every side before detection, as a fraction of the (upscaled) image
            height, by repeating the edge pixels; landmarks are mapped back. Off by default: on the
            embedded synthetic set a 0.25 margin raised the detection rate (0.42 -> 0.50) but the
            extra detections were wrong (oracle PCKh 0.24 -> 0.21, distance 0.10 -> 0.18).
        alpha: PCKh threshold factor (0.5 = PCKh@0.5).
    """

    name = "pose"
    frame = "batch"  # detects on the image as generated, in the frame of the batch's keypoints
    outputs = {"pckh": True, "pckh_target": True, "pose_dist": False, "pose_detected": True,
               "pose_n": True, "pose_n_target": True}
    hidden_outputs = ("pose_n", "pose_n_target")  # counts behind the means: in results.json, not in tables
    key_titles = {"pckh": ("PCKh", "PCKh"), "pckh_target": ("PCKh tgt", r"PCKh$_\mathrm{tgt}$"),
                  "pose_dist": ("pose dist", "pose dist."), "pose_detected": ("pose det.", "pose det.")}
    order = 90

    def __init__(self, key: str | None = None, min_visibility: float = 0.5, min_detection_confidence: float = 0.5,
                 min_side: int = 256, pad: float = 0.0, alpha: float = 0.5, drop_remainder: int = 0):
        super().__init__(key, drop_remainder)
        self.min_visibility = float(min_visibility)
        self.min_detection_confidence = float(min_detection_confidence)
        self.min_side = int(min_side)
        self.pad = float(pad)
        self.alpha = float(alpha)
        self._pose = None

    available = staticmethod(available)

    def setup(self, ctx) -> None:
        ok, reason = available()
        if not ok:
            raise MetricUnavailable(reason)

    def settings(self) -> dict:
        """The settings that determine the numbers (for results.json)."""
        return {"detector": f"mediapipe {MEDIAPIPE_VERSION} pose_landmark_full (static image mode)",
                "min_visibility": self.min_visibility, "min_detection_confidence": self.min_detection_confidence,
                "min_side": self.min_side, "pad": self.pad, "alpha": self.alpha,
                "head_size": "box of target head points (PATN/GFLA PCKh)",
                "pose_dist_norm": "diagonal of the target keypoints' box"}

    def _detector(self):
        if self._pose is None:
            mp_pose = _import_pose_solution()
            # model_complexity=1 is the landmark model the wheel bundles (0 and 2 are downloaded)
            self._pose = mp_pose.Pose(static_image_mode=True, model_complexity=1, smooth_landmarks=False,
                                      enable_segmentation=False,
                                      min_detection_confidence=self.min_detection_confidence)
        return self._pose

    def close(self) -> None:
        """Release the MediaPipe graph. Call it when done (there is deliberately no ``__del__``:
        closing the graph during interpreter shutdown deadlocks in mediapipe 0.10.21)."""
        if self._pose is not None:
            self._pose.close()
            self._pose = None

    def detect(self, image: np.ndarray) -> np.ndarray | None:
        """One RGB uint8 image [H, W, 3] -> 33 landmarks [33, 2] (x, y) in its pixels, or None.

        Landmarks below ``min_visibility`` or outside the image are NaN.
        """
        import cv2  # opencv is a core dependency; imported here to keep module import light

        h, w = image.shape[:2]
        scale = max(1.0, self.min_side / min(h, w))
        img = image
        if scale > 1.0:
            img = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC)
        sh, sw = img.shape[:2]
        p = int(round(self.pad * sh))
        if p:
            img = cv2.copyMakeBorder(img, p, p, p, p, cv2.BORDER_REPLICATE)
        result = self._detector().process(np.ascontiguousarray(img))
        if result.pose_landmarks is None:
            return None
        ph, pw = img.shape[:2]
        lm = result.pose_landmarks.landmark
        xy = np.array([[l.x * pw, l.y * ph] for l in lm], np.float64)
        vis = np.array([l.visibility for l in lm], np.float64)
        # back to the input frame: remove the pad, undo the upscale (half-pixel offsets of the
        # resize are ignored: far below the PCKh tolerance)
        xy = (xy - p) * np.array([w / sw, h / sh])
        inside = (xy[:, 0] >= 0) & (xy[:, 0] <= w) & (xy[:, 1] >= 0) & (xy[:, 1] <= h)
        xy[(vis < self.min_visibility) | ~inside] = np.nan
        return xy.astype(np.float32)

    def per_sample(self, generated, target, batch):
        return self.score(generated, batch["target_kp"])

    def score(self, generated: torch.Tensor, target_kp: torch.Tensor,
              keypoint_format: str = "auto") -> list[dict[str, float]]:
        """Score a batch: generated [B, 3, H, W] in [0, 1], target_kp [B, K, 2] (x, y) in the same
        pixel frame, NaN = missing. Returns one dict per image (keys in the module docstring)."""
        if generated.ndim != 4 or generated.shape[1] != 3:
            raise ValueError(f"generated must be [B, 3, H, W], got {tuple(generated.shape)}")
        if target_kp.ndim != 3 or target_kp.shape[0] != generated.shape[0] or target_kp.shape[2] != 2:
            raise ValueError(f"target_kp must be [B, K, 2] with B = {generated.shape[0]}, got {tuple(target_kp.shape)}")
        fmt = lookup_format(keypoint_format, int(target_kp.shape[1]))
        images = (generated.detach().to("cpu", torch.float32).clamp(0, 1) * 255).round().to(torch.uint8)
        images = images.permute(0, 2, 3, 1).numpy()
        targets = target_kp.detach().to("cpu", torch.float32).numpy()
        out = []
        for img, tgt in zip(images, targets):
            lm = self.detect(img)
            det = None if lm is None else landmarks_to_format(lm, fmt)
            out.append(compare_pose(det, tgt, fmt, alpha=self.alpha))
        return out


def summarize(rows: list[dict[str, float]]) -> dict[str, float]:
    """Dataset-level figures from per-sample rows: detection rate; mean ``pckh`` / ``pckh_target``
    / ``pose_dist`` over images where they are defined; ``pckh_detected``, the mean ``pckh`` over
    images with a detection only; and ``pckh_pooled``, as the PATN/GFLA scripts report it (right
    points over all target points, summed over images)."""
    def mean(key):
        v = [r[key] for r in rows if not math.isnan(r[key])]
        return float(np.mean(v)) if v else float("nan")

    detected = [r["pckh"] for r in rows if r["pose_detected"] and not math.isnan(r["pckh"])]
    scored = [r for r in rows if not math.isnan(r["pckh_target"])]
    right = sum(r["pckh_target"] * r["pose_n_target"] for r in scored)
    total = sum(r["pose_n_target"] for r in scored)
    return {"detection_rate": float(np.mean([r["pose_detected"] for r in rows])) if rows else float("nan"),
            "pckh": mean("pckh"), "pckh_target": mean("pckh_target"), "pose_dist": mean("pose_dist"),
            "pckh_detected": float(np.mean(detected)) if detected else float("nan"),
            "pckh_pooled": right / total if total else float("nan"), "n": len(rows)}
