"""CMMD: the paper's MMD estimator against a direct numpy computation of its formula, its bootstrap
weights against the estimator on the repeated rows, and the CLIP network path with a tiny random
CLIP saved in the transformers layout (the real openai/clip-vit-large-patch14-336 folder has the
same files, only larger), preprocessed independently with torchvision as google-research's
cmmd/io_util.py prepares images. Without the folder CMMD is n/a with the folder named.

No installed library implements CMMD (torchmetrics 1.9 has none; the reference code is JAX), so the
estimator is checked against distance.py's formula written out here with scipy's distances.
"""
import fpdm_bench  # noqa: F401  (torchvision shim first)

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.spatial.distance import cdist

from fpdm_bench.metrics.cmmd import CMMD, kernel_sums, mmd
from fpdm_bench.protocols import get_protocol
from fpdm_bench.scoring import Scorer


def _paper_cmmd(x, y, sigma=10.0, scale=1000.0):
    """google-research cmmd/distance.py: scale · (mean k_xx + mean k_yy - 2 mean k_xy), all pairs, diagonals in."""
    k = lambda a, b: np.exp(-cdist(a, b, "sqeuclidean") / (2 * sigma ** 2))  # noqa: E731
    return scale * (k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean())


def _unit(rng, n, d=24, shift=0.0):
    v = rng.normal(size=(n, d)) + shift
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_mmd_equals_the_papers_formula():
    rng = np.random.default_rng(0)
    x, y = _unit(rng, 70), _unit(rng, 55, shift=0.4)
    want = _paper_cmmd(x, y)
    assert want > 0
    assert mmd(x, y) == pytest.approx(want, rel=1e-9)
    assert mmd(x, x) == pytest.approx(0.0, abs=1e-9)
    metric = CMMD(replicates=0)
    metric.update(y[:20])
    metric.update(y[20:])
    out = metric.compute(x)["cmmd"]
    assert out["value"] == pytest.approx(want, rel=1e-6) and out["n"] == 55 and out["n_reference"] == 70
    # unnormalised, larger features: the kernel is far from 1 and the blocks matter
    a, b = rng.normal(size=(40, 8)) * 6, rng.normal(size=(30, 8)) * 6 + 2
    assert mmd(a, b, sigma=3.0) == pytest.approx(_paper_cmmd(a, b, sigma=3.0), rel=1e-9)


def test_bootstrap_weights_equal_the_estimator_on_the_repeated_rows():
    rng = np.random.default_rng(1)
    y = _unit(rng, 30)
    w = rng.poisson(1.0, size=(3, 30)).astype(float)
    got = kernel_sums(y, y, w)
    for r in range(3):
        rep = np.repeat(y, w[r].astype(int), axis=0)
        assert got[r] == pytest.approx(np.exp(-cdist(rep, rep, "sqeuclidean") / 200).sum(), rel=1e-10)
    metric = CMMD(replicates=12)
    metric.update(y, [f"p{i}" for i in range(30)])
    out = metric.compute(_unit(rng, 40, shift=0.3))["cmmd"]
    lo, hi = out["ci95"]
    assert lo < out["value"] < hi


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    """A tiny random CLIP (text and vision towers) saved as the hub repo's layout: CLIPModel."""
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    cfg = CLIPConfig(text_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                      vocab_size=64, max_position_embeddings=16, bos_token_id=0, eos_token_id=1,
                                      pad_token_id=1),
                     vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                        image_size=56, patch_size=14),
                     projection_dim=12)
    folder = tmp_path_factory.mktemp("w") / "clip-vit-large-patch14-336"
    CLIPModel(cfg).eval().save_pretrained(folder)
    return folder


def _images(n, seed, size=(64, 44)):
    rng = np.random.default_rng(seed)
    low = rng.integers(0, 256, (n, 4, 3, 3), dtype=np.uint8)
    return [np.asarray(Image.fromarray(a).resize(size[::-1], Image.BICUBIC)) for a in low]


def _reference_embeddings(arrays, folder):
    """io_util.py's centre crop + PIL bicubic resize, embedding.py's CLIP normalisation, written with
    torchvision; the projected image features of the whole CLIPModel, L2-normalised (scenic's encode_image)."""
    import torchvision.transforms as TF
    from transformers import CLIPModel

    model = CLIPModel.from_pretrained(str(folder)).eval()
    size = model.config.vision_config.image_size
    tf = TF.Compose([TF.Lambda(lambda im: TF.functional.center_crop(im, min(im.size))),
                     TF.Resize((size, size), TF.InterpolationMode.BICUBIC), TF.ToTensor(),
                     TF.Normalize([0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711])])
    x = torch.stack([tf(Image.fromarray(a)) for a in arrays])
    with torch.no_grad():
        emb = model.get_image_features(pixel_values=x)
    emb = emb if torch.is_tensor(emb) else emb.pooler_output
    emb = emb.double().numpy()
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def test_cmmd_through_a_tiny_clip_folder_equals_the_formula_on_independent_embeddings(clip_folder, tmp_path):
    real, gen = _images(14, seed=2), _images(10, seed=3)
    paths = []
    for i, a in enumerate(real):
        paths.append(tmp_path / f"r{i}.png")
        Image.fromarray(a).save(paths[-1])
    proto = get_protocol("standard-plus").with_changes(name="cmmd-only", metrics={"cmmd": {"replicates": 0}})
    sc = Scorer(proto, reference_paths=paths, size=(64, 44), weights={"clip-vit-l14-336": str(clip_folder)},
                cache=tmp_path / "cache")
    from fpdm_bench.images import from_uint8

    sc.update(from_uint8(np.stack(gen)), {"pair_id": [str(i) for i in range(len(gen))]})
    value = sc.compute([])["cmmd"]["value"]
    want = _paper_cmmd(_reference_embeddings(real, clip_folder), _reference_embeddings(gen, clip_folder))
    assert value == pytest.approx(want, rel=1e-4)  # float32 network on both sides
    assert sc.describe()["feature_networks"]["clip-vit-l14-336"]["weights_file"] == str(clip_folder)


def test_missing_clip_folder_is_reported_not_computed(tmp_path, monkeypatch):
    monkeypatch.setenv("FPDM_BENCH_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    import fpdm_bench.metrics.cmmd as cm

    cm._build_cached.cache_clear()
    sc = Scorer(get_protocol("standard-plus").with_changes(name="cmmd-only", metrics={"cmmd": {}}),
                reference_paths=[], size=(64, 44))
    out = sc.compute([])
    assert out["cmmd"]["value"] is None
    assert "clip-vit-large-patch14-336/ missing" in out["cmmd"]["unavailable"]
    assert str(tmp_path / "clip-vit-large-patch14-336") in out["cmmd"]["unavailable"]


def test_a_folder_without_the_projection_is_refused_not_run_half_random(tmp_path):
    from transformers import CLIPVisionConfig, CLIPVisionModel

    import fpdm_bench.metrics.cmmd as cm

    folder = tmp_path / "clip-vit-large-patch14-336"
    CLIPVisionModel(CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                     image_size=28, patch_size=14)).save_pretrained(folder)
    sc = Scorer(get_protocol("standard-plus").with_changes(name="cmmd-only", metrics={"cmmd": {}}),
                reference_paths=[], size=(64, 44), weights={"clip-vit-l14-336": str(folder)})
    out = sc.compute([])
    assert out["cmmd"]["value"] is None and "not a CLIP vision checkpoint" in out["cmmd"]["unavailable"]
    assert "visual_projection" in out["cmmd"]["unavailable"]
    cm._build_cached.cache_clear()
