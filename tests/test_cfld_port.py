"""The CFLD port, piece by piece, against data made by running the official code
(tests/fixtures/cfld/README.md says how). So far: the Swin backbone.

Tolerance: the same float32 operations as the official code; other CPU kernels may sum in another
order (~1e-7 relative per operation over ~30 layers on features of magnitude <= ~10): 1e-5.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from baselines.cfld.swin import SwinBackbone, SwinConfig

FIX = Path(__file__).parent / "fixtures" / "cfld"
MANIFEST = json.loads((FIX / "manifest.json").read_text())


@pytest.fixture(scope="module")
def golden():
    z = np.load(FIX / "golden_tiny.npz")
    return {k: torch.from_numpy(z[k]) for k in z.files if z[k].dtype.kind != "U"}


@pytest.fixture(scope="module")
def released():
    return torch.load(FIX / "pytorch_model.bin", map_location="cpu", weights_only=True)


def _tiny_swin() -> SwinBackbone:
    c = MANIFEST["config_tiny"]
    s = c["MODEL"]["COND_STAGE_CONFIG"]
    return SwinBackbone(SwinConfig(img_size=c["INPUT"]["COND"]["IMG_SIZE"][0], embed_dim=s["EMBED_DIM"],
                                   depths=tuple(s["DEPTHS"]), num_heads=tuple(s["NUM_HEADS"]),
                                   window_size=s["WINDOW_SIZE"]))


def test_published_swin_keys_and_shapes_match_the_manifest():
    s = MANIFEST["config_published"]["MODEL"]["COND_STAGE_CONFIG"]
    with torch.device("meta"):
        model = SwinBackbone(SwinConfig(embed_dim=s["EMBED_DIM"], depths=tuple(s["DEPTHS"]),
                                        num_heads=tuple(s["NUM_HEADS"]), window_size=s["WINDOW_SIZE"]))
    want = {k[len("backbone."):]: v for k, v in MANIFEST["published"]["pytorch_model.bin"].items()
            if k.startswith("backbone.")}
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == want


def test_swin_loads_the_released_file_strictly_and_matches_the_official_features(golden, released):
    model = _tiny_swin()
    sd = {k[len("backbone."):]: v for k, v in released.items() if k.startswith("backbone.")}
    ours = model.state_dict()
    # the buffers we compute are the ones the official code saved
    for k in ours:
        if k.endswith(("relative_position_index", "attn_mask")):
            assert torch.equal(ours[k], sd[k]), k
    model.load_state_dict(sd, strict=True)
    model.eval()
    src = (golden["in/src_u8"].float() / 255 - 0.5) / 0.5  # ToTensor, Normalize(0.5, 0.5)
    with torch.no_grad():
        pooled, feats = model(src)
    assert len(feats) == 4
    for i, f in enumerate(feats):
        err = (f - golden[f"backbone/feature/{i}"]).abs().max().item()
        assert err <= 1e-5, f"stage {i}: {err}"
    assert (pooled - golden["backbone/pooled"]).abs().max().item() <= 1e-5
