"""`run`'s options are generated from RunConfig's fields: without flags they give RunConfig's own
defaults, and each flag sets its field (a generated option that defaulted otherwise would change
every run silently, as a --no-progress that was on by default once did)."""
import dataclasses

import pytest

from fpdm_bench.commands.options import config_values
from fpdm_bench.commands.run import run_cmd
from fpdm_bench.commands.sweep import sweep_cmd
from fpdm_bench.run_config import RunConfig


def parsed(cmd, args):
    with cmd.make_context(cmd.name, list(args), resilient_parsing=False) as ctx:
        return config_values(RunConfig, ctx.params)


def test_no_flags_give_the_dataclass_defaults():
    values = parsed(run_cmd, ["--model", "m", "--out", "o"])
    want = RunConfig(model="m", out="o", dataset="synthetic")  # the command line defaults the dataset
    for f in dataclasses.fields(RunConfig):
        if f.name == "device":  # None on the command line: cuda when available, resolved by the command
            assert values["device"] is None
            continue
        assert values[f.name] == getattr(want, f.name), f.name
    assert values["progress"] is True


@pytest.mark.parametrize("args, field, value", [
    (["--no-progress"], "progress", False), (["--skip-bad"], "skip_bad", True), (["--limit", "3"], "limit", 3),
    (["--size", "64x44"], "size", [64, 44]), (["--model-arg", "steps=2"], "model_args", {"steps": 2}),
    (["--weights", "fid-inception=x.pt"], "weights", {"fid-inception": "x.pt"}), (["--dtype", "bfloat16"], "dtype", "bfloat16")])
def test_each_flag_sets_its_field(args, field, value):
    assert parsed(run_cmd, ["--model", "m", "--out", "o", *args])[field] == value


def test_every_field_is_an_option_of_run_and_sweep_shares_its_subset():
    names = {p.name for p in run_cmd.params}
    for f in dataclasses.fields(RunConfig):
        assert (f.name in names) or ("no_" + f.name in names), f.name
    with sweep_cmd.make_context("sweep", ["--model", "m", "--perturb", "pose.jitter", "--out", "o"]) as ctx:
        values = config_values(RunConfig, ctx.params)
    assert values["progress"] is True and values["batch_size"] == RunConfig(model="", out="", dataset="").batch_size


def test_python_m_fpdm_bench_is_the_cli(tmp_path):
    """`python -m fpdm_bench` (and so `torchrun -m fpdm_bench`) runs the same CLI as `fpdm-bench`."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    res = subprocess.run([sys.executable, "-m", "fpdm_bench", "models", "--floors"], capture_output=True, text=True,
                         env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split()[:3] == ["copy-source", "oracle", "keypoint-warp"]
    bad = subprocess.run([sys.executable, "-m", "fpdm_bench", "run", "--model", "oracel", "--out", str(tmp_path / "x")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 2 and "did you mean" in bad.stderr.lower()
