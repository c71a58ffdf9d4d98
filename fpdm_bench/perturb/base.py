"""The Perturbation base class, its seeding, and the keypoint tables the perturbations share.

A perturbation changes one dataset sample (the dict ``PairDataset.__getitem__`` returns) before the
model adapter sees it. It has five severities: severity ``s`` in 1..5 uses ``levels[s - 1]`` as its
parameter, and severity 0 is the identity. Randomness comes from one ``numpy.random.Generator`` per
(seed, pair id, perturbation, severity), so a perturbed sample does not depend on batch size, order,
worker or process, exactly like the run's own per-sample seeds (fpdm_bench.seeding).

Keypoints are [K, 2] (x, y) pixels in the frame of the image they belong to, NaN = missing
(fpdm_bench.data.keypoints). A pixel's centre is at integer coordinates, so the frame is
0 <= x <= W - 1, 0 <= y <= H - 1 (fpdm_bench.data.keypoints.drop_outside).
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch

from fpdm_bench.data.keypoints import visible
from fpdm_bench.errors import BenchError


class PerturbationError(BenchError, ValueError):
    """A bad perturbation name, severity or keypoint format (one line on the command line)."""


SEVERITIES = (0, 1, 2, 3, 4, 5)
KEYPOINT_FORMATS = {"coco18": 18, "wholebody133": 133}

# --- keypoint tables ---------------------------------------------------------------------------
# COCO-18 / OpenPose order (fpdm_bench.data.keypoints.COCO18_NAMES):
# 0 nose, 1 neck, 2 r_shoulder, 3 r_elbow, 4 r_wrist, 5 l_shoulder, 6 l_elbow, 7 l_wrist, 8 r_hip,
# 9 r_knee, 10 r_ankle, 11 l_hip, 12 l_knee, 13 l_ankle, 14 r_eye, 15 l_eye, 16 r_ear, 17 l_ear.
#
# COCO-WholeBody-133 order (fpdm_bench.data.phoenix): 0-16 COCO-17 body (0 nose, 1 l_eye, 2 r_eye,
# 3 l_ear, 4 r_ear, 5 l_shoulder, 6 r_shoulder, 7 l_elbow, 8 r_elbow, 9 l_wrist, 10 r_wrist,
# 11 l_hip, 12 r_hip, 13 l_knee, 14 r_knee, 15 l_ankle, 16 r_ankle), 17-22 feet (l big toe,
# l small toe, l heel, r big toe, r small toe, r heel), 23-90 face (68-point iBUG layout),
# 91-111 left hand, 112-132 right hand (21 points each, same order).
WB_FACE = 23
WB_LEFT_HAND = 91
WB_RIGHT_HAND = 112

# Left/right pairs of the 68-point face, in face-local indices (the mmpose / COCO-WholeBody flip map):
# jaw, eyebrows, nose wings, eyes, outer lip, inner lip. Points on the midline pair with nothing.
_FACE68_PAIRS = (
    [(i, 16 - i) for i in range(8)]
    + [(17 + i, 26 - i) for i in range(5)]
    + [(31, 35), (32, 34)]
    + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
    + [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]
    + [(60, 64), (61, 63), (65, 67)]
)

# Left/right pairs grouped by body part. Flipping a pose swaps all of them; pose.swap swaps a growing
# subset (wrists, then elbows, shoulders, legs, head).
SWAP_GROUPS = {
    "coco18": {
        "wrists": [(4, 7)],
        "elbows": [(3, 6)],
        "shoulders": [(2, 5)],
        "legs": [(8, 11), (9, 12), (10, 13)],
        "head": [(14, 15), (16, 17)],
    },
    "wholebody133": {
        "wrists": [(9, 10)] + [(WB_LEFT_HAND + i, WB_RIGHT_HAND + i) for i in range(21)],  # hands go with wrists
        "elbows": [(7, 8)],
        "shoulders": [(5, 6)],
        "legs": [(11, 12), (13, 14), (15, 16), (17, 20), (18, 21), (19, 22)],  # feet go with legs
        "head": [(1, 2), (3, 4)] + [(WB_FACE + a, WB_FACE + b) for a, b in _FACE68_PAIRS],
    },
}

# Whole limbs for pose.limb. Arms start below the shoulder and legs below the hip, so the torso
# stays; in COCO-WholeBody an arm takes its hand and a leg its foot.
LIMBS = {
    "coco18": {
        "r_arm": [3, 4],
        "l_arm": [6, 7],
        "r_leg": [9, 10],
        "l_leg": [12, 13],
        "head": [0, 14, 15, 16, 17],
    },
    "wholebody133": {
        "r_arm": [8, 10] + list(range(WB_RIGHT_HAND, WB_RIGHT_HAND + 21)),
        "l_arm": [7, 9] + list(range(WB_LEFT_HAND, WB_LEFT_HAND + 21)),
        "r_leg": [14, 16, 20, 21, 22],
        "l_leg": [13, 15, 17, 18, 19],
        "head": [0, 1, 2, 3, 4] + list(range(WB_FACE, WB_FACE + 68)),
    },
}

# Bones used to draw a rough person mask (source.background): the OpenPose limbs plus the torso
# outline, so the mask covers the torso and not just lines from the neck.
SKELETON = {
    "coco18": [
        (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12),
        (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (2, 8), (5, 11), (8, 11),
    ],
    "wholebody133": [
        (0, 1), (0, 2), (1, 3), (2, 4), (5, 6), (5, 7), (7, 9), (6, 8), (8, 10), (5, 11), (6, 12),
        (11, 12), (11, 13), (13, 15), (12, 14), (14, 16), (15, 17), (15, 19), (16, 20), (16, 22),
        (9, WB_LEFT_HAND), (10, WB_RIGHT_HAND),
    ],  # face and finger points are added as single points
}


# (right shoulder, left shoulder, right hip, left hip): the torso source.background keeps.
TORSO = {"coco18": (2, 5, 8, 11), "wholebody133": (6, 5, 12, 11)}


def swap_permutation(keypoint_format: str, groups) -> np.ndarray:
    """Index array ``perm`` such that ``kp[perm]`` swaps the left/right pairs of the named groups."""
    perm = np.arange(KEYPOINT_FORMATS[keypoint_format])
    for group in groups:
        for a, b in SWAP_GROUPS[keypoint_format][group]:
            perm[a], perm[b] = b, a
    return perm


def flip_permutation(keypoint_format: str) -> np.ndarray:
    """The full left/right relabelling of a format (what a horizontal mirror needs)."""
    return swap_permutation(keypoint_format, SWAP_GROUPS[keypoint_format])


def check_keypoint_format(keypoint_format: str | None, num_points: int) -> str:
    """The format name, checked against the number of points; None picks it from the count."""
    if keypoint_format is None:
        by_count = {k: name for name, k in KEYPOINT_FORMATS.items()}
        if num_points not in by_count:
            raise PerturbationError(f"cannot tell the keypoint format of poses with {num_points} points; "
                             f"pass one of {sorted(KEYPOINT_FORMATS)}")
        return by_count[num_points]
    if keypoint_format not in KEYPOINT_FORMATS:
        raise PerturbationError(f"unknown keypoint format {keypoint_format!r}; known: {sorted(KEYPOINT_FORMATS)}")
    if KEYPOINT_FORMATS[keypoint_format] != num_points:
        raise PerturbationError(f"keypoint format {keypoint_format!r} has {KEYPOINT_FORMATS[keypoint_format]} points, "
                         f"the sample's poses have {num_points}")
    return keypoint_format


# --- keypoint helpers --------------------------------------------------------------------------
def kp_to_numpy(kp: torch.Tensor) -> np.ndarray:
    """[K, 2] tensor -> float64 numpy copy (the math runs in float64, the result is cast back)."""
    return kp.detach().cpu().numpy().astype(np.float64)


def kp_like(arr: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """A new tensor with the dtype and device of ``like``."""
    return torch.from_numpy(np.ascontiguousarray(arr)).to(dtype=like.dtype, device=like.device)


def pose_centre(kp: np.ndarray) -> np.ndarray | None:
    """Centre of the visible points' bounding box; None when no point is visible."""
    vis = visible(kp)
    if not vis.any():
        return None
    pts = kp[vis]
    return (pts.min(axis=0) + pts.max(axis=0)) / 2


# --- seeding -----------------------------------------------------------------------------------
def perturbation_rng(seed: int, pair_id: str, name: str, severity: int) -> np.random.Generator:
    """The generator for one (seed, pair, perturbation, severity); nothing else changes its draws."""
    digest = hashlib.sha256(f"{int(seed)}:{pair_id}:{name}:{int(severity)}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


# --- base class --------------------------------------------------------------------------------
class Perturbation:
    """One perturbation. Subclasses set the class attributes and implement ``apply``."""

    name: str = ""
    applies_to: str = ""  # "pose": the target pose; "source": the source image (and its keypoints)
    unit: str = ""
    levels: tuple = ()  # parameter values of severities 1..5
    random: bool = True  # False when the result does not use the generator at all

    def value(self, severity: int):
        """The parameter value of a severity in 1..5."""
        check_severity(severity)
        if severity == 0:
            raise PerturbationError("severity 0 is the identity and has no parameter value")
        return self.levels[severity - 1]

    def describe(self) -> dict:
        doc = (type(self).__doc__ or "").strip()
        return {
            "name": self.name,
            "applies_to": self.applies_to,
            "unit": self.unit,
            "levels": list(self.levels),
            "random": self.random,
            "doc": doc.splitlines()[0] if doc else "",
        }

    def __call__(self, sample: dict, severity: int, seed: int, keypoint_format: str | None = None) -> dict:
        """Perturb one sample at a severity in 0..5; returns a new dict, the input is left alone."""
        check_severity(severity)
        if severity == 0:
            return dict(sample)
        fmt = check_keypoint_format(keypoint_format, int(sample["target_kp"].shape[0]))
        rng = perturbation_rng(seed, sample["pair_id"], self.name, severity)
        return self.apply(sample, self.value(severity), rng, fmt)

    def apply(self, sample: dict, value, rng: np.random.Generator, keypoint_format: str) -> dict:
        """Return a new sample dict with ``value`` applied. Never modify the input's tensors in place:
        build new ones and put them in a copy of the dict."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<Perturbation {self.name}>"


def check_severity(severity) -> None:
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or severity not in SEVERITIES:
        raise PerturbationError(f"severity must be an integer 0..5 (0 = unperturbed), got {severity!r}")
