"""Training a PIDM: an interrupted run resumes to the same weights, and its folder is a checkpoint the adapter runs."""
from __future__ import annotations

import pytest
import torch

from fpdm_bench.data import open_dataset
from fpdm_bench_baselines.pidm.adapter import PIDMAdapter
from fpdm_bench_baselines.pidm.checkpoint import load_pretrained
from fpdm_bench_baselines.pidm.train import load_config, train_pidm

MICRO = ["pidm.image_size=32", "pidm.model_channels=8", "pidm.embed_channels=16", "pidm.channel_mult=[1,2]",
         "pidm.num_res_blocks=1", "pidm.attention_resolutions=[16]", "canvas=[32,24]", "train.batch_size=4",
         "train.checkpoint_every=2", "train.warmup_steps=0", "train.keep_checkpoint=true", "sampling.steps=2"]


@pytest.mark.slow
def test_resume_continues_to_the_same_weights(fixture_root, tmp_path):
    ds = open_dataset("fixture", root=fixture_root)
    cfg = load_config("tiny", MICRO)
    straight = train_pidm(cfg, ds, tmp_path / "a", max_steps=4, progress=False)
    train_pidm(cfg, ds, tmp_path / "b", max_steps=2, progress=False)
    resumed = train_pidm(cfg, ds, tmp_path / "b", max_steps=4, progress=False)
    assert straight["steps"] == resumed["steps"] == 4
    a, meta = load_pretrained(tmp_path / "a")
    b, _ = load_pretrained(tmp_path / "b")
    # same process, same operations in the same order: bit-identical
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert meta["canvas"] == [32, 24] and meta["sampling"]["steps"] == 2
    assert (tmp_path / "a" / "train_info.json").is_file()
    # the folder is a checkpoint the adapter runs
    adapter = PIDMAdapter.from_pretrained(str(tmp_path / "a"))
    assert adapter.resolution == (32, 24) and adapter.steps == 2 and adapter.info()["trained_on"] == "fixture"
