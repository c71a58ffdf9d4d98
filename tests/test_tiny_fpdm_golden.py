"""Golden tests of the shipped tiny FPDM checkpoints (as diffusers' ``expected_slice`` tests).

The expected values (tests/fixtures/tiny_fpdm_golden*.json, "made_by" in each says how) were written
by tools/make_tiny_fpdm_golden.py when the checkpoints were shipped: the first 4 test pairs of each
embedded set, their per-sample metrics and a 4x4 pixel patch of each generated PNG. A change to the
sampler, a checkpoint, the dataset generator or the paired metrics shows up here.

Tolerances: two 8-bit levels on the pixels and 2e-3 on the metrics. The images come from 20 float32
denoising steps whose sums run in an order that depends on the CPU's kernels and thread count, which
moves a few pixels by a level (see test_runner's batch-size test); a real change of the model moves
them by far more.
"""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fpdm_bench.runner import RunConfig, run

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["tiny_fpdm_golden.json", "tiny_fpdm_phoenix_golden.json"])
def test_shipped_tiny_fpdm_reproduces_its_stored_outputs(tmp_path, fixture):
    GOLDEN = json.loads((FIXTURES / fixture).read_text())
    dataset = GOLDEN["dataset"]
    out = tmp_path / "run"
    # no --checkpoint: the adapter picks the dataset's shipped checkpoint
    res = run(RunConfig(model="fpdm", dataset=dataset, data_root=str(tmp_path / dataset), out=str(out),
                        limit=4, batch_size=4, protocol="paired", progress=False), log=lambda m: None)
    rows = {json.loads(x)["pair_id"]: json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()}
    assert list(rows) == [p["pair_id"] for p in GOLDEN["pairs"]]
    for want in GOLDEN["pairs"]:
        got = rows[want["pair_id"]]
        assert got["seed"] == want["seed"]
        for k, v in want["metrics"].items():
            assert got["metrics"][k] == pytest.approx(v, abs=2e-3), (want["pair_id"], k)
        y, x = want["patch_yx"]
        patch = np.asarray(Image.open(out / "samples" / f"{want['pair_id']}.png"), np.int16)[y:y + 4, x:x + 4]
        assert np.abs(patch - np.asarray(want["patch"], np.int16)).max() <= 2, want["pair_id"]
    assert res["n"] == 4
    assert Path(res["model"]["checkpoint"]).name == ("tiny-phoenix" if "phoenix" in dataset else "tiny")
