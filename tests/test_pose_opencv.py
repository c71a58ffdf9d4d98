"""Defect: opencv-python was unpinned, and OpenCV's anti-aliased drawing changed in 4.13.

``cv2.line(..., 2, cv2.LINE_AA)`` (CFLD's skeleton, baselines/cfld/pose.py, as the official
``draw_pose_from_cords``) draws a bone with an end outside the image one way in 4.7-4.12 (the official
pin is 4.7.0.72) and another from 4.13 on (5.x included): up to 127/255 apart on hundreds of pixels.
Inside the image every version draws alike. pyproject.toml pins the range these drawings were
checked on; no drawing code can give 4.7's bytes under 4.13+, so docs/models/cfld.md says which range is
byte for byte with the official code where.

``fixtures/cfld/skeleton_out_of_frame.npz`` holds our ``skeleton()`` on ``CASES``: ``official/*``
made under opencv-python 4.7.0.72 (equal to the official ``draw_pose_from_cords`` there) and
``cv2_4_13/*`` under 5.1.0.95, each by this file's ``__main__`` in a scratch venv outside the
repository (see tests/fixtures/cfld/README.md):

    /tmp/cv47/bin/python tests/test_pose_opencv.py --write tests/fixtures/cfld/skeleton_out_of_frame.npz
"""
import sys
import tomllib
from pathlib import Path

import cv2
import numpy as np
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "cfld" / "skeleton_out_of_frame.npz"
# drew FIX's arrays of their regime byte for byte (and the in-frame goldens of test_cfld_pose.py)
CHECKED = ("4.7.0", "4.8.1", "4.9.0", "4.10.0", "4.11.0", "4.12.0", "4.13.0", "4.14.0", "5.0.0", "5.1.0")
NEW_AA = Version("4.13")  # first version with the new anti-aliased drawing at the frame's edge

# (y, x) in the 256x176 annotation frame, -1 = missing: a standing person with joints pushed just
# outside the frame (x < 0 or > 175, y < 0 or > 255).
_BODY = [[40, 88], [70, 88], [70, 62], [110, 54], [145, 50], [70, 114], [110, 122], [145, 126], [140, 72],
         [195, 70], [245, 68], [140, 104], [195, 106], [245, 108], [32, 82], [32, 94], [36, 72], [36, 104]]


def _moved(**joints):
    c = [list(p) for p in _BODY]
    for j, p in joints.items():
        c[int(j[1:])] = list(p)
    return c


CASES = {
    "wrists_out": _moved(j4=[150, -3], j7=[150, 179]),
    "ankles_out": _moved(j10=[258, 60], j13=[261, 116]),
    "head_out": _moved(j0=[-2, 88], j14=[-4, 80], j15=[-3, 96], j16=[-2, 70], j17=[1, 178]),
    "corner": _moved(j3=[-3, -2], j4=[-6, -5], j6=[258, 178], j7=[262, 183]),
}


def _regime(version=cv2.__version__) -> str:
    return "cv2_4_13" if Version(version) >= NEW_AA else "official"


def render_cases() -> dict:
    from fpdm_bench_baselines.cfld.pose import skeleton

    return {name: skeleton(np.asarray(c, np.float64)) for name, c in CASES.items()}


def test_opencv_is_pinned_to_the_range_the_drawings_were_checked_on():
    """pyproject pins opencv-python to the versions checked here (not an unseen 5.2+, whose drawing
    nobody compared), and the installed cv2 is one of them."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    spec = next(Requirement(d) for d in deps if Requirement(d).name == "opencv-python").specifier
    assert all(spec.contains(v) for v in CHECKED) and not spec.contains("5.2.0"), \
        f"opencv-python pin {str(spec) or '(none)'}: not the checked {CHECKED[0]}-{CHECKED[-1]}"
    assert spec.contains(Version(cv2.__version__)), f"cv2 {cv2.__version__} is outside the pinned {spec}"


def test_out_of_frame_skeleton_is_the_drawing_of_its_opencv():
    """CFLD's skeleton with bones leaving the frame: under 4.7-4.12 the official drawing (cv2 4.7.0.72)
    byte for byte, under 4.13-5.1 the new one; the two differ, as docs/models/cfld.md says."""
    with np.load(FIX) as z:
        for name, img in render_cases().items():
            np.testing.assert_array_equal(z[f"cords/{name}"], np.asarray(CASES[name], np.float64))
            assert (z[f"official/{name}"] != z[f"cv2_4_13/{name}"]).any(), name
            diff = np.abs(img.astype(int) - z[f"{_regime()}/{name}"])
            assert int(diff.max()) == 0, f"{name}: {int((diff.max(-1) > 0).sum())} pixels differ, up to {diff.max()}"


if __name__ == "__main__":  # adds the running cv2's regime to the fixture
    if sys.argv[1:2] != ["--write"] or len(sys.argv) != 3:
        sys.exit("usage: python tests/test_pose_opencv.py --write OUT.npz")
    sys.path.insert(0, str(ROOT))
    out = dict(np.load(sys.argv[2])) if Path(sys.argv[2]).is_file() else {}
    for name, img in render_cases().items():
        out[f"cords/{name}"] = np.asarray(CASES[name], np.float64)
        out[f"{_regime()}/{name}"] = img
    np.savez_compressed(sys.argv[2], **out)
    print(f"cv2 {cv2.__version__}: wrote {_regime()}/* to {sys.argv[2]}")
