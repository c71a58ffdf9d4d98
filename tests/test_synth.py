"""The embedded synthetic datasets: determinism, file formats, keypoints that match the pictures."""
import fpdm_bench  # noqa: F401  (first, per the project rule)

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fpdm_bench.data import keypoints as kpt
from fpdm_bench.data.synth import DEFAULTS, synthesize_deepfashion, synthesize_phoenix

SMALL = dict(train_identities=3, test_identities=2, poses=3, train_poses=3)


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def df_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("df")
    summary = synthesize_deepfashion(out, seed=0, **SMALL)
    return out, summary


def _annotations(root: Path, split: str) -> pd.DataFrame:
    # the way PIDM/CFLD/GFLA read it: pandas with sep=':', then json on the two list columns
    return pd.read_csv(root / f"fasion-resize-annotation-{split}.csv", sep=":")


def _pose(row) -> np.ndarray:
    return kpt.from_file_values(json.loads(row["keypoints_y"]), json.loads(row["keypoints_x"]))


def test_defaults_exported():
    assert {"train_identities", "test_identities", "poses"} <= set(DEFAULTS)


def test_same_seed_same_bytes_other_seed_differs(df_set, tmp_path):
    out, _ = df_set
    again = tmp_path / "again"
    synthesize_deepfashion(again, seed=0, **SMALL)
    assert _hashes(out) == _hashes(again)
    other = tmp_path / "other"
    synthesize_deepfashion(other, seed=1, **SMALL)
    a, b = _hashes(out), _hashes(other)
    imgs = [k for k in a if k.startswith("img")]
    assert imgs and all(a[k] != b.get(k) for k in imgs)


def test_annotation_csv_format(df_set):
    out, summary = df_set
    for split, n in (("train", 3 * 3), ("test", 2 * 3)):
        df = _annotations(out, split)
        assert list(df.columns) == ["name", "keypoints_y", "keypoints_x"]
        assert len(df) == n == summary["counts"][split]["images"]
        assert df["name"].is_unique
        for _, row in df.iterrows():
            ys, xs = json.loads(row["keypoints_y"]), json.loads(row["keypoints_x"])
            assert len(ys) == len(xs) == 18 and all(isinstance(v, int) for v in ys + xs)
            for y, x in zip(ys, xs):
                assert (y == -1) == (x == -1)  # missing in both coordinates at once
                if y != -1:
                    assert 0 <= y < 256 and 0 <= x < 176  # always the 256x176 annotation frame
            assert (out / "img" / row["name"]).is_file()
            assert row["name"].startswith("fashion") and "id" in row["name"]


def test_pairs_csv_format(df_set):
    out, summary = df_set
    for split in ("train", "test"):
        text = (out / f"fasion-resize-pairs-{split}.csv").read_text()
        assert text.splitlines()[0] == ",from,to"
        pairs = pd.read_csv(out / f"fasion-resize-pairs-{split}.csv", index_col=0)
        names = set(_annotations(out, split)["name"])
        assert len(pairs) == summary["counts"][split]["pairs"] == (2 if split == "test" else 3) * 3 * 2
        assert (pairs["from"] != pairs["to"]).all()
        assert set(pairs["from"]) | set(pairs["to"]) <= names
        ident = lambda n: n.split("id")[1][:8]  # noqa: E731
        assert all(ident(a) == ident(b) for a, b in zip(pairs["from"], pairs["to"]))


def test_identities_disjoint(df_set):
    out, _ = df_set
    ident = lambda n: n.split("id")[1][:8]  # noqa: E731
    train = {ident(n) for n in _annotations(out, "train")["name"]}
    test = {ident(n) for n in _annotations(out, "test")["name"]}
    assert train and test and not train & test


def test_keypoints_lie_on_the_person(df_set):
    """At each visible body joint the picture differs from the backdrop.

    The backdrop colour is taken from the image's top corners (never covered by a person in this
    set, whose head starts below the top edge): a joint whose pixel matched the backdrop would mean
    the annotation and the drawing disagree.
    """
    out, _ = df_set
    checked = 0
    for split in ("train", "test"):
        for _, row in _annotations(out, split).iterrows():
            img = np.asarray(Image.open(out / "img" / row["name"]), np.float32)
            corners = np.concatenate([img[:6, :6].reshape(-1, 3), img[:6, -6:].reshape(-1, 3)])
            bg = np.median(corners, axis=0)
            kp = _pose(row)
            for j in (1, 2, 3, 5, 6, 8, 9, 11, 12):  # joints inside limbs (not the face dots)
                if np.isnan(kp[j]).any():
                    continue
                x, y = np.round(kp[j]).astype(int)
                patch = img[max(y - 1, 0): y + 2, max(x - 1, 0): x + 2].reshape(-1, 3)
                assert np.abs(patch - bg).max() > 20, (row["name"], j)
                checked += 1
    assert checked > 50


def test_back_views_hide_the_face(df_set):
    out, _ = df_set
    for split in ("train", "test"):
        for _, row in _annotations(out, split).iterrows():
            if "_3back" in row["name"]:
                kp = _pose(row)
                assert np.isnan(kp[[0, 14, 15]]).all()


def test_larger_images_same_annotation_frame(df_set, tmp_path):
    out, _ = df_set
    big = tmp_path / "big"
    synthesize_deepfashion(big, seed=0, size=(512, 352), **SMALL)
    name = _annotations(big, "test")["name"][0]
    assert Image.open(big / "img" / name).size == (352, 512)
    assert Image.open(out / "img" / name).size == (176, 256)
    # the same picture, drawn at twice the resolution
    small = np.asarray(Image.open(out / "img" / name), np.float32)
    down = np.asarray(Image.open(big / "img" / name).resize((176, 256), Image.BILINEAR), np.float32)
    assert np.abs(small - down).mean() < 8
    a, b = _annotations(out, "test"), _annotations(big, "test")
    assert list(a["name"]) == list(b["name"])
    for (_, ra), (_, rb) in zip(a.iterrows(), b.iterrows()):
        pa, pb = _pose(ra), _pose(rb)
        both = ~np.isnan(pa).any(1) & ~np.isnan(pb).any(1)
        assert both.sum() >= 8
        # the same person drawn at twice the resolution: same joints up to rounding
        assert np.abs(pa[both] - pb[both]).max() <= 1.0


def test_real_loader_reads_it(df_set):
    from fpdm_bench.data.deepfashion import open_deepfashion

    out, summary = df_set
    ds = open_deepfashion(out, split="test")
    assert len(ds) == summary["counts"]["test"]["pairs"]


def test_synth_json_provenance(df_set):
    out, _ = df_set
    meta = json.loads((out / "synth.json").read_text())
    assert meta["seed"] == 0 and meta["test_identities"] == 2 and "version" in meta


@pytest.fixture(scope="module")
def ph_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("ph")
    return out, synthesize_phoenix(out, seed=0, train_videos=2, test_videos=1, frames=4)


def test_phoenix_layout_and_keypoints(ph_set):
    out, summary = ph_set
    for split, n in (("train", 2), ("test", 1)):
        corpus = pd.read_csv(out / "annotations" / f"PHOENIX-2014-T.{split}.corpus.csv", sep="|")
        assert list(corpus.columns) == ["name", "video", "start", "end", "speaker", "orth", "translation"]
        assert len(corpus) == n
        for _, row in corpus.iterrows():
            assert row["video"] == f"{row['name']}/1/*.png"
            frames = sorted((out / "features/fullFrame-210x260px" / split / row["name"]).glob("images*.png"))
            assert len(frames) == 4
            assert Image.open(frames[0]).size == (210, 260)
            data = json.loads((out / "keypoints" / split / f"{row['name']}.json").read_text())
            assert data["format"] == "coco-wholebody-133" and data["size"] == [260, 210]
            assert data["frames"] == [f.name for f in frames]
            kp = np.asarray(data["keypoints"], np.float32)
            assert kp.shape == (4, 133, 3)
            seen = kp[..., 2] > 0
            assert seen[:, [0, 1, 2, 3, 4, 5, 6, 9, 10]].all()  # head, shoulders, wrists are in the frame
            assert not seen[:, 13:23].any()  # knees, ankles, feet are below it
            assert seen[:, 91:].all()  # both hands
            assert ((kp[~seen][:, :2]) == -1).all()
            xy = kp[seen][:, :2]
            assert (xy[:, 0] >= 0).all() and (xy[:, 0] < 210).all() and (xy[:, 1] < 260).all()
    train = set(pd.read_csv(out / "annotations/PHOENIX-2014-T.train.corpus.csv", sep="|")["speaker"])
    test = set(pd.read_csv(out / "annotations/PHOENIX-2014-T.test.corpus.csv", sep="|")["speaker"])
    assert not train & test


def test_phoenix_deterministic(ph_set, tmp_path):
    out, _ = ph_set
    synthesize_phoenix(tmp_path, seed=0, train_videos=2, test_videos=1, frames=4)
    assert _hashes(out) == _hashes(tmp_path)


def test_phoenix_real_loader_reads_it(ph_set):
    from fpdm_bench.data.phoenix import open_phoenix

    out, _ = ph_set
    ds = open_phoenix(out, split="test")
    assert len(ds) > 0
