"""Training a PoCoLD: an interrupted run resumes to the same weights, and its folder (the official
pipeline layout with a patch-PCA vae/) is a checkpoint the adapter runs."""
from __future__ import annotations

import pytest
import torch

from fpdm_bench.data import open_dataset
from fpdm_bench_baselines.pocold.adapter import PoCoLDAdapter
from fpdm_bench_baselines.pocold.pipeline import COMPONENTS
from fpdm_bench_baselines.pocold.train import load_config, train_pocold

# 32x24 generation, 8x6 latents; reference-encoder widths stay multiples of 32 (its GroupNorm has 32 groups)
MICRO = ["unet.block_out_channels=[16,32]", "unet.cross_attention_channels=[32,32]", "unet.num_filters=4",
         "unet.norm_num_groups=8", "rie.block_out_channels=[32,32]", "gen_size=[32,24]", "train.batch_size=4",
         "train.checkpoint_every=2", "train.warmup_steps=0", "train.keep_checkpoint=true", "sampling.steps=2"]


@pytest.mark.slow
def test_resume_continues_to_the_same_weights(fixture_root, tmp_path):
    ds = open_dataset("fixture", root=fixture_root)
    cfg = load_config("tiny", MICRO)
    straight = train_pocold(cfg, ds, tmp_path / "a", max_steps=4, progress=False)
    train_pocold(cfg, ds, tmp_path / "b", max_steps=2, progress=False)
    resumed = train_pocold(cfg, ds, tmp_path / "b", max_steps=4, progress=False)
    assert straight["steps"] == resumed["steps"] == 4
    for name in COMPONENTS:
        a = torch.load(tmp_path / "a" / name / "diffusion_pytorch_model.bin", weights_only=True)
        b = torch.load(tmp_path / "b" / name / "diffusion_pytorch_model.bin", weights_only=True)
        # same process, same operations in the same order: bit-identical
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert 0 < straight["vae_recon_mae"] < 0.5  # the fixture images are noise: a loose sanity bound
    adapter = PoCoLDAdapter.from_pretrained(str(tmp_path / "a"))
    info = adapter.info()
    assert adapter.resolution == (32, 24) and adapter.steps == 2 and info["nfe"] == 3 * 3 + 1
    assert info["vae"] == "PatchPCAAutoencoder" and "vae/model.safetensors" in info["checkpoint_sha256_of"]
    kp = torch.tensor(ds.keypoints(ds.pairs[0].target), dtype=torch.float32)
    src = ds.load_image(ds.pairs[0].source)[None]
    out = adapter.generate({"source": src, "target_kp": kp[None], "pair_id": [ds.pairs[0].pair_id]},
                           [torch.Generator().manual_seed(1)])
    assert out.shape == src.shape and 0 <= float(out.min()) and float(out.max()) <= 1
