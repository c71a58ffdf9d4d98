"""The shared modeling layer (fpdm_bench/modeling/): the model resize gives the protocol resize's
bytes, and model folders are written and read as the shipped checkpoints were."""
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import fpdm_bench  # noqa: F401,E402  (shim before anything that may import torchvision)

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from safetensors import safe_open  # noqa: E402

from fpdm_bench.modeling import training  # noqa: E402
from fpdm_bench.modeling.pretrained import read_weights, save_folder, save_state_bin  # noqa: E402
from fpdm_bench.modeling.resize import resize  # noqa: E402
from fpdm_bench.models.state import read_state_dict  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("size", [(64, 44), (300, 200), (40, 40)])
def test_resize_is_the_library_resize(size):
    """Each library path equals a direct call of that library on the same input."""
    import cv2
    import numpy as np
    import torch.nn.functional as F
    from PIL import Image

    images = torch.rand(2, 3, 96, 64, generator=torch.Generator().manual_seed(0))
    h, w = size
    u8 = (images * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    pil = np.stack([np.asarray(Image.fromarray(a).resize((w, h), Image.BICUBIC)) for a in u8])
    assert torch.equal(resize(images, size, "pil", "bicubic"), torch.from_numpy(pil).permute(0, 3, 1, 2).float() / 255)
    want = F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=False).clamp(0, 1)
    assert torch.equal(resize(images, size, "torch", "bilinear", False), want)
    arr = images.permute(0, 2, 3, 1).numpy() * 255.0
    cv = np.stack([cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR) for a in arr])
    assert torch.equal(resize(images, size, "cv2", "bilinear"), torch.from_numpy(cv).permute(0, 3, 1, 2).div(255).clamp(0, 1))
    assert resize(images, (96, 64), "pil", "bicubic") is images  # same size: untouched


def test_resize_refuses_an_unknown_library():
    with pytest.raises(ValueError, match="unknown resize library"):
        resize(torch.rand(1, 3, 8, 8), (4, 4), "skimage")


# (folder, how its model writes config.json): every shipped model folder written by save_folder
SHIPPED = [("reference_impl/checkpoints/tiny/stage1", {}), ("reference_impl/checkpoints/tiny/stage2", {}),
           ("reference_impl/checkpoints/tiny-phoenix/stage1", {}), ("reference_impl/checkpoints/tiny-phoenix/stage2", {}),
           ("baselines/pidm/checkpoints/tiny", {"indent": 1, "newline": False}),
           ("baselines/cfld/checkpoints/tiny/vae", {}), ("baselines/pocold/checkpoints/tiny/vae", {})]


@pytest.mark.parametrize("folder, style", SHIPPED, ids=[f for f, _ in SHIPPED])
def test_shipped_folders_are_what_save_folder_writes(tmp_path, folder, style):
    """Reading a shipped folder and writing it again gives the same bytes (weights with their stored
    dtypes and header metadata, config.json as that model writes it)."""
    src = ROOT / folder
    with safe_open(str(src / "model.safetensors"), "pt") as f:
        metadata = f.metadata()
    state = read_weights(src / "model.safetensors", "shipped checkpoint")
    out = save_folder(tmp_path / "out", state, json.loads((src / "config.json").read_text()), metadata=metadata, **style)
    for name in ("model.safetensors", "config.json"):
        assert (out / name).read_bytes() == (src / name).read_bytes(), name
    # a smaller storage dtype casts the floating tensors only
    half = read_weights(save_folder(tmp_path / "half", {**state, "step": torch.tensor(3)}, {}, dtype=torch.float16)
                        / "model.safetensors", "x")
    assert half["step"].dtype == torch.int64 and all(v.dtype == torch.float16 for k, v in half.items() if k != "step")
    full = read_weights(tmp_path / "half" / "model.safetensors", "x", float32=True)
    assert full["step"].dtype == torch.int64 and all(v.dtype == torch.float32 for k, v in full.items() if k != "step")


def test_models_save_the_shipped_bytes(tmp_path):
    """The PIDM and patch-PCA folders (whose config.json depends on no library version) come back
    byte for byte from the models' own save_pretrained after loading."""
    from fpdm_bench.modeling.patch_pca import PatchPCAAutoencoder
    from fpdm_bench_baselines.pidm.checkpoint import load_pretrained, save_pretrained

    src = ROOT / "baselines/pidm/checkpoints/tiny"
    model, meta = load_pretrained(src)
    save_pretrained(model, tmp_path / "pidm", extra={k: v for k, v in meta.items() if k != "pidm"},
                    dtype=torch.float16)
    src_vae = ROOT / "baselines/cfld/checkpoints/tiny/vae"
    PatchPCAAutoencoder.from_pretrained(src_vae).save_pretrained(tmp_path / "vae")
    for a, b in ((src, tmp_path / "pidm"), (src_vae, tmp_path / "vae")):
        for name in ("model.safetensors", "config.json"):
            assert (a / name).read_bytes() == (b / name).read_bytes(), (a, name)


def test_fpdm_stages_load_the_stored_tensors():
    from fpdm_bench_reference.stage1.model import FusionModel
    from fpdm_bench_reference.stage2.model import Stage2Model

    for cls, name in ((FusionModel, "stage1"), (Stage2Model, "stage2")):
        folder = ROOT / "reference_impl/checkpoints/tiny" / name
        stored = read_weights(folder / "model.safetensors", name, float32=True)
        loaded = cls.from_pretrained(folder).state_dict()
        assert stored and all(torch.equal(loaded[k], v) for k, v in stored.items())


def test_unreadable_weights_are_one_line(tmp_path):
    f = tmp_path / "model.safetensors"
    f.write_bytes(b"\xff" * 64)
    with pytest.raises(fpdm_bench.errors.BenchError, match="not a readable safetensors file.*truncated or corrupt"):
        read_weights(f, "tiny model")
    with pytest.raises(fpdm_bench.errors.BenchError, match=r"model\.safetensors: unreadable safetensors file"):
        read_weights(f, "PIDM", error="{path}: unreadable safetensors file ({error})")


def test_state_bin_round_trip(tmp_path):
    state = {"w": torch.randn(3, 2), "n": torch.tensor([1, 2])}
    save_state_bin(tmp_path / "pytorch_model.bin", state, torch.float16)
    back = read_state_dict(tmp_path / "pytorch_model.bin")
    assert back["w"].dtype == torch.float16 and torch.equal(back["n"], state["n"])


def test_overrides_and_opening(tmp_path):
    cfg = training.apply_overrides({"train": {"lr": 1.0}}, ["train.lr=0.0002", "train.max_steps=5", "x.y=[1, 2]"])
    assert cfg == {"train": {"lr": 2e-4, "max_steps": 5}, "x": {"y": [1, 2]}}
    assert training.get_dotted(cfg, "x.y") == [1, 2] and training.get_dotted(cfg, "x.z", 0) == 0

    class Pairs:
        pairs = [type("R", (), {"pair_id": "p0", "source": "b.png", "target": "a.png"})()]

    out_dir, tc, total, device, names, pairs, sha = training.open_run(cfg, Pairs(), tmp_path / "run", None, "cpu")
    assert out_dir.is_dir() and tc is cfg["train"] and total == 5 and device == torch.device("cpu")
    assert names == ["a.png", "b.png"] and pairs.tolist() == [[1, 0]] and len(sha) == 64
    assert training.open_run(cfg, Pairs(), tmp_path / "run", 7, "cpu").total == 7
