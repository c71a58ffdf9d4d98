"""`fpdm-bench data check` (issue 27, item 4): what a run would use from a dataset folder, and every
problem in it, one line each naming the file (and line); exit 0 when clean, 2 when not, nothing written."""
import hashlib
import json
import math
import shutil
from pathlib import Path

import pytest
from helpers import invoke_entry
from PIL import Image

from fpdm_bench.data import open_dataset
from fpdm_bench.data.check import check_dataset
from fpdm_bench.data.deepfashion import (
    annotation_file,
    nested_path,
    pairs_file,
    read_annotations,
)
from fpdm_bench.data.synth import synthesize_deepfashion, synthesize_phoenix


def invoke(args, capsys, monkeypatch):
    code, out, err = invoke_entry(args, capsys, monkeypatch)
    assert "Traceback" not in out + err
    return code, out, err


def tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """The two embedded sets at their default parameters, made on first use by their openers."""
    d = tmp_path_factory.mktemp("embedded")
    for name in ("synthetic", "synthetic-phoenix"):
        open_dataset(name, d / name)
    return d


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Small sets to break: 2 test identities x 4 poses (24 pairs), 2 test videos x 4 frames (8 pairs)."""
    d = tmp_path_factory.mktemp("small")
    synthesize_deepfashion(d / "csv", train_identities=1, test_identities=2, poses=4, train_poses=2)
    synthesize_phoenix(d / "phoenix", train_videos=1, test_videos=2, frames=4)
    return d


@pytest.mark.parametrize("name,n_pairs", [("synthetic", 240), ("synthetic-phoenix", 64)])
def test_embedded_sets_are_clean(embedded, name, n_pairs, capsys, monkeypatch):
    root = embedded / name
    before = tree_hash(root)
    code, out, err = invoke(["data", "check", "--dataset", name, "--data-root", str(root)], capsys, monkeypatch)
    assert code == 0, out + err
    sha = open_dataset(name, root).pairs_sha256()
    assert f"pairs:          {n_pairs}, pairs_sha256 {sha}" in out
    assert "problems:       none" in out and "standard split: yes" in out
    code, out, _ = invoke(["data", "check", "--dataset", name, "--data-root", str(root), "--json"], capsys, monkeypatch)
    rep = json.loads(out)
    assert code == 0 and rep["ok"] and rep["problems"] == [] and rep["standard"] == "yes"
    assert rep["n_pairs"] == n_pairs and rep["pairs_sha256"] == sha
    size = "176x256" if name == "synthetic" else "210x260"
    assert rep["image_sizes"] == {size: rep["n_images"]} and rep["expected_size"] == size
    assert tree_hash(root) == before


def test_a_non_default_synthetic_set_is_not_the_standard_split(small):
    rep = check_dataset("synthetic", small / "csv")
    assert rep.ok and rep.n_pairs == 24 and rep.standard == "no" and "differs from" in rep.standard_basis


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_broken_csv_layout_every_problem_named(small, tmp_path, capsys, monkeypatch):
    root = tmp_path / "df"
    shutil.copytree(small / "csv", root)
    names = list(read_annotations(annotation_file(root, "test")))  # 8 images, 4 per identity
    (root / "img" / names[0]).unlink()  # (a) a missing image
    pf, af = pairs_file(root, "test"), annotation_file(root, "test")
    rows = _lines(pf)
    dup = rows[-1].replace(",", "x,", 1)  # the last pair again (the index column is not read)
    pf.write_text("\n".join(rows[:3] + [f"99,{names[4]}"] + rows[3:] + [dup]) + "\n")  # (b) line 4, and a duplicate
    ann = _lines(af)
    ann[6] = f"{names[5]}: [1, 2]: oops"  # (b) line 7: names[5]'s row
    af.write_text("\n".join(ann) + "\n")
    trunc = root / "img" / names[2]  # (d) cut short
    trunc.write_bytes(trunc.read_bytes()[:2000])
    with Image.open(root / "img" / names[3]) as im:  # another size
        im.resize((88, 128)).save(root / "img" / names[3], quality=95)
    with Image.open(root / "img" / names[7]) as im:  # grayscale: a run refuses it without --convert
        im.convert("L").save(root / "img" / names[7], quality=95)
    before = tree_hash(root)

    args = ["data", "check", "--dataset", "deepfashion", "--data-root", str(root)]
    code, out, err = invoke(args, capsys, monkeypatch)
    assert code == 2 and "error: 7 problem(s)" in err
    problems = out.split("problems:       7\n")[1].splitlines()
    assert len(problems) == 7
    expect = [
        (str(pf), "line 4: expected 3 fields"),
        (str(pf), f"line {len(rows) + 2}: pair "),  # the duplicate row, after the inserted one
        (str(af), "line 7: keypoints_y has 2 values, expected 18 [drops 6 pairs]"),
        (names[0], "image file not found (named by fasion-resize-pairs-test.csv"),
        (str(trunc), "truncated image"),
        (names[3], "image is 88x128 (width x height), expected 176x256 (synth.json)"),
        (names[7], "is a mode L image, not RGB"),
    ]
    for file, what in expect:
        assert any(file in p and what in p for p in problems), (file, what, problems)
    # 24 - 6 (names[0] missing) - 6 (names[5]'s row) = 12; 13 dropped with the duplicate row
    assert "pairs:          12 (13 more dropped" in out
    assert tree_hash(root) == before

    code, out, _ = invoke([*args, "--json"], capsys, monkeypatch)
    rep = json.loads(out)
    assert code == 2 and rep["n_problems"] == 7 and rep["n_pairs"] == 12 and not rep["ok"]
    by_line = {p["line"]: p for p in rep["problems"] if p["file"] == str(af)}
    assert by_line[7]["pairs_dropped"] == 6
    assert {p["line"] for p in rep["problems"] if p["file"] == str(pf)} == {4, len(rows) + 2}
    # --convert: the grayscale image is fine; --decode: the cut file is judged by decoding it
    rep = check_dataset("deepfashion", root, convert=True, decode=True)
    assert len(rep.problems) == 6 and rep.decoded
    assert any(p.file == str(trunc) and "unreadable image" in p.message for p in rep.problems)
    assert tree_hash(root) == before


def _to_fpdm_layout(src: Path, root: Path) -> Path:
    """The CSV-layout set rewritten in FPDM's layout: {split}_pairs_data.json, img/<nested>.jpg, pose/<nested>.txt."""
    for split in ("train", "test"):
        for name, kp in read_annotations(annotation_file(src, split)).items():
            rel = nested_path(name)
            (root / "img" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src / "img" / name, root / "img" / rel)
            pose = (root / "pose" / rel).with_suffix(".txt")
            pose.parent.mkdir(parents=True, exist_ok=True)
            pose.write_text("".join("-1 -1\n" if math.isnan(x) else f"{x + 40} {y}\n" for x, y in kp))  # NaN: missing
        pairs = [row.split(",")[1:] for row in _lines(pairs_file(src, split))[1:]]
        entries = [{"source_image": f"./img/{nested_path(a)}", "target_image": f"./img/{nested_path(b)}"}
                   for a, b in pairs]
        (root / f"{split}_pairs_data.json").write_text(json.dumps(entries))
    return root


def test_broken_fpdm_layout_names_the_missing_pose_file(small, tmp_path, capsys, monkeypatch):
    root = _to_fpdm_layout(small / "csv", tmp_path / "fpdm")
    clean = check_dataset("deepfashion-fpdm", root)
    assert clean.n_pairs == 24 and clean.keypoint_files == 8
    assert clean.pairs_sha256 == check_dataset("deepfashion", small / "csv").pairs_sha256  # same pairs, same hash
    assert clean.ok, clean.problems
    first = next(iter(read_annotations(annotation_file(small / "csv", "test"))))  # 6 of the 24 pairs use it
    pose = root / "pose" / Path(nested_path(first)).with_suffix(".txt")
    pose.unlink()
    pairs_json = root / "test_pairs_data.json"
    pairs_json.write_text(json.dumps(json.loads(pairs_json.read_text()) + [{"source_image": 3}]))  # a malformed entry
    before = tree_hash(root)
    code, out, _ = invoke(["data", "check", "--dataset", "deepfashion-fpdm", "--data-root", str(root)],
                            capsys, monkeypatch)
    assert code == 2 and "(fpdm layout)" in out
    assert f"{pose}: pose file not found [drops 6 pairs]" in out
    assert f"{pairs_json}: entry 24: expected" in out
    assert "pairs:          18 (" in out and "keypoints: 7 pose/<image>.txt files" in out
    assert tree_hash(root) == before


def test_broken_phoenix_layout(small, tmp_path, capsys, monkeypatch):
    root = tmp_path / "ph"
    shutil.copytree(small / "phoenix", root)
    kp_dir = root / "keypoints" / "test"
    gone = min(kp_dir.glob("*.json"))
    gone.unlink()  # (c) a missing keypoint file: its video's pairs go
    corpus = root / "annotations" / "PHOENIX-2014-T.test.corpus.csv"
    corpus.write_text(corpus.read_text() + "broken|row\n")  # line 4
    frame = max((root / "features/fullFrame-210x260px/test").rglob("*.png"))  # the other video's
    frame.write_bytes(frame.read_bytes()[:1500])  # (d) a PNG cut short
    before = tree_hash(root)
    code, out, err = invoke(["data", "check", "--dataset", "phoenix", "--data-root", str(root)], capsys, monkeypatch)
    assert code == 2 and "error: 3 problem(s)" in err
    assert f"{gone}: keypoint file not found" in out
    assert f"{corpus}: line 4: expected 7 '|'-separated fields" in out
    assert f"{frame}: truncated image: the PNG file has no end marker" in out
    assert "pairs:          4 (" in out and "keypoints: 1 keypoints/test/<video>.json files" in out
    assert "standard split: no (by count: 1 videos, 4 pairs" in out
    assert tree_hash(root) == before


def test_a_folder_that_cannot_be_opened_is_one_problem(small, tmp_path, capsys, monkeypatch):
    root = tmp_path / "df"
    shutil.copytree(small / "csv", root)
    pairs_file(root, "test").unlink()
    code, out, _ = invoke(["data", "check", "--dataset", "deepfashion", "--data-root", str(root), "--json"],
                            capsys, monkeypatch)
    rep = json.loads(out)
    assert code == 2 and rep["n_problems"] == 1 and "pairs file not found" in rep["problems"][0]["message"]
    assert rep["problems"][0]["file"] == str(pairs_file(root, "test"))


def test_a_plug_in_dataset_through_the_registry(tmp_path, monkeypatch):
    """Any registered dataset: the test fixture's opener (conftest) collects through check_pairs; an
    opener that fills ``skipped`` itself still has each reason listed."""
    from conftest import make_fixture, open_manifest

    import fpdm_bench.data.check as check

    root = make_fixture(tmp_path / "fx")
    assert check_dataset("fixture", root).ok
    (root / "img" / "im002.png").unlink()
    rep = check_dataset("fixture", root)
    assert [(p.file, p.pairs_dropped) for p in rep.problems] == [(str(root / "img" / "im002.png"), 4)]
    assert rep.n_pairs == 8 and rep.standard is None and rep.expected_size == "24x32"

    def legacy(name, root, split, skip_bad):
        ds = open_manifest(root, split, skip_bad=skip_bad)
        ds.skipped.append({"pair_id": "x_2_y", "reason": f"{root}/notes.txt: line 3: unreadable"})
        return ds

    monkeypatch.setattr(check, "open_dataset", legacy)
    rep = check_dataset("fixture", root)
    assert len(rep.problems) == 2 and str(rep.problems[1]) == f"{root}/notes.txt: line 3: unreadable"
