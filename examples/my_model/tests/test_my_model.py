"""The template model's own test: run it through fpdm-bench on a few pairs of the embedded set."""
import json
import subprocess
import sys

import torch


def test_shift_moves_the_source_onto_the_target_centre():
    from my_model.adapter import MyModel

    src = torch.zeros(1, 3, 16, 12)
    src[0, :, 4, 3] = 1
    kp_s = torch.tensor([[[3.0, 4.0], [float("nan"), float("nan")]]])
    kp_t = torch.tensor([[[5.0, 7.0], [2.0, 2.0]]])
    out = MyModel().generate({"source": src, "source_kp": kp_s, "target_kp": kp_t}, [torch.Generator()])
    assert out[0, 0, 7, 5] == 1 and out.sum() == 3  # moved by (dx 2, dy 3), nothing else changed


def test_runs_in_fpdm_bench(tmp_path):
    cmd = [sys.executable, "-m", "fpdm_bench.cli", "run", "--model", "my-model", "--dataset", "synthetic",
           "--limit", "4", "--protocol", "paired", "--out", str(tmp_path / "run"), "--no-progress"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["model"]["name"] == "my-model" and results["n"] == 4
    assert 0 < results["metrics"]["ssim"]["value"] < 1
