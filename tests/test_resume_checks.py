"""A resume checks the samples it reuses; skipped and unmatched files are reported; long waits say so;
`make regress` tells a regression from a refusal (issue 25, items 3 and 4)."""
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fpdm_bench.models import MODELS
from fpdm_bench.protocols import PROTOCOLS, Protocol, register
from fpdm_bench.runner import RunConfig, read_records, run
from helpers import NoisyCopy, TinyFeatures

if "noisy-copy" not in MODELS:
    MODELS.register("noisy-copy", NoisyCopy, "test model")
if "t-resume" not in PROTOCOLS:  # paired metrics + FID through TinyFeatures: stored feature rows, in seconds
    register(Protocol(name="t-resume", description="test: mae + FID", source="test",
                      metrics={"fid": {}, "mae": {"variant": "mean_abs"}}))

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def tiny_fid(monkeypatch, tmp_path):
    from fpdm_bench.metrics import inception

    tiny = TinyFeatures()
    monkeypatch.setattr(inception, "build", lambda backbone, path=None, device="cpu": tiny)
    monkeypatch.setenv("FPDM_BENCH_CACHE", str(tmp_path / "cache"))  # a cold cache


def _cfg(root, out, **kw):
    base = dict(model="noisy-copy", dataset="fixture", data_root=str(root), out=str(out), progress=False,
                protocol="t-resume", workers=0)
    return RunConfig(**{**base, **kw})


def _values(res):
    return {k: v["value"] for k, v in res["metrics"].items()}


def _resume(root, out):
    (out / "results.json").unlink()
    msgs = []
    return run(_cfg(root, out), log=msgs.append), msgs


def test_resume_regenerates_a_truncated_png_and_a_changed_feature_row(fixture_root, tmp_path, tiny_fid):
    ref = run(_cfg(fixture_root, tmp_path / "ref"), log=lambda m: None)
    out = tmp_path / "r"
    run(_cfg(fixture_root, out), log=lambda m: None)
    recs = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    png = out / "samples" / f"{recs[3]['pair_id']}.png"
    png.write_bytes(png.read_bytes()[:50])  # truncated between runs
    again, msgs = _resume(fixture_root, out)
    assert [m for m in msgs if m.startswith("resume:")] == [
        f"resume: 1 sample failed its check (samples/{png.name}: checksum mismatch) and is generated again"]
    assert png.read_bytes() == (tmp_path / "ref" / "samples" / png.name).read_bytes()
    assert _values(again) == _values(ref) and again["n"] == 12
    assert read_records(out)[recs[3]["pair_id"]]["regenerated"].endswith("checksum mismatch")
    assert all(len(r["png_sha256"]) == 64 and r["features_sha256"] for r in recs)

    # a changed feature row (FID would silently move) is caught the same way
    rec = recs[5]
    group, row = next(iter(rec["features"].items()))
    path = out / "features" / f"{group}.samples.f32"
    d = json.loads((out / "features" / f"{group}.json").read_text())["dims"]
    rows = np.fromfile(path, np.float32).reshape(-1, d)
    rows[row] += 1.0
    rows.tofile(path)
    again, msgs = _resume(fixture_root, out)
    assert any("row" in m and "checksum mismatch" in m and "is generated again" in m for m in msgs), msgs
    assert _values(again) == _values(ref)
    # nothing left to regenerate: a third resume reuses everything
    again, msgs = _resume(fixture_root, out)
    assert not [m for m in msgs if m.startswith("resume:")] and _values(again) == _values(ref)


def test_missing_png_is_regenerated_and_lines_without_checksums_are_accepted(fixture_root, tmp_path):
    out = tmp_path / "p"
    ref = run(_cfg(fixture_root, out, protocol="paired"), log=lambda m: None)
    jsonl = out / "samples.jsonl"
    recs = [json.loads(x) for x in jsonl.read_text().splitlines()]
    old = [{k: v for k, v in r.items() if k != "png_sha256"} for r in recs]  # as an older version wrote them
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in old))
    (out / "samples" / f"{recs[0]['pair_id']}.png").unlink()
    png = out / "samples" / f"{recs[1]['pair_id']}.png"
    png.write_bytes(png.read_bytes()[:50])  # no checksum to catch it: accepted as before
    (out / "results.json").unlink()
    msgs = []
    again = run(_cfg(fixture_root, out, protocol="paired"), log=msgs.append)
    assert f"(samples/{recs[0]['pair_id']}.png: missing)" in " ".join(msgs)
    assert _values(again) == _values(ref)
    assert len(jsonl.read_text().splitlines()) == 13


def test_skip_bad_pairs_are_printed_at_the_end(fixture_root, tmp_path):
    im = fixture_root / "img" / "im003.png"
    im.write_bytes(im.read_bytes()[:40])
    msgs = []
    res = run(_cfg(fixture_root, tmp_path / "sb", protocol="paired", skip_bad=True), log=msgs.append)
    assert len(res["skipped"]) == 4
    line = msgs[-1]
    assert line.startswith("4 pairs skipped, not scored (listed in results.json): ")
    assert f"{res['skipped'][0]['pair_id']}, " in line and f", ... (e.g. {res['skipped'][0]['reason']})" in line


def test_run_says_what_it_waits_for(fixture_root, tmp_path, tiny_fid):
    msgs = []
    run(_cfg(fixture_root, tmp_path / "w"), log=msgs.append)
    assert "loading model noisy-copy ..." in msgs
    assert any(m.startswith("reference statistics: ") for m in msgs), msgs


def test_score_notes_generated_files_that_match_no_pair(fixture_root, tmp_path):
    from fpdm_bench.commands.score import score_dataset, score_folders
    from conftest import open_manifest

    out = tmp_path / "g"
    run(_cfg(fixture_root, out, protocol="paired"), log=lambda m: None)
    gen = out / "samples"
    shutil.copy(next(gen.iterdir()), gen / "stray.png")
    msgs = []
    res = score_dataset(open_manifest(fixture_root), gen, "paired", log=msgs.append)
    assert res["n"] == 12
    assert msgs == [f"note: {gen}: 1 of its 13 images match no pair of the test split and are not scored "
                    f"(e.g. stray.png)"]
    real = tmp_path / "real"
    real.mkdir()
    for f in sorted(gen.iterdir())[:3]:
        if f.name != "stray.png":
            shutil.copy(f, real / f.name)
    msgs = []
    score_folders(real, gen, "paired", log=msgs.append)
    assert len(msgs) == 1 and msgs[0].startswith(f"note: {gen}: 10 of its 13 images match no real image's name")


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_make_regress_records_compares_own_status(fixture_root, tmp_path):
    """make exits 2 on any failed recipe, so compare's 1 (regression) vs 2 (refused) travels in REGRESS_STATUS."""
    for m in ("oracle", "copy-source"):
        run(_cfg(fixture_root, tmp_path / m, model=m, protocol="paired"), log=lambda m: None)
    status = tmp_path / "status"
    for new, want in (("oracle", 0), ("copy-source", 1), ("nonexistent", 2)):
        proc = subprocess.run(["make", "-s", "-o", ".venv/.installed", "regress", f"BASE={tmp_path / 'oracle'}",
                               f"NEW={tmp_path / new}", f"REGRESS_STATUS={status}"], cwd=REPO, capture_output=True,
                              text=True)
        assert proc.returncode == (0 if want == 0 else 2), proc.stderr
        assert status.read_text().strip() == str(want)
        if want:
            assert f"compare exit status {want}" in proc.stderr
