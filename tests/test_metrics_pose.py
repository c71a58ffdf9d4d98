"""Pose-fidelity metric: geometry, landmark mapping, and (with mediapipe) one real detection."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import fpdm_bench  # noqa: F401,E402  (torchvision shim before anything else)

import math  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from fpdm_bench.data.keypoints import COCO18_NAMES  # noqa: E402
from fpdm_bench.metrics import pose  # noqa: E402
from fpdm_bench.metrics.pose import (  # noqa: E402
    MP_TO_COCO17, PoseFidelity, compare_pose, head_size, landmarks_to_format, lookup_format, summarize,
)

NAN = np.nan


def coco18_target():
    """A front-facing COCO-18 pose in a 256x176 frame (x, y)."""
    kp = np.full((18, 2), NAN, np.float32)
    pts = {
        "nose": (88, 40), "neck": (88, 70), "r_shoulder": (68, 70), "r_elbow": (60, 100), "r_wrist": (56, 130),
        "l_shoulder": (108, 70), "l_elbow": (116, 100), "l_wrist": (120, 130), "r_hip": (76, 140),
        "r_knee": (76, 180), "r_ankle": (76, 220), "l_hip": (100, 140), "l_knee": (100, 180),
        "l_ankle": (100, 220), "r_eye": (84, 36), "l_eye": (92, 36), "r_ear": (78, 40), "l_ear": (98, 40),
    }
    for name, xy in pts.items():
        kp[COCO18_NAMES.index(name)] = xy
    return kp


def test_head_size_is_box_of_head_points():
    t = coco18_target()
    # head points: nose (88,40), neck (88,70), eyes (84,36) (92,36), ears (78,40) (98,40)
    assert head_size(t, "coco18") == (20.0, 34.0)
    only_one = np.full((18, 2), NAN, np.float32)
    only_one[0] = (10, 10)
    assert head_size(only_one, "coco18") is None
    # two head points on one horizontal line: no height, so no tolerance
    flat = np.full((18, 2), NAN, np.float32)
    flat[16], flat[17] = (10, 10), (30, 10)
    assert head_size(flat, "coco18") is None


def test_pckh_counts_points_inside_half_head_box():
    t = coco18_target()  # head box (w, h) = (20, 34) -> tolerance |dx| < 10 and |dy| < 17
    det = t.copy()
    det[3] += (9.9, 0)     # inside
    det[4] += (10.0, 0)    # on the edge: strict inequality -> wrong (as in the PATN/GFLA scripts)
    det[9] += (0, 16.9)    # inside
    det[10] += (0, 17.5)   # wrong
    det[12] += (9, 16)     # both axes inside -> right
    r = compare_pose(det, t, "coco18")
    assert r["pose_detected"] == 1 and r["pose_n"] == 18 and r["pose_n_target"] == 18
    assert r["pckh"] == pytest.approx(16 / 18)
    assert r["pckh_target"] == pytest.approx(16 / 18)


def test_missing_points_change_the_two_denominators_differently():
    t = coco18_target()
    t[13] = NAN                      # target lacks l_ankle: not compared, not counted
    det = t.copy()
    det[10] = NAN                    # detector lacks r_ankle: not compared, but counted as wrong in pckh_target
    det[4] += (50, 0)                # one wrong point
    det[13] = (100, 220)             # detected where the target has nothing: ignored
    r = compare_pose(det, t, "coco18")
    assert r["pose_n_target"] == 17
    assert r["pose_n"] == 16
    assert r["pckh"] == pytest.approx(15 / 16)
    assert r["pckh_target"] == pytest.approx(15 / 17)


def test_pose_dist_is_mean_distance_over_target_box_diagonal():
    t = coco18_target()
    diag = math.hypot(120 - 56, 220 - 36)  # box of all target points
    det = t.copy()
    det[0] += (3, 4)                 # distance 5
    det[7] += (0, -12)               # distance 12
    det[5] = NAN                     # not compared
    r = compare_pose(det, t, "coco18")
    assert r["pose_n"] == 17
    assert r["pose_dist"] == pytest.approx((5 + 12) / 17 / diag)
    assert compare_pose(t.copy(), t, "coco18")["pose_dist"] == 0.0


def test_no_detection_scores_zero_and_has_no_distance():
    r = compare_pose(None, coco18_target(), "coco18")
    assert r["pose_detected"] == 0 and r["pose_n"] == 0
    assert r["pckh"] == 0.0 and r["pckh_target"] == 0.0
    assert math.isnan(r["pose_dist"])


def test_undefined_head_size_gives_nan_pckh():
    t = coco18_target()
    t[[0, 1, 14, 15, 16]] = NAN      # only the left ear is left of the head points
    r = compare_pose(t.copy(), t, "coco18")
    assert math.isnan(r["pckh"]) and math.isnan(r["pckh_target"])
    assert r["pose_dist"] == 0.0     # the distance does not need a head size


def test_landmarks_map_onto_coco18_with_neck_between_shoulders():
    lm = np.arange(66, dtype=np.float32).reshape(33, 2)  # landmark i at (2i, 2i+1)
    kp = landmarks_to_format(lm, "coco18")
    assert kp.shape == (18, 2)
    expected = {  # COCO-18 index -> MediaPipe index, written out from the BlazePose landmark list
        0: 0, 2: 12, 3: 14, 4: 16, 5: 11, 6: 13, 7: 15, 8: 24, 9: 26, 10: 28, 11: 23, 12: 25, 13: 27,
        14: 5, 15: 2, 16: 8, 17: 7,
    }
    for k, m in expected.items():
        np.testing.assert_array_equal(kp[k], lm[m], err_msg=COCO18_NAMES[k])
    np.testing.assert_array_equal(kp[1], (lm[11] + lm[12]) / 2)
    lm[12] = NAN                     # one shoulder missing -> no neck
    kp = landmarks_to_format(lm, "coco18")
    assert np.isnan(kp[1]).all() and np.isnan(kp[2]).all() and not np.isnan(kp[5]).any()


def test_landmarks_map_onto_wholebody_body_points_only():
    lm = np.arange(66, dtype=np.float32).reshape(33, 2)
    kp = landmarks_to_format(lm, "wholebody133")
    assert kp.shape == (133, 2)
    assert MP_TO_COCO17 == [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]
    np.testing.assert_array_equal(kp[:17], lm[MP_TO_COCO17])
    assert np.isnan(kp[17:]).all()   # feet, face and hands are not compared


def test_wholebody_compares_body_points_and_ignores_the_rest():
    body = np.full((133, 2), NAN, np.float32)
    # COCO-17 body of a signer, frame 260x210: nose, eyes, ears, shoulders, elbows, wrists
    body[:11] = [(105, 60), (111, 54), (99, 54), (118, 58), (92, 58), (135, 100), (75, 100),
                 (145, 140), (65, 140), (130, 120), (80, 120)]
    body[17:] = (50, 50)             # feet/face/hands present in the target, but not compared
    # head box: nose, eyes, ears and mid-shoulders (105, 100) -> (w, h) = (26, 46)
    assert head_size(body, "wholebody133") == (26.0, 46.0)
    det = body.copy()
    det[17:] = NAN
    det[9] += (20, 0)                # l_wrist off by more than 13 px in x
    r = compare_pose(det, body, "wholebody133")
    assert r["pose_n"] == 11 and r["pose_n_target"] == 11
    assert r["pckh"] == pytest.approx(10 / 11)


def test_format_lookup_and_errors():
    assert lookup_format("auto", 18).name == "coco18"
    assert lookup_format("auto", 133).name == "wholebody133"
    with pytest.raises(ValueError, match="cannot tell"):
        lookup_format("auto", 25)
    with pytest.raises(ValueError, match="unknown keypoint format"):
        lookup_format("openpose25")
    with pytest.raises(ValueError, match="has 18 points"):
        lookup_format("coco18", 133)
    with pytest.raises(ValueError, match=r"must be \(18, 2\) for coco18"):
        compare_pose(None, np.zeros((17, 2)), "coco18")


def test_summarize_rates_means_and_pooled():
    rows = [
        {"pckh": 1.0, "pckh_target": 0.5, "pose_dist": 0.1, "pose_n": 9, "pose_n_target": 18, "pose_detected": 1},
        {"pckh": 0.0, "pckh_target": 0.0, "pose_dist": NAN, "pose_n": 0, "pose_n_target": 6, "pose_detected": 0},
        {"pckh": NAN, "pckh_target": NAN, "pose_dist": 0.3, "pose_n": 4, "pose_n_target": 4, "pose_detected": 1},
    ]
    s = summarize(rows)
    assert s["detection_rate"] == pytest.approx(2 / 3)
    assert s["pckh"] == pytest.approx(0.5)
    assert s["pose_dist"] == pytest.approx(0.2)
    assert s["pckh_detected"] == pytest.approx(1.0)   # the undetected image's 0 is left out
    assert s["pckh_pooled"] == pytest.approx(9 / 24)
    assert s["n"] == 3


def test_unavailable_reason_without_mediapipe(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_mediapipe(name, *args, **kwargs):
        if name == "mediapipe" or name.startswith("mediapipe."):
            raise ImportError("No module named 'mediapipe'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mediapipe)
    ok, reason = PoseFidelity.available()
    assert not ok
    assert reason.startswith("pose fidelity unavailable: mediapipe not installed (pip install 'fpdm-bench[pose]'")
    assert "numpy<2" in reason  # the user learns why it needs its own environment


def test_per_sample_checks_shapes():
    pf = PoseFidelity()
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        pf.score(torch.zeros(1, 1, 8, 8), torch.zeros(1, 18, 2))
    with pytest.raises(ValueError, match="target_kp"):
        pf.score(torch.zeros(2, 3, 8, 8), torch.zeros(1, 18, 2))


# ---- a real detection (needs the optional mediapipe==0.10.21) ------------------------------------

_OK, _WHY = pose.available()
needs_mediapipe = pytest.mark.skipif(not _OK, reason=_WHY or "mediapipe unavailable")


def render_person():
    """A clothed front-facing figure drawn with OpenCV on the pose of `coco18_target` (256x176).

    Skin-toned face with eyes, mouth and hair; shirt, trousers and shoes; limbs as thick rounded
    segments on a plain wall-and-floor background.
    """
    import cv2

    h, w, s = 256, 176, 1.0
    kp = coco18_target()
    img = np.full((h, w, 3), (222, 214, 200), np.uint8)
    img[int(0.9 * h):] = (150, 130, 110)
    P = {n: tuple(int(round(v)) for v in kp[COCO18_NAMES.index(n)]) for n in COCO18_NAMES}
    skin, shirt, trousers = (224, 172, 140), (40, 90, 170), (50, 50, 60)

    def limb(a, b, colour, width):
        cv2.line(img, P[a], P[b], colour, int(width * s), cv2.LINE_AA)

    # torso
    cv2.fillConvexPoly(img, np.array([P["r_shoulder"], P["l_shoulder"], P["l_hip"], P["r_hip"]]), shirt, cv2.LINE_AA)
    for a, b in (("r_hip", "r_knee"), ("r_knee", "r_ankle"), ("l_hip", "l_knee"), ("l_knee", "l_ankle")):
        limb(a, b, trousers, 15)
    for side in "rl":
        limb(f"{side}_shoulder", f"{side}_elbow", shirt, 12)
        limb(f"{side}_elbow", f"{side}_wrist", skin, 9)
        cv2.circle(img, P[f"{side}_wrist"], int(6 * s), skin, -1, cv2.LINE_AA)
        ax, ay = P[f"{side}_ankle"]
        cv2.ellipse(img, (ax, ay + int(4 * s)), (int(9 * s), int(5 * s)), 0, 0, 360, (30, 25, 20), -1, cv2.LINE_AA)
    limb("neck", "nose", skin, 10)
    nx, ny = P["nose"]
    cv2.ellipse(img, (nx, ny - int(2 * s)), (int(12 * s), int(15 * s)), 0, 0, 360, skin, -1, cv2.LINE_AA)
    cv2.ellipse(img, (nx, ny - int(12 * s)), (int(13 * s), int(8 * s)), 0, 180, 360, (60, 40, 25), -1, cv2.LINE_AA)
    for e in ("r_eye", "l_eye"):
        cv2.circle(img, P[e], max(1, int(2 * s)), (30, 30, 30), -1, cv2.LINE_AA)
    cv2.line(img, (nx - int(4 * s), ny + int(7 * s)), (nx + int(4 * s), ny + int(7 * s)), (150, 60, 60), 1, cv2.LINE_AA)
    img = cv2.GaussianBlur(img, (3, 3), 0)
    return img, kp


@needs_mediapipe
def test_detects_a_rendered_person_and_scores_it():
    import cv2

    img, kp = render_person()
    gen = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    target = torch.from_numpy(kp)[None]
    # the same picture at twice the size (no upscaling inside) with its keypoints scaled
    big = cv2.resize(img, (352, 512), interpolation=cv2.INTER_CUBIC)
    gen_big = torch.from_numpy(big).permute(2, 0, 1)[None].float() / 255
    pf, padded = PoseFidelity(), PoseFidelity(pad=0.25)
    try:
        rows = pf.score(gen, target, "coco18")
        again = pf.score(gen, target, "coco18")
        rows_big = pf.score(gen_big, target * 2, "coco18")
        rows_pad = padded.score(gen, target, "coco18")
        # a blank image of the same size has no person
        blank = pf.score(torch.full_like(gen, 0.8), target, "coco18")
    finally:
        pf.close()
        padded.close()
    for r in (rows[0], rows_big[0], rows_pad[0]):
        # measured: 16 points compared, all within tolerance, mean error 1.8 % of the pose box;
        # with left and right swapped the same detection scores PCKh 0.25
        assert r["pose_detected"] == 1
        assert r["pose_n"] >= 14
        assert r["pckh"] >= 0.9
        assert r["pose_dist"] < 0.04
    assert again == rows              # static-image mode: same image, same landmarks
    assert blank[0]["pose_detected"] == 0 and blank[0]["pckh"] == 0.0
