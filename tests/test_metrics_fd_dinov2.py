"""FD-DINOv2: dgm-eval's preprocessing, the transformers model from a local folder, FID's machinery.

The weights here are a small randomly initialised Dinov2Model that the test saves in the
transformers layout (the real facebook/dinov2-large folder has the same files, only larger), so
what is checked is the plumbing: preprocessing written independently with torchvision's transforms
as dgm-eval writes it, the CLS feature, and the Fréchet distance against pytorch-fid's.
"""
import fpdm_bench  # noqa: F401  (torchvision shim first)

import numpy as np
import pytest
import torch
from PIL import Image
from pytorch_fid.fid_score import calculate_frechet_distance

from fpdm_bench.protocols import get_protocol
from fpdm_bench.scoring import Scorer


@pytest.fixture(scope="module")
def dinov2_folder(tmp_path_factory):
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    cfg = Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2, patch_size=14,
                       image_size=518)
    folder = tmp_path_factory.mktemp("w") / "dinov2-large"
    Dinov2Model(cfg).eval().save_pretrained(folder)
    return folder


def _images(n, seed, size=(64, 48)):
    rng = np.random.default_rng(seed)
    low = rng.integers(0, 256, (n, 4, 3, 3), dtype=np.uint8)
    return [np.asarray(Image.fromarray(a).resize(size[::-1], Image.BICUBIC)) for a in low]


def _dgm_eval_features(arrays, folder):
    """dgm-eval's DINOv2 transform (torchvision on PIL images) + the CLS feature, written here."""
    import torchvision.transforms as TF
    from transformers import Dinov2Model

    model = Dinov2Model.from_pretrained(str(folder)).eval()
    tf = TF.Compose([TF.Resize((224, 224), TF.InterpolationMode.BICUBIC), TF.ToTensor(),
                     TF.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    x = torch.stack([tf(Image.fromarray(a)) for a in arrays])
    with torch.no_grad():
        return model(pixel_values=x).last_hidden_state[:, 0].double().numpy()


def test_features_match_dgm_eval_preprocessing(dinov2_folder):
    from fpdm_bench.images import from_uint8
    from fpdm_bench.metrics.fd_dinov2 import build

    arrays = _images(4, seed=1)
    ours = build(dinov2_folder)(from_uint8(np.stack(arrays))).double().numpy()
    # float32 network on both sides; tolerance for the different (but equal-valued) input paths
    assert np.abs(ours - _dgm_eval_features(arrays, dinov2_folder)).max() < 1e-4


def test_fd_dinov2_equals_frechet_distance_of_the_features(dinov2_folder, tmp_path):
    real, gen = _images(12, seed=2), _images(10, seed=3)
    paths = []
    for i, a in enumerate(real):
        paths.append(tmp_path / f"r{i}.png")
        Image.fromarray(a).save(paths[-1])
    proto = get_protocol("standard-dinov2").with_changes(name="fd-only",
                                                         metrics={"fd_dinov2": {"replicates": 0}})
    sc = Scorer(proto, reference_paths=paths, size=(64, 48), weights={"dinov2": str(dinov2_folder)},
                cache=tmp_path / "cache")
    from fpdm_bench.images import from_uint8

    x = from_uint8(np.stack(gen))
    sc.update(x, {"pair_id": [str(i) for i in range(len(gen))]})
    value = sc.compute([])["fd_dinov2"]["value"]
    fr, fg = _dgm_eval_features(real, dinov2_folder), _dgm_eval_features(gen, dinov2_folder)
    want = calculate_frechet_distance(fg.mean(0), np.cov(fg, rowvar=False), fr.mean(0), np.cov(fr, rowvar=False))
    assert value == pytest.approx(want, rel=1e-3)  # pytest-fid's sqrtm vs our eigen route: as the FID test
    assert sc.describe()["feature_networks"]["dinov2"]["weights_file"] == str(dinov2_folder)


def test_missing_dinov2_folder_is_reported_not_computed(tmp_path, monkeypatch):
    monkeypatch.setenv("FPDM_BENCH_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    import fpdm_bench.metrics.fd_dinov2 as fd

    fd._build_cached.cache_clear()
    sc = Scorer(get_protocol("standard-dinov2").with_changes(name="fd-only", metrics={"fd_dinov2": {}}),
                reference_paths=[], size=(64, 48))
    out = sc.compute([])
    assert out["fd_dinov2"]["value"] is None
    assert "dinov2-large/ missing" in out["fd_dinov2"]["unavailable"]
    assert str(tmp_path / "dinov2-large") in out["fd_dinov2"]["unavailable"]
