"""Dataset loaders: DeepFashion CSV layout (flat and nested), FPDM's layout, PHOENIX-2014T, validation.

Every fixture is written here, in the real file formats, with a few tiny images. Expected keypoints
are worked out by hand from the values written, and images carry a bright dot at a keypoint so the
tests can check that image resizing and keypoint rescaling agree.
"""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import fpdm_bench  # noqa: E402,F401  (torchvision shim first)

import importlib  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from fpdm_bench.data import open_dataset  # noqa: E402
from fpdm_bench.data.deepfashion import flat_name, open_deepfashion, open_fpdm_layout  # noqa: E402
from fpdm_bench.data.phoenix import open_phoenix  # noqa: E402
from fpdm_bench.errors import DataError  # noqa: E402

# --- DeepFashion fixtures ------------------------------------------------------------------------

# Nested In-shop paths and the flat names PATN/GFLA/PIDM/CFLD give them (real naming: the category
# keeps its underscore, the id loses it, the view keeps only its first underscore).
NESTED = {
    "img/WOMEN/Blouses_Shirts/id_00006350/04_1_front.jpg": "fashionWOMENBlouses_Shirtsid0000635004_1front.jpg",
    "img/WOMEN/Blouses_Shirts/id_00006350/04_2_side.jpg": "fashionWOMENBlouses_Shirtsid0000635004_2side.jpg",
    "img/MEN/Tees_Tanks/id_00007301/04_7_additional.jpg": "fashionMENTees_Tanksid0000730104_7additional.jpg",
    "img/MEN/Denim/id_00000080/01_1_front.jpg": "fashionMENDenimid0000008001_1front.jpg",
}
NAMES = list(NESTED.values())


def _pose(i):
    """18 (y, x) int lists in the 256x176 frame; point 0 is the dot drawn in the image, point 17 missing."""
    ys = [40 + 10 * k + i for k in range(18)]
    xs = [30 + 5 * k + 3 * i for k in range(18)]
    ys[0], xs[0] = 100 + 20 * i, 60 + 10 * i
    ys[17] = xs[17] = -1
    return ys, xs


def _image(path: Path, hw, dot_xy=None):
    """Grey image with a white square dot (scaled with the image) at dot_xy (in that image's pixels)."""
    arr = np.full((hw[0], hw[1], 3), 90, np.uint8)
    if dot_xy is not None:
        r = max(2, round(2 * hw[0] / 256))
        x, y = round(dot_xy[0]), round(dot_xy[1])
        arr[y - r:y + r + 1, x - r:x + r + 1] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, quality=95)


def _write_csv_layout(root: Path, image_hw=(512, 352), nested=False, pairs=None, index_col=True, split="test"):
    """Annotation + pairs CSVs in the GFLA format; images flat under {split}_highres/ or nested under img/."""
    root.mkdir(parents=True, exist_ok=True)
    lines = ["name:keypoints_y:keypoints_x"]
    for i, name in enumerate(NAMES):
        ys, xs = _pose(i)
        lines.append(f"{name}: {ys}: {xs}")
        sy, sx = image_hw[0] / 256, image_hw[1] / 176
        where = (root / [k for k, v in NESTED.items() if v == name][0]) if nested else root / f"{split}_highres" / name
        _image(where, image_hw, (xs[0] * sx, ys[0] * sy))
    (root / f"fasion-resize-annotation-{split}.csv").write_text("\n".join(lines) + "\n")
    pairs = pairs or [(NAMES[0], NAMES[1]), (NAMES[1], NAMES[0]), (NAMES[2], NAMES[3])]
    head = ",from,to" if index_col else "from,to"
    rows = [head] + [(f"{i}," if index_col else "") + f"{a},{b}" for i, (a, b) in enumerate(pairs)]
    (root / f"fasion-resize-pairs-{split}.csv").write_text("\n".join(rows) + "\n")
    return root


def _dot_xy(img):
    """(x, y) of the centre of the white dot in a [3, H, W] tensor."""
    m = img.mean(0).numpy()
    ys, xs = np.nonzero(m > 0.8 * m.max())
    return xs.mean(), ys.mean()


# --- DeepFashion CSV layout ----------------------------------------------------------------------

def test_flat_name_matches_the_gfla_file_names():
    for nested, flat in NESTED.items():
        assert flat_name(nested) == flat
        assert flat_name("/data/deepfashion/" + nested) == flat
    assert flat_name("test/fashionMENDenimid0000008001_1front.jpg") is None


def test_csv_layout_512x352_images_at_native_and_double_size(tmp_path):
    root = _write_csv_layout(tmp_path / "df", image_hw=(512, 352))
    ds = open_deepfashion(root)
    assert len(ds) == 3 and ds.native_size == (256, 176) and ds.size == (256, 176)
    s = ds[0]
    assert s["pair_id"] == "fashionWOMENBlouses_Shirtsid0000635004_1front_2_fashionWOMENBlouses_Shirtsid0000635004_2side"
    assert s["source"].shape == (3, 256, 176) and s["source_kp"].shape == (18, 2)
    ys, xs = _pose(0)
    assert s["source_kp"][0].tolist() == [60.0, 100.0]  # (x, y) = (xs[0], ys[0]) in the 256x176 frame
    assert s["source_kp"][5].tolist() == [float(xs[5]), float(ys[5])]
    assert s["source_kp"][17].isnan().all()
    dx, dy = _dot_xy(s["source"])
    assert abs(dx - 60) < 1.5 and abs(dy - 100) < 1.5

    big = open_deepfashion(root, size=(512, 352))
    b = big[0]
    assert b["source"].shape == (3, 512, 352)
    assert b["source_kp"][0].tolist() == [120.0, 200.0]
    t_ys, t_xs = _pose(1)
    assert b["target_kp"][3].tolist() == [2.0 * t_xs[3], 2.0 * t_ys[3]]
    dx, dy = _dot_xy(b["source"])
    assert abs(dx - 120) < 1.5 and abs(dy - 200) < 1.5
    assert big.pairs_sha256() == ds.pairs_sha256()  # the size is not part of the pair list


def test_nested_750x1101_originals_are_found_and_rescaled(tmp_path):
    root = _write_csv_layout(tmp_path / "df", image_hw=(1101, 750), nested=True)
    ds = open_deepfashion(root)
    s = ds[2]  # MEN/Tees_Tanks -> MEN/Denim
    assert s["source_name"] == "fashionMENTees_Tanksid0000730104_7additional.jpg"
    assert s["target"].shape == (3, 256, 176)
    ys, xs = _pose(3)
    assert s["target_kp"][0].tolist() == [float(xs[0]), float(ys[0])]
    dx, dy = _dot_xy(s["target"])
    assert abs(dx - xs[0]) < 1.5 and abs(dy - ys[0]) < 1.5
    d = ds.describe()
    assert d["keypoints"]["pad_x_for_256x256"] == 40 and d["keypoints"]["annotation_frame_hw"] == [256, 176]
    assert d["layout"] == "csv" and d["n_pairs"] == 3


def test_pairs_sha256_stable_and_order_sensitive(tmp_path):
    p = [(NAMES[0], NAMES[1]), (NAMES[1], NAMES[0]), (NAMES[2], NAMES[3])]
    a = open_deepfashion(_write_csv_layout(tmp_path / "a", image_hw=(256, 176), pairs=p))
    a2 = open_deepfashion(tmp_path / "a")
    b = open_deepfashion(_write_csv_layout(tmp_path / "b", image_hw=(256, 176), pairs=p, index_col=False))
    c = open_deepfashion(_write_csv_layout(tmp_path / "c", image_hw=(256, 176), pairs=[p[1], p[0], p[2]]))
    assert a.pairs_sha256() == a2.pairs_sha256() == b.pairs_sha256()  # "from,to" header reads the same
    assert len(a.pairs_sha256()) == 64
    assert c.pairs_sha256() != a.pairs_sha256()
    assert sorted(r.pair_id for r in c.pairs) == sorted(r.pair_id for r in a.pairs)


def test_reference_images_are_the_train_split_by_default(tmp_path):
    root = _write_csv_layout(tmp_path / "df", image_hw=(256, 176))
    _write_csv_layout(root, image_hw=(256, 176), split="train")  # same names, in train_highres/
    ds = open_deepfashion(root)
    assert ds.fid_reference_split == "train"
    refs = ds.reference_images()
    assert [p.name for p in refs] == NAMES and all(p.is_file() for p in refs)
    assert open_deepfashion(root, fid_reference_split="test").fid_reference_split == "test"
    ann = root / "fasion-resize-annotation-train.csv"
    ann.write_text(ann.read_text() + "fashionMENnobodyid0000000101_1front.jpg: "
                   + str([-1] * 18) + ": " + str([-1] * 18) + "\n")
    with pytest.raises(DataError, match="fasion-resize-annotation-train.csv: 1 of the 5 reference images"):
        ds.reference_images()


# --- DeepFashion validation ----------------------------------------------------------------------

@pytest.mark.parametrize("missing", ["fasion-resize-annotation-test.csv", "fasion-resize-pairs-test.csv"])
@pytest.mark.parametrize("skip_bad", [False, True])
def test_missing_annotation_or_pairs_file_always_raises(tmp_path, missing, skip_bad):
    root = _write_csv_layout(tmp_path / "df", image_hw=(256, 176))
    (root / missing).unlink()
    with pytest.raises(DataError) as e:
        open_deepfashion(root, skip_bad=skip_bad)
    assert e.value.path == str(root / missing) and "not found" in str(e.value)


@pytest.mark.parametrize("row, problem", [
    ("fashionX.jpg: [1, 2]", "expected 3 ':'-separated fields"),
    ("fashionX.jpg: [1, 2, 3]: [4, 5, 6]: [7]", "expected 3 ':'-separated fields"),
    ("fashionX.jpg: " + str([1.5] * 18) + ": " + str([1] * 18), "keypoints_y is not a list of integers"),
    ("fashionX.jpg: " + str([1] * 18) + ": [a, b]", "keypoints_x is not a list of integers"),
    ("fashionX.jpg: " + str([1] * 17) + ": " + str([1] * 17), "keypoints_y has 17 values, expected 18"),
])
def test_malformed_annotation_row_names_file_and_line(tmp_path, row, problem):
    root = _write_csv_layout(tmp_path / "df", image_hw=(256, 176))
    ann = root / "fasion-resize-annotation-test.csv"
    lines = ann.read_text().splitlines()
    lines.insert(3, row)  # becomes line 4 of the file
    ann.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as e:
        open_deepfashion(root)
    assert e.value.path == str(ann)
    assert "line 4:" in str(e.value) and problem in str(e.value)


def test_pairs_naming_unannotated_or_absent_images(tmp_path):
    ghost = "fashionMENghostid0000000101_1front.jpg"
    root = _write_csv_layout(tmp_path / "df", image_hw=(256, 176), pairs=[(NAMES[0], NAMES[1]), (NAMES[0], ghost)])
    pairs = root / "fasion-resize-pairs-test.csv"
    with pytest.raises(DataError) as e:
        open_deepfashion(root)
    assert e.value.path == str(pairs) and ghost in str(e.value) and "no keypoint annotation" in str(e.value)

    (root / "test_highres" / NAMES[1]).unlink()  # annotated, but its file is gone
    pairs.write_text(f",from,to\n0,{NAMES[2]},{NAMES[3]}\n1,{NAMES[0]},{NAMES[1]}\n")
    with pytest.raises(DataError) as e:
        open_deepfashion(root)
    assert NAMES[1] in e.value.path and "fasion-resize-pairs-test.csv" in str(e.value)


def test_malformed_pairs_row_and_duplicate_pair(tmp_path):
    root = _write_csv_layout(tmp_path / "df", image_hw=(256, 176))
    pairs = root / "fasion-resize-pairs-test.csv"
    pairs.write_text(f",from,to\n0,{NAMES[0]},{NAMES[1]}\n1,{NAMES[2]}\n")
    with pytest.raises(DataError, match=r"fasion-resize-pairs-test.csv: line 3: expected 3 fields"):
        open_deepfashion(root)
    pairs.write_text(f",from,to\n0,{NAMES[0]},{NAMES[1]}\n1,{NAMES[2]},{NAMES[3]}\n2,{NAMES[0]},{NAMES[1]}\n")
    with pytest.raises(DataError, match=r"fasion-resize-pairs-test.csv: line 4: pair .* repeats line 2"):
        open_deepfashion(root)
    ds = open_deepfashion(root, skip_bad=True)
    assert len(ds) == 2 and len(ds.skipped) == 1 and "repeats line 2" in ds.skipped[0]["reason"]


def test_truncated_image_raises_when_read(tmp_path):
    root = _write_csv_layout(tmp_path / "df", image_hw=(256, 176))
    bad = root / "test_highres" / NAMES[3]
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 3])
    ds = open_deepfashion(root)  # decoding every image up front would be too slow on the real set
    ds[0]
    with pytest.raises(DataError) as e:
        ds[2]
    assert e.value.path == str(bad) and "unreadable image" in str(e.value)


def test_skip_bad_drops_and_records(tmp_path):
    ghost = "fashionMENghostid0000000101_1front.jpg"
    root = _write_csv_layout(tmp_path / "df", image_hw=(256, 176), pairs=[
        (NAMES[0], NAMES[1]), (NAMES[0], ghost), (NAMES[1], NAMES[2]), (NAMES[2], NAMES[3]), (NAMES[3], NAMES[0])])
    (root / "test_highres" / NAMES[3]).unlink()  # the last pair loses an image
    ann = root / "fasion-resize-annotation-test.csv"
    lines = ann.read_text().splitlines()
    lines[3] = NAMES[2] + ": [1, 2]: oops"  # NAMES[2]'s row (line 4) is malformed: pairs 3 and 4
    ann.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError):
        open_deepfashion(root)
    ds = open_deepfashion(root, skip_bad=True)
    assert [(r.source, r.target) for r in ds.pairs] == [(NAMES[0], NAMES[1])]
    reasons = {r["pair_id"]: r["reason"] for r in ds.skipped}
    assert len(reasons) == 4 and ds.describe()["skipped"] == 4
    stem = [Path(n).stem for n in NAMES]
    assert "no keypoint annotation" in reasons[f"{stem[0]}_2_{Path(ghost).stem}"]
    assert "line 4" in reasons[f"{stem[1]}_2_{stem[2]}"] and "line 4" in reasons[f"{stem[2]}_2_{stem[3]}"]
    assert "image file not found" in reasons[f"{stem[3]}_2_{stem[0]}"]


# --- FPDM layout ---------------------------------------------------------------------------------

def _write_fpdm_layout(root: Path, image_hw=(768, 768), split="test", pairs=None):
    """FPDM's files: {split}_pairs_data.json, img/<nested>.jpg (FPDM resizes to 768x768), pose/<nested>.txt."""
    rels = list(NESTED)
    for i, rel in enumerate(rels):
        ys, xs = _pose(i)
        _image(root / rel, image_hw, (xs[0] * image_hw[1] / 176, ys[0] * image_hw[0] / 256))
        # np.savetxt's default format, x shifted by FPDM's 40 px pad; -1 stays -1.
        lines = [f"{float(x + 40 if x >= 0 else -1):.18e} {float(y):.18e}" for x, y in zip(xs, ys)]
        txt = root / Path(rel.replace("img/", "pose/", 1)).with_suffix(".txt")
        txt.parent.mkdir(parents=True, exist_ok=True)
        txt.write_text("\n".join(lines) + "\n")
    pairs = pairs or [(0, 1), (1, 0), (2, 3)]
    data = [{"source_image": f"./{rels[a]}", "target_image": f"./{rels[b]}"} for a, b in pairs]
    (root / f"{split}_pairs_data.json").write_text(json.dumps(data))
    return root


def test_fpdm_layout_matches_the_csv_layout(tmp_path):
    ds = open_fpdm_layout(_write_fpdm_layout(tmp_path / "fpdm"))
    csv_ds = open_deepfashion(_write_csv_layout(tmp_path / "csv", image_hw=(256, 176)))
    assert [r.pair_id for r in ds.pairs] == [r.pair_id for r in csv_ds.pairs]
    assert ds.pairs_sha256() == csv_ds.pairs_sha256()
    s, c = ds[0], csv_ds[0]
    assert s["source"].shape == (3, 256, 176)
    assert np.array_equal(s["source_kp"].numpy(), c["source_kp"].numpy(), equal_nan=True)
    assert s["target_kp"][17].isnan().all()
    dx, dy = _dot_xy(s["source"])  # the stretched square image comes back unstretched
    assert abs(dx - 60) < 1.5 and abs(dy - 100) < 1.5
    big = open_fpdm_layout(tmp_path / "fpdm", size=(512, 352))
    assert big[0]["source_kp"][0].tolist() == [120.0, 200.0]
    assert [p.name for p in ds.reference_images("test")] == [Path(r).name for r in NESTED]
    assert ds.describe()["layout"] == "fpdm"


def test_fpdm_layout_validation(tmp_path):
    root = _write_fpdm_layout(tmp_path / "fpdm")
    txt = root / "pose/MEN/Tees_Tanks/id_00007301/04_7_additional.txt"
    lines = txt.read_text().splitlines()
    txt.write_text("\n".join(lines[:17]) + "\n")
    with pytest.raises(DataError) as e:
        open_fpdm_layout(root)
    assert e.value.path == str(txt) and "17 points, expected 18" in str(e.value)
    txt.write_text("\n".join(lines[:5] + ["12.0 abc"] + lines[6:]) + "\n")
    with pytest.raises(DataError, match=r"04_7_additional.txt: line 6: expected 'x y' numbers"):
        open_fpdm_layout(root)
    txt.unlink()
    with pytest.raises(DataError, match=r"04_7_additional.txt: pose file not found"):
        open_fpdm_layout(root)
    ds = open_fpdm_layout(root, skip_bad=True)
    assert len(ds) == 2 and len(ds.skipped) == 1 and "pose file not found" in ds.skipped[0]["reason"]
    with pytest.raises(DataError, match=r"train_pairs_data.json: pairs file not found"):
        open_fpdm_layout(root, split="train", skip_bad=True)
    (root / "test_pairs_data.json").write_text(json.dumps([{"source_image": "./img/a.jpg"}]))
    with pytest.raises(DataError, match=r"test_pairs_data.json: entry 0: expected"):
        open_fpdm_layout(root)


# --- PHOENIX-2014T -------------------------------------------------------------------------------

VIDEOS = ["01April_2010_Thursday_heute-6697", "27January_2013_Sunday_tagesschau-8842"]


def _wholebody(v, f, scale=1.0):
    """[133, 3] points; point 0 is the dot drawn in the frame, point 10 missing (-1), point 11 score 0."""
    pts = [[(20 + (k % 30) * 5 + f) * scale, (30 + (k // 30) * 40 + v) * scale, 0.9] for k in range(133)]
    pts[0] = [(100 + 10 * f) * scale, (120 + 5 * v) * scale, 0.95]
    pts[10] = [-1, -1, 0.0]
    pts[11][2] = 0.0
    return pts


def _write_phoenix(root: Path, split="test", n_frames=3, kp_scale=1.0):
    rows = ["name|video|start|end|speaker|orth|translation"]
    for v, video in enumerate(VIDEOS):
        frames, kps = [], []
        for f in range(n_frames):
            name = f"images{f + 1:04d}.png"
            _image(root / "features/fullFrame-210x260px" / split / video / name, (260, 210), (100 + 10 * f, 120 + 5 * v))
            frames.append(name)
            kps.append(_wholebody(v, f, kp_scale))
        kdir = root / "keypoints" / split
        kdir.mkdir(parents=True, exist_ok=True)
        size = [round(260 * kp_scale), round(210 * kp_scale)]
        (kdir / f"{video}.json").write_text(json.dumps(
            {"format": "coco-wholebody-133", "size": size, "frames": frames, "keypoints": kps}))
        rows.append(f"{video}|{video}/1/*.png|-1|-1|Signer0{v}|REGEN WIND|es regnet")
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / f"PHOENIX-2014-T.{split}.corpus.csv").write_text("\n".join(rows) + "\n")
    return root


def test_phoenix_pairs_first_frame_against_every_frame(tmp_path):
    ds = open_phoenix(_write_phoenix(tmp_path / "ph"))
    assert len(ds) == 6 and ds.native_size == (260, 210) and ds.keypoint_format == "wholebody133"
    assert ds.fid_reference_split == "test"
    v0 = VIDEOS[0]
    assert [r.pair_id for r in ds.pairs[:3]] == [f"{v0}_images0001_2_{v0}_images000{k}" for k in (1, 2, 3)]
    assert all(r.source == f"{v0}/images0001.png" for r in ds.pairs[:3])
    s = ds[1]
    assert s["source"].shape == (3, 260, 210) and s["target_kp"].shape == (133, 2)
    assert s["target_kp"][0].tolist() == [110.0, 120.0]
    assert s["target_kp"][10].isnan().all() and s["target_kp"][11].isnan().all()
    assert ds.keypoint_scores(s["target_name"])[0] == pytest.approx(0.95)
    dx, dy = _dot_xy(s["target"])
    assert abs(dx - 110) < 1.5 and abs(dy - 120) < 1.5
    big = open_phoenix(tmp_path / "ph", size=(520, 420))
    b = big[4]  # second video, frame 2
    assert b["target"].shape == (3, 520, 420) and b["target_kp"][0].tolist() == [220.0, 250.0]
    assert big.pairs_sha256() == ds.pairs_sha256()
    assert len(ds.reference_images()) == 6


def test_phoenix_keypoints_given_in_another_frame_are_rescaled(tmp_path):
    ds = open_phoenix(_write_phoenix(tmp_path / "ph", kp_scale=2.0))  # json size [520, 420]
    assert ds[1]["target_kp"][0].tolist() == [110.0, 120.0]
    assert ds.describe()["keypoints"]["annotation_frame_hw"] == [260, 210]


def test_phoenix_reference_images_of_another_split(tmp_path):
    root = _write_phoenix(tmp_path / "ph")
    _write_phoenix(root, split="train", n_frames=2)
    refs = open_phoenix(root).reference_images("train")
    assert len(refs) == 4 and all("/train/" in p.as_posix() for p in refs)


def test_phoenix_validation(tmp_path):
    root = _write_phoenix(tmp_path / "ph")
    kj = root / "keypoints/test" / f"{VIDEOS[1]}.json"
    good = json.loads(kj.read_text())

    bad = json.loads(kj.read_text())
    bad["keypoints"][1] = bad["keypoints"][1][:132]
    kj.write_text(json.dumps(bad))
    with pytest.raises(DataError) as e:
        open_phoenix(root)
    assert e.value.path == str(kj) and "frame 1 (images0002.png): 132 points, expected 133" in str(e.value)

    kj.write_text(json.dumps(dict(good, keypoints=good["keypoints"][:2])))
    with pytest.raises(DataError, match=r"keypoints has 2 entries for 3 frames"):
        open_phoenix(root)
    kj.write_text(json.dumps(dict(good, format="coco-17")))
    with pytest.raises(DataError, match=r"format is 'coco-17'"):
        open_phoenix(root)

    ds = open_phoenix(root, skip_bad=True)  # the whole second video goes
    assert len(ds) == 3 and len(ds.skipped) == 1 and str(kj) in ds.skipped[0]["reason"]
    kj.write_text(json.dumps(good))

    frame = root / "features/fullFrame-210x260px/test" / VIDEOS[0] / "images0003.png"
    frame.unlink()
    with pytest.raises(DataError) as e:
        open_phoenix(root)
    assert e.value.path == str(frame) and f"{VIDEOS[0]}.json" in str(e.value)
    ds = open_phoenix(root, skip_bad=True)
    assert len(ds) == 5 and ds.skipped[0]["pair_id"] == f"{VIDEOS[0]}_images0001_2_{VIDEOS[0]}_images0003"

    (root / "keypoints/test" / f"{VIDEOS[0]}.json").unlink()
    with pytest.raises(DataError, match=r"-6697.json: keypoint file not found"):
        open_phoenix(root)
    (root / "annotations/PHOENIX-2014-T.test.corpus.csv").unlink()
    with pytest.raises(DataError, match=r"PHOENIX-2014-T.test.corpus.csv: corpus file not found"):
        open_phoenix(root, skip_bad=True)


def test_phoenix_fpdm_sign_layout(tmp_path):
    """FPDM's own sign files: pairs json + 133-line pose txt, 0 = missing, 512x512 frame."""
    root = tmp_path / "sign"
    rels = [f"img/{VIDEOS[0]}/images000{k}.jpg" for k in (1, 2)]
    for k, rel in enumerate(rels):
        _image(root / rel, (260, 210))
        pts = [[256.0 + k, 128.0] for _ in range(133)]
        pts[5] = [0.0, 0.0]
        txt = root / Path(rel.replace("img/", "pose/", 1)).with_suffix(".txt")
        txt.parent.mkdir(parents=True, exist_ok=True)
        txt.write_text("\n".join(f"{x:.18e} {y:.18e}" for x, y in pts) + "\n")
    pairs = [{"source_image": f"./{rels[0]}", "target_image": f"./{r}"} for r in rels]
    (root / "test_pairs_data.json").write_text(json.dumps(pairs))
    ds = open_phoenix(root)
    assert ds.layout == "fpdm" and len(ds) == 2
    assert ds.pairs[1].pair_id == f"{VIDEOS[0]}_images0001_2_{VIDEOS[0]}_images0002"
    s = ds[1]
    assert s["target"].shape == (3, 260, 210)
    assert s["target_kp"][0].tolist() == pytest.approx([257 * 210 / 512, 128 * 260 / 512])
    assert s["target_kp"][5].isnan().all()


# --- registry and the embedded synthetic sets -----------------------------------------------------

def test_registry_opens_the_real_layouts(tmp_path):
    root = _write_csv_layout(tmp_path / "df", image_hw=(256, 176))
    assert len(open_dataset("deepfashion", root)) == 3
    assert len(open_dataset("deepfashion-fpdm", _write_fpdm_layout(tmp_path / "fp"))) == 3
    assert len(open_dataset("phoenix", _write_phoenix(tmp_path / "ph"), size=(130, 105))) == 6
    with pytest.raises(DataError, match="dataset folder not found"):
        open_dataset("deepfashion", tmp_path / "nowhere")


def _synth():
    try:
        return importlib.import_module("fpdm_bench.data.synth")
    except ImportError:
        pytest.skip("fpdm_bench.data.synth not importable yet")


def test_open_synthetic_generates_once_then_reads(tmp_path, monkeypatch):
    synth = _synth()
    calls = []
    make_df, make_ph = synth.synthesize_deepfashion, synth.synthesize_phoenix

    def small_df(out):  # the default sizes take ~10 s each; the wiring is what is tested here
        calls.append("df")
        return make_df(out, train_identities=2, test_identities=2, poses=2, train_poses=2)

    def small_ph(out):
        calls.append("ph")
        return make_ph(out, train_videos=1, test_videos=1, frames=3)

    monkeypatch.setattr(synth, "synthesize_deepfashion", small_df)
    monkeypatch.setattr(synth, "synthesize_phoenix", small_ph)
    df = open_dataset("synthetic", tmp_path / "df")
    again = open_dataset("synthetic", tmp_path / "df")
    assert calls == ["df"] and df.name == "synthetic" and df.fid_reference_split == "train"
    assert len(df) == 4 and df.pairs_sha256() == again.pairs_sha256()
    assert df[0]["source"].shape == (3, 256, 176)
    assert all(p.is_file() for p in df.reference_images())
    ph = open_dataset("synthetic-phoenix", tmp_path / "ph")
    open_dataset("synthetic-phoenix", tmp_path / "ph")
    assert calls == ["df", "ph"] and ph.name == "synthetic-phoenix" and len(ph) == 3
    assert ph[2]["target_kp"].shape == (133, 2)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("user data")
    for name in ("synthetic", "synthetic-phoenix"):
        with pytest.raises(DataError, match="holds no synthetic set"):
            open_dataset(name, tmp_path / "mine")
    assert calls == ["df", "ph"] and sorted(os.listdir(tmp_path / "mine")) == ["notes.txt"]
