"""Small foundations: the torchvision shim, registries, per-sample seeds, atomic writes, the CLI."""
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

from fpdm_bench import _tv_shim
from fpdm_bench.cli import main
from fpdm_bench.io import atomic_write_text
from fpdm_bench.registry import Registry, UnknownName
from fpdm_bench.seeding import make_generators, sample_seed


def test_shim_state_matches_what_torchvision_needs():
    import torchvision  # noqa: F401  (must import at all)
    import torchvision.models

    assert _tv_shim.state in ("shimmed", "real-ops")
    net = torchvision.models.alexnet()
    assert net(torch.zeros(1, 3, 64, 64)).shape == (1, 1000)


def test_shim_does_nothing_when_the_real_ops_are_present():
    # A fresh interpreter that defines the ops itself first (as the real ops library would) must
    # leave them untouched and report "real-ops".
    code = (
        "import torch\n"
        "lib = torch.library.Library('torchvision', 'DEF')\n"
        "lib.define('nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')\n"
        "lib.define('qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')\n"
        "import fpdm_bench._tv_shim as s\n"
        "print(s.state, s._lib is None)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["real-ops", "True"]


def test_registry_did_you_mean_and_lazy_import():
    r = Registry("widget")
    r.register("alpha-beta", "json:dumps", "a lazily imported thing")
    assert r.names() == ["alpha-beta"]
    with pytest.raises(UnknownName, match="Did you mean 'alpha-beta'"):
        r.get("alpha-betta")
    import json

    assert r.get("alpha-beta") is json.dumps
    with pytest.raises(ValueError):
        r.register("alpha-beta", "json:loads")


def test_sample_seed_depends_only_on_run_seed_and_pair():
    assert sample_seed(0, "a_2_b") == sample_seed(0, "a_2_b")
    assert sample_seed(0, "a_2_b") != sample_seed(1, "a_2_b")
    assert sample_seed(0, "a_2_b") != sample_seed(0, "a_2_c")
    g1 = make_generators(3, ["x", "y"])
    g2 = make_generators(3, ["y"])
    assert torch.equal(torch.rand(4, generator=g1[1]), torch.rand(4, generator=g2[0]))


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    p = tmp_path / "r.json"
    atomic_write_text(p, "old")
    import os

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(p, "new")
    assert p.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["r.json"]


def test_cli_lists_and_helps():
    runner = CliRunner()
    res = runner.invoke(main, ["models"])
    assert res.exit_code == 0 and "keypoint-warp" in res.output and "oracle" in res.output
    res = runner.invoke(main, ["datasets"])
    assert res.exit_code == 0 and "synthetic" in res.output and "phoenix" in res.output
    res = runner.invoke(main, ["run", "--help"])
    assert res.exit_code == 0 and "--shard" in res.output and "resumes" in res.output


def test_cli_run_from_yaml_config_and_flag_override(fixture_root, tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"model: copy-source\ndataset: fixture\ndata_root: {fixture_root}\nlimit: 3\n")
    res = CliRunner().invoke(main, ["run", "--config", str(cfg), "--out", str(tmp_path / "o"), "--model", "oracle",
                                    "--no-progress"])
    assert res.exit_code == 0, res.output
    import json

    results = json.loads((tmp_path / "o" / "results.json").read_text())
    assert results["config"]["model"] == "oracle" and results["config"]["limit"] == 3 and results["n"] == 3


def test_cli_errors_are_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "fpdm_bench.cli", "run", "--model", "oracel", "--out",
                          str(tmp_path / "x")], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip().startswith("error: unknown model 'oracel'. Did you mean 'oracle'")  # closest first
    assert "Traceback" not in out.stderr
