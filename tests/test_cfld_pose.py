"""CFLD's pose tensor against the official ``build_pose_img`` (tests/fixtures/cfld/README.md): the
skeleton byte for byte, the heatmaps bit for bit (float64 exp of integer distances, stored float32)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fpdm_bench_baselines.cfld.pose import annotation_keypoints, heatmaps, render_pose, skeleton

FIX = Path(__file__).parent / "fixtures" / "cfld" / "pose_golden.npz"


def _official_heatmaps(z, n):
    """The fixture's compact form: every channel is the template moved to its centre (or zero)."""
    tpl, (ty, tx) = z["heat_template"], z["heat_template_centre"]
    h, w = tpl.shape
    out = np.zeros((18, h, w), np.float32)
    for i, (cy, cx) in enumerate(z[f"heat_centre/{n}"]):
        if cy == -1:
            continue
        dy, dx = cy - ty, cx - tx
        ys, xs = slice(max(0, dy), min(h, h + dy)), slice(max(0, dx), min(w, w + dx))
        out[i, ys, xs] = tpl[max(0, -dy): h - max(0, dy), max(0, -dx): w - max(0, dx)]
    return out


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_pose_tensor_equals_the_official_one(n):
    z = np.load(FIX)
    cords = z[f"kp/{n}"].astype(np.float64)  # (y, x) in the 256x176 frame, -1 = missing
    sk = skeleton(cords)
    want = z[f"skeleton_u8/{n}"].transpose(1, 2, 0)
    assert np.array_equal(sk, want), f"{(sk != want).any(-1).sum()} skeleton pixels differ"
    hm = heatmaps(cords)
    assert np.array_equal(hm, _official_heatmaps(z, n))
    assert np.allclose(hm.sum(axis=(1, 2), dtype=np.float64), z[f"heat_sum/{n}"], rtol=1e-6)


def test_our_keypoints_give_the_same_tensor():
    """Our convention ((x, y) in the image frame, NaN = missing) reaches the same official tensor."""
    z = np.load(FIX)
    cords = z["kp/0"].astype(np.float64)
    ours = np.where((cords == -1).any(1, keepdims=True), np.nan, cords[:, ::-1])  # (x, y)
    assert np.array_equal(annotation_keypoints(ours, (256, 176)), cords)
    t = render_pose(ours, (256, 176))
    assert t.shape == (21, 256, 256) and t.dtype == np.float32
    assert np.array_equal(t[:3], z["skeleton_u8/0"].astype(np.float32) / np.float32(255))
    # keypoints of a 512x352 frame are brought back to the annotation frame first
    assert np.array_equal(render_pose(ours * 2, (512, 352)), t)
