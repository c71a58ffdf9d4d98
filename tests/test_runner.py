"""The run path: ceiling scores, resume after SIGKILL, batch-size / shard invariance, refusals."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from fpdm_bench.errors import BenchError
from fpdm_bench.models import MODELS
from fpdm_bench.runner import RunConfig, read_records, run
from helpers import NoisyCopy, assert_same, slow_run_script


if "noisy-copy" not in MODELS:
    MODELS.register("noisy-copy", NoisyCopy, "test model")


def _cfg(root, out, **kw):
    """A run on the fixture set; protocol paired (no Inception) unless a test needs set metrics."""
    base = dict(model="noisy-copy", dataset="fixture", data_root=str(root), out=str(out), progress=False,
                protocol="paired")
    base.update(kw)
    return RunConfig(**base)


def _metrics(res):
    return {k: v["value"] for k, v in res["metrics"].items()}


def test_oracle_is_the_ceiling(fixture_root, tmp_path):
    res = run(_cfg(fixture_root, tmp_path / "o", model="oracle"), log=lambda m: None)
    assert res["metrics"]["ssim"]["value"] == pytest.approx(1.0, abs=1e-6)
    assert res["metrics"]["mae"]["value"] == 0.0
    assert res["n"] == 12


def test_copy_source_scores_below_oracle(fixture_root, tmp_path):
    res = run(_cfg(fixture_root, tmp_path / "c", model="copy-source"), log=lambda m: None)
    assert res["metrics"]["ssim"]["value"] < 0.5
    assert res["metrics"]["mae"]["value"] > 0.1
    lo, hi = res["metrics"]["mae"]["ci95"]
    assert lo <= res["metrics"]["mae"]["value"] <= hi


@pytest.mark.slow
def test_batch_size_and_shards_do_not_change_results(fixture_root, tmp_path):
    """Images and per-sample metrics bit-identical, guaranteed here: a model whose per-sample output
    does not depend on the batch (NoisyCopy); FID/KID as assert_same says."""
    std = dict(protocol="standard")
    one = run(_cfg(fixture_root, tmp_path / "b1", batch_size=1, **std), log=lambda m: None)
    eight = run(_cfg(fixture_root, tmp_path / "b8", batch_size=8, **std), log=lambda m: None)
    assert_same(one, eight)
    assert one["metrics"]["fid"]["value"] is not None
    sharded = tmp_path / "sh"
    assert run(_cfg(fixture_root, sharded, shard="0/2", batch_size=3, **std), log=lambda m: None) is None
    both = run(_cfg(fixture_root, sharded, shard="1/2", batch_size=5, **std), log=lambda m: None)
    assert_same(both, one)
    # strided shards never duplicate a pair
    lines = [json.loads(x)["pair_id"] for p in sharded.glob("samples*.jsonl") for x in p.read_text().splitlines()]
    assert len(lines) == len(set(lines)) == 12
    # the images themselves are identical
    for p in (tmp_path / "b1" / "samples").iterdir():
        assert p.read_bytes() == (tmp_path / "b8" / "samples" / p.name).read_bytes()


def test_different_seed_changes_images(fixture_root, tmp_path):
    a = run(_cfg(fixture_root, tmp_path / "s0", seed=0), log=lambda m: None)
    b = run(_cfg(fixture_root, tmp_path / "s1", seed=1), log=lambda m: None)
    assert _metrics(a) != _metrics(b)


def test_rerun_with_other_settings_is_refused(fixture_root, tmp_path):
    run(_cfg(fixture_root, tmp_path / "r"), log=lambda m: None)
    before = (tmp_path / "r" / "results.json").read_bytes()
    with pytest.raises(BenchError, match="different run"):
        run(_cfg(fixture_root, tmp_path / "r", seed=5), log=lambda m: None)
    assert (tmp_path / "r" / "results.json").read_bytes() == before


@pytest.mark.slow
def test_torn_jsonl_line_is_dropped_and_regenerated(fixture_root, tmp_path):
    out = tmp_path / "t"
    ref = run(_cfg(fixture_root, out, protocol="standard"), log=lambda m: None)
    jsonl = out / "samples.jsonl"
    lines = jsonl.read_text().splitlines(keepends=True)
    jsonl.write_text("".join(lines[:5]) + lines[5][:20])  # as if killed mid-write
    (out / "results.json").unlink()
    assert len(read_records(out)) == 5
    again = run(_cfg(fixture_root, out, protocol="standard"), log=lambda m: None)
    assert_same(again, ref)  # the kept samples' stored features, the others regenerated
    assert len(jsonl.read_text().splitlines()) == 12


@pytest.mark.slow
def test_sigkill_half_way_then_resume_gives_same_results(fixture_root, tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", slow_run_script(fixture_root, out)], start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            jsonl = out / "samples.jsonl"
            if jsonl.exists() and len(jsonl.read_text().splitlines()) >= 5:
                break
            assert proc.poll() is None, "the slow run ended before it could be killed"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    done = len(read_records(out))
    assert 5 <= done < 12 and not (out / "results.json").exists()

    class Slow(NoisyCopy):  # the class the subprocess subclassed
        pass

    if "slow-noisy-copy" not in MODELS:
        MODELS.register("slow-noisy-copy", Slow)
    std = dict(model="slow-noisy-copy", protocol="standard")  # as the killed subprocess ran it
    resumed = run(_cfg(fixture_root, out, **std), log=lambda m: None)
    straight = run(_cfg(fixture_root, tmp_path / "straight", **std), log=lambda m: None)
    assert_same(resumed, straight)
    assert resumed["n"] == 12


def test_unknown_model_suggests(fixture_root, tmp_path):
    with pytest.raises(Exception, match="Did you mean 'copy-source'"):
        run(_cfg(fixture_root, tmp_path / "u", model="copy-sourse"), log=lambda m: None)


@pytest.mark.slow
def test_diffusion_model_batch_size_changes_images_at_most_by_rounding(tmp_path):
    """What is guaranteed for a diffusion model: identical noise per sample (one generator each), so
    batch 1 and batch 4 give the same images up to float32 summation order in batched convolutions:
    at most one 8-bit level on a few pixels. `compare` (default tolerance) calls that no change."""
    import numpy as np
    from click.testing import CliRunner
    from PIL import Image

    from conftest import make_fixture
    from fpdm_bench.commands.compare import compare_cmd

    root = make_fixture(tmp_path / "fx", n_images=6, size=(64, 44), seed=3)
    runs = {b: run(_cfg(root, tmp_path / f"b{b}", model="fpdm", batch_size=b, limit=8, protocol="paired"),
                   log=lambda m: None) for b in (1, 4)}
    seeds = [{json.loads(x)["pair_id"]: json.loads(x)["seed"] for x in (tmp_path / f"b{b}" / "samples.jsonl")
              .read_text().splitlines()} for b in (1, 4)]
    assert seeds[0] == seeds[1]
    differing = 0
    for p in (tmp_path / "b1" / "samples").iterdir():
        a = np.asarray(Image.open(p), np.int16)
        b = np.asarray(Image.open(tmp_path / "b4" / "samples" / p.name), np.int16)
        assert np.abs(a - b).max() <= 1
        differing += int((a != b).any(-1).sum())
    assert differing <= 0.01 * 8 * 64 * 44  # a handful of pixels, not a different image
    res = CliRunner().invoke(compare_cmd, [str(tmp_path / "b1"), str(tmp_path / "b4")])
    assert res.exit_code == 0, res.output
    for k, v in runs[1]["metrics"].items():
        assert v["value"] == pytest.approx(runs[4]["metrics"][k]["value"], rel=1e-4, abs=1e-6)


def test_skipped_pairs_do_not_shift_the_remainder_drop(fixture_root, tmp_path):
    """With --skip-bad, a remainder is dropped from the pairs actually scored, once."""
    from fpdm_bench.protocols import PROTOCOLS, Protocol, register

    if "drop5" not in PROTOCOLS:
        register(Protocol(name="drop5", description="test: l1 over batches of 5", source="test",
                          metrics={"l1": {"drop_remainder": 5}}))
    bad = fixture_root / "img" / "im003.png"
    bad.write_bytes(bad.read_bytes()[:60])  # truncated: the 4 pairs using im003 are skipped
    res = run(_cfg(fixture_root, tmp_path / "s", protocol="drop5", skip_bad=True), log=lambda m: None)
    assert len(res["skipped"]) == 4 and res["n"] == 8
    assert res["metrics"]["l1"]["n"] == 5 and res["metrics"]["l1"]["dropped"] == 3


def test_settings_refused_before_anything_is_written(tmp_path):
    """A protocol that cannot score the data stops the run before config.json exists, so the corrected
    command (here --allow-upsampled) is not refused as 'a different run'."""
    from conftest import make_fixture
    from fpdm_bench.errors import DataError
    from fpdm_bench.protocols import PROTOCOLS, Protocol, register

    if "big-eval" not in PROTOCOLS:
        register(Protocol(name="big-eval", description="test: eval at 64x48", source="test", eval_size=(64, 48),
                          metrics={"mae": {}}))
    root = make_fixture(tmp_path / "fx", size=(32, 24))
    out = tmp_path / "r"
    with pytest.raises(DataError, match="--allow-upsampled"):
        run(_cfg(root, out, protocol="big-eval"), log=lambda m: None)
    assert not (out / "config.json").exists()
    res = run(_cfg(root, out, protocol="big-eval", allow_upsampled=True), log=lambda m: None)
    assert res["protocol"]["real_images"]["ground_truth"]["upsampled"] == 6


def test_an_argument_the_model_does_not_take_is_one_clear_error(fixture_root, tmp_path):
    from fpdm_bench.errors import BenchError

    with pytest.raises(BenchError, match="model 'copy-source' takes no argument 'steps'. It takes: none"):
        run(_cfg(fixture_root, tmp_path / "a", model="copy-source", model_args={"steps": 3}), log=lambda m: None)
    with pytest.raises(BenchError, match="takes no argument 'sourc_strength'. Did you mean 'source_strength'"):
        run(_cfg(fixture_root, tmp_path / "b", model="fpdm", model_args={"sourc_strength": 0.2}), log=lambda m: None)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # refused before anything is written
