"""The PoCoLD port against the official code (tests/fixtures/pocold, made by running the official
code in a scratch environment: tools/make_pocold_fixtures.py; README there)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fpdm_bench.errors import BenchError
from fpdm_bench_baselines.pocold.network import (DoubleAttentionUNet, ReferenceEncoder, ReferenceEncoderConfig,
                                                 UNetConfig)
from fpdm_bench_baselines.pocold.parts import densepose_one_hot
from fpdm_bench_baselines.pocold.pipeline import PoCoLDPipeline, guidance_weight, guided_eps, load_component

FIX = Path(__file__).parent / "fixtures" / "pocold"
PIPE = FIX / "pipeline_tiny"
# Tolerances (the fixture README's): float32 kernels differ across CPUs and between our batched and
# the official separate calls, so 1e-5 on attention / encoders and 1e-4 on UNet outputs.
ATOL_BLOCK, ATOL_UNET = 1e-5, 1e-4


@pytest.fixture(scope="module")
def golden():
    return dict(np.load(FIX / "golden_tiny.npz"))


@pytest.fixture(scope="module")
def manifest():
    return json.loads((FIX / "manifest.json").read_text())


@pytest.fixture(scope="module")
def pipe():
    return PoCoLDPipeline.from_pretrained(PIPE)


def t(a):
    return torch.from_numpy(np.asarray(a))


def _shapes(module):
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def test_published_keys_and_shapes_match_the_official_manifest(manifest):
    cfg = manifest["config_published"]
    with torch.device("meta"):
        unet = DoubleAttentionUNet(UNetConfig.from_json(cfg["unet"]))
        rie = ReferenceEncoder(ReferenceEncoderConfig.from_json(cfg["rie"]))
    assert _shapes(unet) == manifest["published"]["unet"]
    assert _shapes(rie) == manifest["published"]["rie"]
    assert sum(p.numel() for p in unet.parameters()) == manifest["published_n_params"]["unet"] == 108_980_889


def test_the_official_tiny_folder_loads_strictly(manifest, pipe):
    assert _shapes(pipe.unet) == manifest["tiny"]["unet"]
    assert _shapes(pipe.rie) == manifest["tiny"]["rie"]
    assert _shapes(pipe.cm) == manifest["tiny"]["channel_mapper"]


def test_double_attention_block(golden, pipe):
    block = pipe.unet.down_blocks[1].attentions[0]
    with torch.no_grad():
        out = block(t(golden["in/attn_hidden"]), t(golden["in/attn_ref"]))
    np.testing.assert_allclose(out.numpy(), golden["attn/out"], atol=ATOL_BLOCK, rtol=0)
    assert torch.equal(block(t(golden["in/attn_hidden"]), None), t(golden["in/attn_hidden"]))  # no reference: identity


def test_reference_encoder_channel_mapper_and_three_branches(golden, pipe):
    with torch.no_grad():
        refs = pipe.rie(t(golden["in/ref_latents"]))
        for i, r in enumerate(refs):
            np.testing.assert_allclose(r.numpy(), golden[f"rie/level_{i}"], atol=ATOL_BLOCK, rtol=0)
        cat = t(golden["transform/cat"])
        np.testing.assert_allclose(pipe.cm(t(golden["in/latents"]), cat).numpy(), golden["cm/cat"], atol=ATOL_BLOCK)
        np.testing.assert_allclose(pipe.cm(t(golden["in/latents"]), cat * 0).numpy(), golden["cm/null"], atol=ATOL_BLOCK)
        step = t(golden["unet/t"]).reshape(())
        for name, x, r in (("null", golden["cm/null"], None), ("cat", golden["cm/cat"], None),
                           ("all", golden["cm/cat"], refs)):
            np.testing.assert_allclose(pipe.unet(t(x), step, r).numpy(), golden[f"unet/eps_{name}"], atol=ATOL_UNET,
                                       rtol=0)


def test_one_guided_step_and_the_decaying_scale(golden, pipe):
    steps = t(golden["pipe/timesteps"])
    assert [guidance_weight(s, 5, 3, True) for s in steps] == golden["pipe/scale"].tolist()
    assert guidance_weight(981, 5, 3, False) == 5
    with torch.no_grad():
        refs = pipe.rie(t(golden["pipe/ref_latents"]))
        for k in (0, 21):
            latents = t(golden["pipe/init_latents"]) if k == 0 else t(golden["pipe/latents"][k - 1])
            eps = guided_eps(pipe.unet, pipe.cm, latents, steps[k], t(golden["transform/cat"]), refs,
                             guidance_weight(steps[k], 5, 3, True))
            # 1e-5 (measured here: 5e-6 at most), plus 1e-6 relative: three float32 UNet outputs combined
            # with weights up to 4.9 carry their kernels' rounding into values up to 3.1
            np.testing.assert_allclose(eps.numpy(), golden["pipe/eps_guided"][k], atol=1e-5, rtol=1e-6)
    # the scheduler: 51 evaluations, t = 961 twice, and no noise
    assert pipe.make_scheduler(50).timesteps.tolist() == steps.tolist()


def test_whole_sampler_reproduces_the_official_images(golden, pipe):
    out = pipe(None, t(golden["transform/cat"]), None, ref_latents=t(golden["pipe/ref_latents"]),
               latents=t(golden["pipe/init_latents"]))
    ours = (out.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.int16)
    # 51 PNDM steps of float32 rounding on latents up to |x| ~ 52: +-1 level (the fixture README's)
    assert np.abs(ours - golden["pipe/images_u8"].astype(np.int16)).max() <= 1


def test_densepose_maps_read_as_the_official_transform(golden):
    cat = np.stack([densepose_one_hot(im, (8, 6)).numpy() for im in golden["in/dp_to_u8"]])
    assert np.array_equal(cat, golden["transform/cat"])
    # PIL's NEAREST, not torch's: 176x128 -> 64x48 lands differently at exact half-way points
    assert np.array_equal(densepose_one_hot(golden["in/dp_pub_u8"], (64, 48)).argmax(0).numpy(),
                          golden["transform/pub_cat_index"])


def test_folder_errors_name_the_file(tmp_path):
    with pytest.raises(BenchError, match="not a folder"):
        PoCoLDPipeline.from_pretrained(tmp_path / "nope")
    with pytest.raises(BenchError, match=r"unet/config\.json missing"):
        PoCoLDPipeline.from_pretrained(tmp_path)
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(PIPE, bad)
    (bad / "rie" / "diffusion_pytorch_model.bin").write_bytes(b"truncated")
    with pytest.raises(BenchError, match=r"rie/diffusion_pytorch_model\.bin: not a readable state dict"):
        load_component(bad, "rie")
    shutil.copy(PIPE / "unet" / "diffusion_pytorch_model.bin", bad / "rie" / "diffusion_pytorch_model.bin")
    with pytest.raises(BenchError, match=r"weights do not fit this PoCoLD rie architecture"):
        load_component(bad, "rie")
