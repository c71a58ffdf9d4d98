"""keypoint-warp: a real, non-learned floor for pose-guided synthesis.

The warp itself (per-part affine maps from the source keypoints to the target keypoints over a
background inpainted from the source) is ``fpdm_bench.modeling.keypoint_warp``, shared with the tiny
FPDM's prior; this is its model adapter.
"""
from __future__ import annotations

import torch

from fpdm_bench.modeling.keypoint_warp import warp_batch
from fpdm_bench.models.base import ModelAdapter


class KeypointWarp(ModelAdapter):
    """Per-part affine warp of the source image from its keypoints to the target keypoints.

    Works at whatever size the batch has; takes COCO-18 (K = 18) or COCO-WholeBody (K = 133) poses.
    Ignores ``generators``: the output is a deterministic function of the inputs.
    """

    name = "keypoint-warp"
    floor = True
    order = 3
    colour = "#8c564b"

    def generate(self, batch: dict, generators: list[torch.Generator]) -> torch.Tensor:
        return warp_batch(batch["source"], batch["source_kp"], batch["target_kp"])

    def info(self) -> dict:
        return {"name": self.name, "parameters": 0, "nfe": 0, "checkpoint_sha256": None,
                "description": "non-learned floor: per-part affine warp of the source (torso affine, head and "
                               "hands similarity, limbs bone-aligned) over a background inpainted from the source"}
