"""`fpdm-bench report --out` on runs of a dataset of video frames: one looping animated WebP per video
(source | target pose | ground truth | each run) and a per-frame metric figure per video, shown in a
Videos section of index.html; a report of a dataset without videos is unchanged by any of it."""
import csv
import json
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from conftest import make_fixture
from fpdm_bench.data import open_dataset
from fpdm_bench.data.synth import synthesize_phoenix
from fpdm_bench.protocols import PROTOCOLS, Protocol, register
from fpdm_bench.reporting import build_report
from fpdm_bench.runner import RunConfig, run

RUNS = ("copy-source", "oracle", "keypoint-warp")
FRAMES = 5
if "t-vid" not in PROTOCOLS:
    register(Protocol(name="t-vid", description="test: ssim + mae + flicker", source="test",
                      metrics={"ssim": {"variant": "uniform51"}, "mae": {"variant": "mean_abs"}, "flicker": {}}))


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory):
    """The floors on 3 synthetic signer videos x 5 frames (15 pairs at 260x210), protocol t-vid."""
    base = tmp_path_factory.mktemp("vid")
    root = base / "synthetic-phoenix"
    synthesize_phoenix(root, train_videos=1, test_videos=3, frames=FRAMES)
    runs = []
    for m in RUNS:
        out = base / "runs" / m
        run(RunConfig(model=m, dataset="synthetic-phoenix", data_root=str(root), out=str(out), protocol="t-vid",
                      progress=False, batch_size=8), log=lambda s: None)
        runs.append(out)
    return root, runs


@pytest.fixture(scope="module")
def report(phoenix, tmp_path_factory):
    out = tmp_path_factory.mktemp("rep") / "rep"
    manifest = build_report(phoenix[1], out, rows=2, videos=2, cell_height=64, log=lambda s: None)
    return out, manifest


def _videos(manifest, kind):
    return [a for a in manifest["artefacts"] if a["section"] == "videos" and kind in a["files"]]


def _frames(path):
    im = Image.open(path)
    out = []
    for k in range(im.n_frames):
        im.seek(k)
        out.append(np.asarray(im.convert("RGB")))
    return im, out


def test_one_animation_per_video_of_the_first_videos_in_dataset_order(phoenix, report):
    out, manifest = report
    anims = _videos(manifest, "webp")
    order = list(dict.fromkeys(p.sequence for p in open_dataset("synthetic-phoenix", phoenix[0]).pairs))
    assert [a["meta"]["video"] for a in anims] == order[:2]  # --videos 2 of the 3
    for a in anims:
        im, frames = _frames(out / a["files"]["webp"])
        assert im.format == "WEBP" and im.is_animated and im.info["loop"] == 0
        assert len(frames) == im.n_frames == FRAMES == a["meta"]["frames"]
        im.seek(1)
        im.load()
        assert im.info["duration"] == 80  # 12.5 fps
        h, w = a["meta"]["cell"]
        assert (h, w) == (64, round(210 * 64 / 260))
        assert list(im.size) == a["meta"]["size"] and im.size[0] == (3 + len(RUNS)) * w
        with open(out / a["files"]["csv"], newline="") as f:
            rows = list(csv.DictReader(f))
        assert [r["frame"] for r in rows[:: len(RUNS)]] == [str(k) for k in range(1, FRAMES + 1)]
        assert [r["column"] for r in rows[: len(RUNS)]] == list(RUNS)


def test_oracle_column_is_the_ground_truth_and_copy_source_the_source(report):
    out, manifest = report
    for a in _videos(manifest, "webp"):
        _, frames = _frames(out / a["files"]["webp"])
        h, w = a["meta"]["cell"]
        top = a["meta"]["header"]

        def cell(frame, col):
            return frame[top: top + h, col * w: (col + 1) * w]

        src, gt, copy, oracle = 0, 2, 3 + RUNS.index("copy-source"), 3 + RUNS.index("oracle")
        for k, f in enumerate(frames):
            assert np.array_equal(cell(f, oracle), cell(f, gt)), k  # lossless: pixel for pixel
            assert np.array_equal(cell(f, copy), cell(f, src)), k
            assert np.array_equal(cell(f, src), cell(frames[0], src))  # the source stays
        # the video moves (its last ground-truth frame is not its first), and the warp is no copy of it
        assert not np.array_equal(cell(frames[-1], gt), cell(frames[0], gt))
        assert not np.array_equal(cell(frames[-1], 3 + RUNS.index("keypoint-warp")), cell(frames[-1], gt))


def test_per_frame_curves_from_samples_and_sequences(report):
    out, manifest = report
    curves = _videos(manifest, "png")
    assert [c["meta"]["video"] for c in curves] == [a["meta"]["video"] for a in _videos(manifest, "webp")]
    for c in curves:
        png = Image.open(out / c["files"]["png"])
        assert list(png.size) == c["png_size"]
        assert (out / c["files"]["svg"]).is_file() and (out / c["files"]["pdf"]).is_file()
        with open(out / c["files"]["csv"], newline="") as f:
            rows = list(csv.DictReader(f))
        assert {r["metric"] for r in rows} == {"ssim", "flicker"} == set(c["meta"]["metrics"])
        assert len(rows) == 2 * len(RUNS) * FRAMES

        def values(run, metric):
            return [r["value"] for r in rows if r["run"] == run and r["metric"] == metric]

        assert values("oracle", "ssim") == ["1.0"] * FRAMES
        assert values("oracle", "flicker") == [""] + ["0.0"] * (FRAMES - 1)  # no transition into frame 1
        warp = [float(v) for v in values("keypoint-warp", "flicker")[1:]]
        assert all(v > 0 for v in warp)


def test_index_html_shows_the_videos(report):
    out, manifest = report

    class Refs(HTMLParser):
        def __init__(self):
            super().__init__()
            self.imgs, self.refs, self.tags = [], [], []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)
            a = dict(attrs)
            if tag == "img":
                self.imgs.append(a["src"])
            self.refs += [v for k, v in attrs if k in ("src", "href") and not v.startswith("#")]

    p = Refs()
    page = (out / "index.html").read_text()
    p.feed(page)
    assert '<section id="videos"><h2>Videos</h2>' in page and "script" not in p.tags
    for a in _videos(manifest, "webp"):
        assert a["files"]["webp"] in p.imgs and a["files"]["webp"].startswith("videos/")
    for c in _videos(manifest, "png"):
        assert c["files"]["png"] in p.imgs
    assert all((out / r).is_file() for r in p.refs)
    assert manifest["options"]["videos"] == 2 and manifest["options"]["video_fps"] == 12.5


def test_rebuilt_report_is_byte_identical(phoenix, report, tmp_path):
    out, manifest = report
    again = build_report(phoenix[1], tmp_path / "again", rows=2, videos=2, cell_height=64, log=lambda s: None)
    assert again["artefacts"] == manifest["artefacts"]
    for a in _videos(manifest, "webp") + _videos(manifest, "png"):
        for path in a["files"].values():
            assert (tmp_path / "again" / path).read_bytes() == (out / path).read_bytes(), path


def test_a_report_without_videos_is_unchanged(tmp_path):
    """A dataset whose pairs are no video frames: no Videos section, no videos/ folder, and every file
    byte for byte what --videos 0 writes."""
    root = make_fixture(tmp_path / "fixture")
    runs = []
    for m in ("copy-source", "keypoint-warp"):
        runs.append(tmp_path / m)
        run(RunConfig(model=m, dataset="fixture", data_root=str(root), out=str(runs[-1]), protocol="paired",
                      progress=False, workers=0), log=lambda s: None)
    a = build_report(runs, tmp_path / "a", rows=2, log=lambda s: None)
    b = build_report(runs, tmp_path / "b", rows=2, videos=0, log=lambda s: None)
    assert b["artefacts"] == a["artefacts"]
    assert not any(x["section"] == "videos" for x in a["artefacts"])
    assert not (tmp_path / "a" / "videos").exists() and "videos" not in a["options"]
    assert 'id="videos"' not in (tmp_path / "a" / "index.html").read_text()
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    assert json.loads((tmp_path / "a" / "report.json").read_text())["options"] == a["options"]


def test_a_pillow_without_webp_writes_gif(phoenix, tmp_path, monkeypatch):
    from PIL import features

    check = features.check
    monkeypatch.setattr(features, "check", lambda name: False if name == "webp" else check(name))
    manifest = build_report(phoenix[1], tmp_path / "gif", rows=2, videos=1, cell_height=32, log=lambda s: None)
    (anim,) = [a for a in manifest["artefacts"] if a["section"] == "videos" and "gif" in a["files"]]
    im = Image.open(tmp_path / "gif" / anim["files"]["gif"])
    assert im.format == "GIF" and im.n_frames == FRAMES and list(im.size) == anim["meta"]["size"]
    assert f'<img src="{anim["files"]["gif"]}"' in (tmp_path / "gif" / "index.html").read_text()
