"""torchrun on the CPU (gloo): two processes give the one-process results.json metrics and the
same sample files; independent --shard jobs merged afterwards give the same again."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fpdm_bench.models import MODELS
from fpdm_bench.runner import RunConfig, merge, run
from helpers import NoisyCopy, assert_same

if "noisy-copy" not in MODELS:
    MODELS.register("noisy-copy", NoisyCopy, "test model")

SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import conftest  # registers the fixture dataset
from helpers import NoisyCopy, assert_same
from fpdm_bench.models import MODELS
from fpdm_bench.runner import RunConfig, run

if "noisy-copy" not in MODELS:
    MODELS.register("noisy-copy", NoisyCopy)
res = run(RunConfig(model="noisy-copy", dataset="fixture", data_root={root!r}, out={out!r}, batch_size=2,
                    protocol="standard", progress=False, workers=1), log=lambda m: print(m, file=sys.stderr))
print("RESULT", res is not None)
"""


def _cfg(root, out, **kw):
    return RunConfig(**{**dict(model="noisy-copy", dataset="fixture", data_root=str(root), out=str(out), progress=False,
                               protocol="standard"), **kw})


@pytest.fixture
def one_thread():
    """As torchrun's ranks run (it sets OMP_NUM_THREADS=1): Inception's float sums depend on the
    thread count, which moves FID in the 7th digit."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _torchrun(fixture_root, tmp_path, out, nproc=2):
    script = tmp_path / "launch.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent), root=str(fixture_root), out=str(out)))
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
                           str(script)], capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_torchrun_two_processes_match_one(fixture_root, tmp_path, one_thread):
    out = tmp_path / "ddp"
    proc = _torchrun(fixture_root, tmp_path, out)
    assert proc.stdout.count("RESULT True") == 1 and proc.stdout.count("RESULT False") == 1  # rank 0 writes
    ddp = json.loads((out / "results.json").read_text())
    assert sorted(p.name for p in out.glob("samples*.jsonl")) == ["samples.shard-0-of-2.jsonl",
                                                                    "samples.shard-1-of-2.jsonl"]
    one = run(_cfg(fixture_root, tmp_path / "one", batch_size=5), log=lambda m: None)
    assert one["metrics"]["fid"]["value"] is not None
    assert_same(one, ddp)  # per-sample metrics exact, FID/KID to 1e-6 (helpers.assert_same says why)
    for p in (tmp_path / "one" / "samples").iterdir():
        assert p.read_bytes() == (out / "samples" / p.name).read_bytes()
    assert ddp["n"] == 12 and ddp["config"]["shard"] is None
    assert ddp["distributed"] == {"world_size": 2, "backend": "gloo"} and "distributed" not in one

    # independent shard jobs (a SLURM array), merged afterwards
    arr = tmp_path / "array"
    for i in range(3):
        assert run(_cfg(fixture_root, arr, shard=f"{i}/3", batch_size=3), log=lambda m: None) is None or i == 2
    (arr / "results.json").unlink()
    merged = merge(arr, log=lambda m: None)
    assert_same(one, merged)


@pytest.mark.slow
def test_torchrun_finishes_a_run_begun_with_another_layout(fixture_root, tmp_path, one_thread):
    """Pairs finished by an earlier `--shard 0/3` job count as done under torchrun, and rank 0 still
    gets every record (each rank sends its stride of pairs, whichever file holds them)."""
    out = tmp_path / "mixed"
    assert run(_cfg(fixture_root, out, shard="0/3", batch_size=2), log=lambda m: None) is None
    _torchrun(fixture_root, tmp_path, out)
    mixed = json.loads((out / "results.json").read_text())
    one = run(_cfg(fixture_root, tmp_path / "one", batch_size=5), log=lambda m: None)
    assert mixed["n"] == 12
    assert_same(one, mixed)


def test_a_launchers_single_process_joins_a_process_group(monkeypatch):
    """torchrun --nproc_per_node 1 takes the distributed path (process group, gather), so one GPU
    exercises NCCL as eight do; a plain run (no RANK / WORLD_SIZE) does not."""
    from fpdm_bench import distributed

    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.context() is None
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    ctx = distributed.context()
    assert (ctx.rank, ctx.world, ctx.local_rank) == (0, 1, 0)


@pytest.mark.slow
def test_torchrun_one_process_records_its_backend(fixture_root, tmp_path, one_thread):
    out = tmp_path / "single"
    proc = _torchrun(fixture_root, tmp_path, out, nproc=1)
    assert proc.stdout.count("RESULT True") == 1
    res = json.loads((out / "results.json").read_text())
    assert res["distributed"] == {"world_size": 1, "backend": "gloo"} and res["n"] == 12
