"""No work is done twice: a finished run is read, not rerun; a resumed run extracts features only
for its new samples; a second process on the same shard is refused; stale locks are taken over."""
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from fpdm_bench.lock import LockHeld, ShardLock
from fpdm_bench.models import MODELS
from fpdm_bench.runner import RunConfig, run
from fpdm_bench.scoring import Scorer
from helpers import NoisyCopy, assert_same, slow_run_script

if "noisy-copy" not in MODELS:
    MODELS.register("noisy-copy", NoisyCopy, "test model")

QUIET = dict(log=lambda m: None)


def _cfg(root, out, **kw):
    base = dict(model="noisy-copy", dataset="fixture", data_root=str(root), out=str(out), progress=False,
                protocol="paired")
    base.update(kw)
    return RunConfig(**base)


def test_rerunning_a_finished_run_loads_nothing(fixture_root, tmp_path, monkeypatch):
    first = run(_cfg(fixture_root, tmp_path / "r"), **QUIET)
    before = (tmp_path / "r" / "results.json").read_bytes()

    def no_model(*a, **k):
        raise AssertionError("the model was loaded again")

    monkeypatch.setattr("fpdm_bench.models.load_model", no_model)
    again = run(_cfg(fixture_root, tmp_path / "r"), **QUIET)
    assert again["metrics"] == json.loads(json.dumps(first["metrics"]))
    assert (tmp_path / "r" / "results.json").read_bytes() == before
    with pytest.raises(Exception, match="different run"):  # a changed command is still refused
        run(_cfg(fixture_root, tmp_path / "r", seed=3), **QUIET)


@pytest.mark.slow
def test_resume_extracts_features_only_for_new_samples(fixture_root, tmp_path, monkeypatch):
    """The set metrics' features are stored per sample: a resume runs Inception on the new images
    only, and gives the uninterrupted run's FID/KID (same features, folded in dataset order; see
    assert_same for why the set metrics get 1e-6)."""
    out = tmp_path / "f"
    straight = run(_cfg(fixture_root, out, protocol="standard"), **QUIET)
    assert straight["metrics"]["fid"]["value"] is not None
    jsonl = out / "samples.jsonl"
    jsonl.write_text("".join(jsonl.read_text().splitlines(keepends=True)[:5]))  # as if killed after 5
    (out / "results.json").unlink()
    seen = []
    real = Scorer.set_features

    def counting(self, generated, prepared=False):
        seen.append(len(generated))
        return real(self, generated, prepared)

    monkeypatch.setattr(Scorer, "set_features", counting)
    resumed = run(_cfg(fixture_root, out, protocol="standard"), **QUIET)
    assert sum(seen) == 7  # the 7 regenerated samples, nothing re-read from samples/
    assert_same(resumed, straight)
    rows = {json.loads(x)["features"]["fid-inception"] for x in jsonl.read_text().splitlines()}
    assert len(rows) == 12  # each record points at its own row (orphan rows of the cut lines are skipped)


class Slow(NoisyCopy):
    pass


def test_a_second_launch_on_the_same_shard_is_refused(fixture_root, tmp_path):
    out = tmp_path / "twice"
    script = slow_run_script(fixture_root, out, sleep=0.4, protocol="paired", workers=0)
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.time() + 60
        while not (out / "samples.lock").exists():
            assert proc.poll() is None and time.time() < deadline, "the first run did not start"
            time.sleep(0.05)
        if "slow-noisy-copy" not in MODELS:
            MODELS.register("slow-noisy-copy", Slow)
        with pytest.raises(LockHeld, match=rf"being run by pid {proc.pid} on {socket.gethostname()}"):
            run(_cfg(fixture_root, out, model="slow-noisy-copy", batch_size=1, workers=0), **QUIET)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = (out / "samples.jsonl").read_text().splitlines()
    assert len(lines) == len({json.loads(x)["pair_id"] for x in lines}) == 12  # each pair once
    assert not (out / "samples.lock").exists()  # released at the end


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_locks_are_taken_over_and_live_ones_are_not(tmp_path):
    lock = tmp_path / "samples.lock"
    # a killed process on this host
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": _dead_pid(), "token": "old"}))
    with ShardLock(lock, "run") as held:
        assert held.taken_over["token"] == "old"
        assert json.loads(lock.read_text())["pid"] == os.getpid()
        with pytest.raises(LockHeld, match=f"pid {os.getpid()}"):  # and it is ours now
            ShardLock(lock, "run").acquire()
    assert not lock.exists()
    # another node: judged by the heartbeat's age
    lock.write_text(json.dumps({"host": "node-17", "pid": 1, "token": "remote"}))
    with pytest.raises(LockHeld, match="node-17"):
        ShardLock(lock, "run", stale_after=60).acquire()
    old = time.time() - 120
    os.utime(lock, (old, old))
    with ShardLock(lock, "run", stale_after=60) as held:
        assert held.taken_over["host"] == "node-17"


def test_the_lock_heartbeat_keeps_it_fresh(tmp_path):
    lock = tmp_path / "samples.lock"
    with ShardLock(lock, "run", heartbeat=0.05):
        old = time.time() - 1000
        os.utime(lock, (old, old))
        time.sleep(0.3)
        assert time.time() - lock.stat().st_mtime < 5
