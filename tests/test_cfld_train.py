"""Training a CFLD: an interrupted run resumes to the same weights, and its folder (the released
layout plus a patch-PCA vae/) is a checkpoint the adapter runs."""
from __future__ import annotations

import pytest
import torch

from fpdm_bench.data import open_dataset
from fpdm_bench_baselines.cfld.adapter import CFLDAdapter
from fpdm_bench_baselines.cfld.pipeline import FILES
from fpdm_bench_baselines.cfld.train import load_config, train_cfld

# 32x32 generation, 8x8 latents; widths stay multiples of 32 (the pose encoder's GroupNorm has 32 groups)
MICRO = ["cfld.cond_size=32", "cfld.pose_size=32", "cfld.swin.embed_dim=32", "cfld.swin.depths=[1,1,1,1]",
         "cfld.swin.num_heads=[1,1,1,1]", "cfld.swin.window_size=2", "cfld.appearance.inner_dims=[32,64,128]",
         "cfld.appearance.ctx_dims=[32,32,32]", "cfld.appearance.embed_dims=[32,32,32]",
         "cfld.appearance.heads=[1,1,1]", "cfld.appearance.block_idx=[6,4,2]", "cfld.pose.channels=[32,32,32]",
         "cfld.decoder.depth=1", "unet.block_out_channels=[32,32,32,32]", "gen_size=[32,32]",
         "train.batch_size=4", "train.checkpoint_every=2", "train.warmup_steps=0", "train.keep_checkpoint=true",
         "sampling.steps=2"]


@pytest.mark.slow
def test_resume_continues_to_the_same_weights(fixture_root, tmp_path):
    ds = open_dataset("fixture", root=fixture_root)
    cfg = load_config("tiny", MICRO)
    straight = train_cfld(cfg, ds, tmp_path / "a", max_steps=4, progress=False)
    train_cfld(cfg, ds, tmp_path / "b", max_steps=2, progress=False)
    resumed = train_cfld(cfg, ds, tmp_path / "b", max_steps=4, progress=False)
    assert straight["steps"] == resumed["steps"] == 4
    for name in FILES:
        a = torch.load(tmp_path / "a" / name, weights_only=True)
        b = torch.load(tmp_path / "b" / name, weights_only=True)
        # same process, same operations in the same order: bit-identical
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert 0 < straight["vae_recon_mae"] < 0.2 and (tmp_path / "a" / "train_info.json").is_file()
    # the folder is a checkpoint the adapter runs, with the patch PCA from vae/ and the saved sampling
    adapter = CFLDAdapter.from_pretrained(str(tmp_path / "a"))
    info = adapter.info()
    assert adapter.steps == 2 and info["nfe"] == 7 and info["vae"] == "PatchPCAAutoencoder"
    assert info["checkpoint_sha256_of"] == [*FILES, "vae/model.safetensors"]
    src = torch.rand(2, 3, 64, 44)
    kp = torch.tensor(ds.keypoints(ds.pairs[0].target), dtype=torch.float32)
    batch = {"source": src, "target_kp": torch.stack([kp, kp])}
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    out = adapter.generate(batch, gens)
    assert out.shape == (2, 3, 64, 44) and 0 <= float(out.min()) and float(out.max()) <= 1
    # per-pair noise: the second sample does not depend on the first being in the batch
    alone = adapter.generate({"source": src[1:], "target_kp": batch["target_kp"][1:]},
                             [torch.Generator().manual_seed(2)])
    # same process and kernels, but another batch size may take other BLAS paths: a tolerance of
    # one 8-bit level (outputs are truncated to uint8)
    assert (alone - out[1:]).abs().max() <= 1 / 255 + 1e-6


def test_shipped_tiny_missing_is_one_clear_error(tmp_path, monkeypatch):
    import fpdm_bench_baselines.cfld.adapter as mod
    from fpdm_bench.errors import WeightsMissing

    monkeypatch.setattr(mod, "TINY_CHECKPOINT", tmp_path / "tiny")
    with pytest.raises(WeightsMissing, match=r"tiny CFLD unavailable: .*pytorch_model\.bin missing"):
        CFLDAdapter.from_pretrained(None)


def test_patch_pca_folder_round_trip(tmp_path):
    from fpdm_bench.modeling.patch_pca import PatchPCAAutoencoder

    vae = PatchPCAAutoencoder(patch=4, latent_channels=8, scaling_factor=0.7)
    vae.fit(torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    vae.save_pretrained(tmp_path / "vae")
    assert PatchPCAAutoencoder.is_folder(tmp_path / "vae") and not PatchPCAAutoencoder.is_folder(tmp_path)
    back = PatchPCAAutoencoder.from_pretrained(tmp_path / "vae")
    assert back.to_dict() == vae.to_dict()
    assert all(torch.equal(back.state_dict()[k], v) for k, v in vae.state_dict().items())
