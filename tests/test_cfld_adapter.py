"""The ``cfld`` adapter through the runner, on a released-format folder of the tiny official build
(tests/fixtures/cfld): per-pair noise (batch 1 = batch 2), sizes, NFE and hashes, clear errors."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fpdm_bench.errors import BenchError
from fpdm_bench.runner import RunConfig, run
from fpdm_bench_baselines.cfld.adapter import CFLDAdapter
from helpers import cfld_tiny_folder


def test_runs_through_the_runner_with_per_pair_noise(fixture_root, tmp_path):
    ck = cfld_tiny_folder(tmp_path / "cfld")
    res = {}
    for b in (1, 2):
        res[b] = run(RunConfig(model="cfld", dataset="fixture", data_root=str(fixture_root), out=str(tmp_path / f"b{b}"),
                               checkpoint=str(ck), model_args={"steps": 2}, batch_size=b, limit=2, progress=False,
                               protocol="paired"), log=lambda m: None)
    imgs = [{p.name: np.asarray(Image.open(p), np.int16) for p in (tmp_path / f"b{b}" / "samples").iterdir()}
            for b in (1, 2)]
    assert imgs[0].keys() == imgs[1].keys() and len(imgs[0]) == 2
    assert max(int(np.abs(imgs[0][k] - imgs[1][k]).max()) for k in imgs[0]) <= 1  # batched-conv rounding at most
    assert all(v.shape == (32, 24, 3) for v in imgs[0].values())
    model = res[1]["model"]
    assert model["nfe"] == 7 and model["scheduler"] == "ddpm" and model["resolution"] == [128, 128]
    assert len(model["checkpoint_sha256"]) == 64


def test_errors_are_one_line(tmp_path):
    with pytest.raises(BenchError, match="unknown scheduler 'dpm' .expected one of ddpm, ddim"):
        CFLDAdapter.from_pretrained(str(tmp_path), scheduler="dpm")
    with pytest.raises(BenchError, match="pytorch_model.bin missing"):
        CFLDAdapter.from_pretrained(str(tmp_path))
