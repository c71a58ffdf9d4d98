"""Golden test of the shipped tiny FPDM checkpoint (as diffusers' ``expected_slice`` tests).

The expected values (tests/fixtures/tiny_fpdm_golden.json) were written by fpdm-bench at commit
a751649, before the metric layer was reshaped: the first 4 test pairs of the embedded synthetic set,
their per-sample metrics and a 4x4 pixel patch of each generated PNG. A change to the sampler, the
checkpoint, the dataset generator or the paired metrics shows up here.

Tolerances: one 8-bit level on the pixels and 1e-3 on the metrics. The images come from 20 float32
denoising steps whose convolutions sum in an order that depends on the batch size (batch 8 there,
4 here) and on the CPU's kernels, which moves a few pixels by one level (see test_runner's
batch-size test); a real change of the model moves them by far more.
"""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fpdm_bench.runner import RunConfig, run

GOLDEN = json.loads((Path(__file__).parent / "fixtures" / "tiny_fpdm_golden.json").read_text())


@pytest.mark.slow
def test_shipped_tiny_fpdm_reproduces_its_stored_outputs(tmp_path):
    out = tmp_path / "run"
    res = run(RunConfig(model="fpdm", dataset="synthetic", data_root=str(tmp_path / "synthetic"), out=str(out),
                        limit=4, batch_size=4, protocol="paired", progress=False), log=lambda m: None)
    rows = {json.loads(x)["pair_id"]: json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()}
    assert list(rows) == [p["pair_id"] for p in GOLDEN["pairs"]]
    for want in GOLDEN["pairs"]:
        got = rows[want["pair_id"]]
        assert got["seed"] == want["seed"]
        for k, v in want["metrics"].items():
            assert got["metrics"][k] == pytest.approx(v, abs=1e-3), (want["pair_id"], k)
        y, x = want["patch_yx"]
        patch = np.asarray(Image.open(out / "samples" / f"{want['pair_id']}.png"), np.int16)[y:y + 4, x:x + 4]
        assert np.abs(patch - np.asarray(want["patch"], np.int16)).max() <= 1, want["pair_id"]
    assert res["n"] == 4
