"""Perturbations of the target pose (``target_kp``), as a noisy or wrong pose estimate would give.

Only the pose the model is asked to render changes; the target image is the ground truth and stays
as it is. Distances are in pixels of the frame the sample has (the dataset's evaluation size unless
the run asked for another ``size``): DeepFashion 256x176, PHOENIX 260x210.

Points that a perturbation moves outside the frame become NaN (missing), as a pose detector would
report them and as the datasets' files store them; every adapter already copes with missing points.
"""
from __future__ import annotations

import numpy as np

from fpdm_bench.data.keypoints import drop_outside
from fpdm_bench.perturb.base import LIMBS, Perturbation, kp_like, kp_to_numpy, pose_centre, swap_permutation


class PosePerturbation(Perturbation):
    """Shared plumbing: numpy in, numpy out, out-of-frame points dropped."""

    applies_to = "pose"

    def apply(self, sample, value, rng, keypoint_format):
        kp = kp_to_numpy(sample["target_kp"])
        hw = tuple(sample["target"].shape[-2:])
        new = self.move(kp, value, rng, keypoint_format, hw)
        out = dict(sample)
        out["target_kp"] = kp_like(drop_outside(new, hw), sample["target_kp"])
        return out

    def move(self, kp: np.ndarray, value, rng: np.random.Generator, keypoint_format: str,
             hw: tuple[int, int]) -> np.ndarray:
        raise NotImplementedError


class Jitter(PosePerturbation):
    """Gaussian noise on every visible target keypoint; σ (px) = 1, 2, 4, 8, 16.

    σ is in pixels of the sample's frame and is not rescaled with the image: at the 256-pixel-high
    evaluation frames of DeepFashion and PHOENIX, σ = 16 is about 6 % of the height. x and y get
    independent noise.
    """

    name = "pose.jitter"
    unit = "px σ"
    levels = (1.0, 2.0, 4.0, 8.0, 16.0)

    def move(self, kp, value, rng, keypoint_format, hw):
        # drawn for every point, visible or not, so one point's noise does not depend on the others
        return kp + rng.normal(0.0, value, size=kp.shape)  # NaN + noise stays NaN


class Dropout(PosePerturbation):
    """Each visible target keypoint goes missing (NaN) with probability p = 0.1, 0.2, 0.3, 0.5, 0.7."""

    name = "pose.dropout"
    unit = "probability"
    levels = (0.1, 0.2, 0.3, 0.5, 0.7)

    def move(self, kp, value, rng, keypoint_format, hw):
        out = kp.copy()
        out[rng.random(len(kp)) < value] = np.nan
        return out


class Limb(PosePerturbation):
    """Whole limbs of the target pose go missing; limbs removed = 1, 2, 3, 4, 5.

    The five limbs are right arm, left arm, right leg, left leg and head; which ones is drawn at
    random (so severity 5 removes all five). An arm is elbow + wrist (the shoulder stays), a leg knee +
    ankle (the hip stays), the head nose + eyes + ears. In COCO-WholeBody an arm also takes its 21 hand
    points, a leg its 3 foot points and the head the 68 face points. Indices: ``base.LIMBS``.
    """

    name = "pose.limb"
    unit = "limbs removed"
    levels = (1, 2, 3, 4, 5)

    def move(self, kp, value, rng, keypoint_format, hw):
        limbs = LIMBS[keypoint_format]
        names = list(limbs)
        chosen = rng.choice(len(names), size=int(value), replace=False)
        out = kp.copy()
        for i in sorted(chosen):
            out[limbs[names[i]]] = np.nan
        return out

    @staticmethod
    def removed(keypoint_format: str, limb_names) -> list[int]:
        """The indices that removing the named limbs sets to NaN (sorted)."""
        return sorted(i for name in limb_names for i in LIMBS[keypoint_format][name])


class Scale(PosePerturbation):
    """The target pose shrinks about the centre of its keypoints' bounding box; factor = 0.95, 0.9, 0.85, 0.8, 0.7.

    No randomness: every pose shrinks by the same factor (a person further from the camera).
    """

    name = "pose.scale"
    unit = "scale factor"
    levels = (0.95, 0.9, 0.85, 0.8, 0.7)
    random = False

    def move(self, kp, value, rng, keypoint_format, hw):
        c = pose_centre(kp)
        if c is None:
            return kp.copy()
        return c + value * (kp - c)


class Shift(PosePerturbation):
    """The target pose moves in a random direction by a fraction of the image width = 0.02, 0.05, 0.1, 0.15, 0.2.

    The distance is ``fraction x W`` whatever the direction (uniform angle in [0, 2π)).
    """

    name = "pose.shift"
    unit = "fraction of image width"
    levels = (0.02, 0.05, 0.1, 0.15, 0.2)

    def move(self, kp, value, rng, keypoint_format, hw):
        angle = rng.uniform(0.0, 2 * np.pi)
        step = value * hw[1] * np.array([np.cos(angle), np.sin(angle)])
        return kp + step


class Rotate(PosePerturbation):
    """The target pose rotates about the centre of its keypoints' bounding box; angle (degrees) = 5, 10, 15, 20, 30.

    The sign (clockwise or counter-clockwise) is random, the size is the level.
    """

    name = "pose.rotate"
    unit = "degrees"
    levels = (5.0, 10.0, 15.0, 20.0, 30.0)

    def move(self, kp, value, rng, keypoint_format, hw):
        sign = 1.0 if rng.random() < 0.5 else -1.0
        c = pose_centre(kp)
        if c is None:
            return kp.copy()
        t = np.deg2rad(sign * value)
        rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
        return c + (kp - c) @ rot.T


class Swap(PosePerturbation):
    """Left and right labels of the target pose are swapped, more body parts at each severity (no randomness).

    1: wrists (and COCO-WholeBody hands); 2: + elbows; 3: + shoulders (whole arms);
    4: + legs (hips, knees, ankles, and COCO-WholeBody feet); 5: + head (eyes, ears, and the
    COCO-WholeBody face), i.e. the whole pose relabelled as if the person faced the other way.
    The points stay where they are; only which side they are said to belong to changes.
    """

    name = "pose.swap"
    unit = "swap stage"
    levels = (1, 2, 3, 4, 5)
    random = False
    GROUPS = ("wrists", "elbows", "shoulders", "legs", "head")  # severity s swaps the first s

    def move(self, kp, value, rng, keypoint_format, hw):
        return kp[swap_permutation(keypoint_format, self.GROUPS[: int(value)])]


# The registered instances: named in pyproject.toml's ``fpdm_bench.perturbations`` entry points.
JITTER, DROPOUT, LIMB, SCALE, SHIFT, ROTATE, SWAP = Jitter(), Dropout(), Limb(), Scale(), Shift(), Rotate(), Swap()
POSE_PERTURBATIONS = [JITTER, DROPOUT, LIMB, SCALE, SHIFT, ROTATE, SWAP]

__all__ = ["POSE_PERTURBATIONS", "PosePerturbation", "Jitter", "Dropout", "Limb", "Scale", "Shift", "Rotate",
           "Swap"]
