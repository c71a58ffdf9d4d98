"""Each protocol's differences from `standard` change what they should, and nothing is implicit."""
import fpdm_bench  # noqa: F401

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from helpers import TinyFeatures

from fpdm_bench.protocols import PROTOCOLS, get_protocol
from fpdm_bench.protocols.apply import prepare, resize
from fpdm_bench.registry import UnknownName
from fpdm_bench.scoring import Scorer


def _images(n=8, size=(64, 48), seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size[0] // 8, size[1] // 8, generator=g)
    x = torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False)
    x = (x + 0.2 * torch.rand(n, 3, *size, generator=g)).clamp(0, 1)
    return (x * 255).round() / 255  # 8-bit, as images on disk


def test_registry_and_records_cite_sources():
    assert {"standard", "fpdm", "fpdm-512", "pidm", "cfld", "pocold", "paired"} <= set(PROTOCOLS.names())
    for name in PROTOCOLS.names():
        p = get_protocol(name)
        assert p.source and p.description
        assert p.to_dict()["name"] == name
    with pytest.raises(UnknownName, match="Did you mean 'pidm'"):
        get_protocol("pidn")


def test_expected_settings_differ_from_standard():
    std = get_protocol("standard")
    assert get_protocol("fpdm").metrics["fid"]["backbone"] == "torchvision-inception" != std.metrics["fid"]["backbone"]
    assert get_protocol("fpdm").reference == "test-targets"
    assert get_protocol("pidm").metrics["fid"]["view"]["library"] == "cv2" and get_protocol("pidm").metrics["fid"]["drop_remainder"] == 64
    assert get_protocol("pidm").metrics["ssim_256"] == {"metric": "ssim", "variant": "gauss1.2-predrange"}
    assert get_protocol("cfld").quantize == "truncate"
    assert get_protocol("fpdm-512").eval_size == (512, 352)


def test_unknown_metric_in_a_protocol_is_an_error():
    with pytest.raises(UnknownName, match="Did you mean 'ssim'"):
        get_protocol("paired").with_changes(name="typo", metrics={"ssmi": {}})
    with pytest.raises(UnknownName, match="ssim_256.*'psnr'"):
        get_protocol("paired").with_changes(name="typo", metrics={"ssim_256": {"metric": "psnrr"}})


def test_resize_libraries_give_different_images():
    from fpdm_bench.protocols.apply import apply_view

    x = _images(2, (128, 96))
    pil = resize(x, (64, 48), get_protocol("fpdm"))
    torch_aa = resize(x, (64, 48), get_protocol("cfld"))
    cv2_float = apply_view(x, {**get_protocol("pidm").metrics["fid"]["view"], "size": [64, 48]})
    assert pil.shape == (2, 3, 64, 48)
    assert (pil - cv2_float).abs().max() > 1e-3  # PIL bicubic vs cv2 bilinear
    assert (pil - torch_aa).abs().max() > 1e-3  # PIL vs torch antialiased bicubic
    assert ((cv2_float * 255) - (cv2_float * 255).round()).abs().max() > 1e-3  # PIDM's path keeps floats


def test_truncating_quantisation_differs_from_rounding():
    x = torch.full((1, 3, 4, 4), 128.7 / 255)
    r = prepare(x, get_protocol("standard"), None, generated=True)
    t = prepare(x, get_protocol("cfld"), None, generated=True)
    assert r[0, 0, 0, 0] * 255 == 129 and t[0, 0, 0, 0] * 255 == 128


def _score(protocol, gen, tgt, ref_paths, cache, networks=None):
    sc = Scorer(protocol, reference_paths=ref_paths, size=None, networks={"fid-inception": TinyFeatures(), **(networks or {})},
                cache=cache)
    records = []
    for s in range(0, len(gen), 5):
        batch = {"target": tgt[s:s + 5], "pair_id": [str(i) for i in range(s, min(s + 5, len(gen)))]}
        records += [{"metrics": m} for m in sc.update(gen[s:s + 5], batch)]
    return sc, sc.compute(records)


@pytest.fixture
def ref_folder(tmp_path):
    from PIL import Image

    paths = []
    for i, im in enumerate(_images(12, (128, 96), seed=5)):
        p = tmp_path / "ref" / f"r{i:02d}.png"
        p.parent.mkdir(exist_ok=True)
        Image.fromarray((im.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(p)
        paths.append(p)
    return paths


def test_resize_filter_change_moves_fid(ref_folder, tmp_path):
    gen, tgt = _images(20, (128, 96), seed=1), _images(20, (128, 96), seed=2)
    base = get_protocol("paired").with_changes(metrics={"fid": {"replicates": 0}, "ssim": {}}, eval_size=(64, 48))
    a = _score(base, gen, tgt, ref_folder, tmp_path / "c")[1]
    b = _score(base.with_changes(resize_library="cv2", resize_filter="bilinear", resize_antialias=False),
               gen, tgt, ref_folder, tmp_path / "c")[1]
    assert a["fid"]["value"] != pytest.approx(b["fid"]["value"], rel=1e-4)
    assert a["ssim"]["value"] != pytest.approx(b["ssim"]["value"], rel=1e-6)


def test_remainder_drop_changes_n(ref_folder, tmp_path):
    gen, tgt = _images(20, (64, 48), seed=1), _images(20, (64, 48), seed=2)
    base = get_protocol("paired").with_changes(metrics={"fid": {"replicates": 0}, "ssim": {}})
    keep = _score(base, gen, tgt, ref_folder, tmp_path / "c")[1]
    drop = _score(base.with_changes(metrics={"fid": {"replicates": 0, "drop_remainder": 8}, "ssim": {}}),
                  gen, tgt, ref_folder, tmp_path / "c")[1]
    assert keep["fid"]["n"] == 20 and drop["fid"]["n"] == 16 and drop["fid"]["dropped"] == 4
    assert keep["fid"]["value"] != drop["fid"]["value"]


def test_pidm_and_fpdm_ssim_256_differ_and_fpdm_mae_is_gfla(ref_folder, tmp_path):
    gen, tgt = _images(6, (256, 176), seed=1), _images(6, (256, 176), seed=2)
    def only(name, keys):
        p = get_protocol(name)
        return p.with_changes(metrics={k: v for k, v in p.metrics.items() if k in keys})

    f = _score(only("fpdm", ("ssim", "ssim_256", "mae", "l1")), gen, tgt, ref_folder, tmp_path / "c")[1]
    p = _score(only("pidm", ("ssim", "ssim_256", "mae")), gen, tgt, ref_folder, tmp_path / "c")[1]
    s = _score(only("standard", ("mae",)), gen, tgt, ref_folder, tmp_path / "c")[1]
    assert f["ssim_256"]["value"] != pytest.approx(p["ssim_256"]["value"], abs=1e-6)  # σ 1.5 vs 1.2
    g, t = gen.double(), tgt.double()
    assert f["mae"]["value"] == pytest.approx(((g - t).abs().sum((1, 2, 3)) / (g + t).sum((1, 2, 3))).mean().item())
    assert s["mae"]["value"] == pytest.approx((g - t).abs().mean().item(), rel=1e-6)
    assert f["l1"]["value"] == s["mae"]["value"]  # the scripts' l1 is the plain mean absolute error


def test_lpips_remainder_drop(ref_folder, tmp_path):
    class FakeLPIPS(torch.nn.Module):  # stands in for the network: mean |a-b| per image
        def forward(self, a, b, normalize=False):
            return (a - b).abs().mean((1, 2, 3)).view(-1, 1, 1, 1)

    gen, tgt = _images(13, (64, 48), seed=1), _images(13, (64, 48), seed=2)
    proto = get_protocol("paired").with_changes(metrics={"lpips": {"drop_remainder": 10}})
    out = _score(proto, gen, tgt, ref_folder, tmp_path / "c", networks={"lpips-alex": FakeLPIPS()})[1]
    assert out["lpips"]["n"] == 10 and out["lpips"]["dropped"] == 3


def test_protocols_command_lists_settings():
    from fpdm_bench.cli import main

    res = CliRunner().invoke(main, ["protocols"])
    assert res.exit_code == 0, res.output
    for name in ("standard", "fpdm", "pidm", "cfld", "pocold"):
        assert name in res.output
    assert "fid (backbone torchvision-inception, drop_remainder 64, view" in res.output
    assert "C2.eval.caculate_metrics.py" in res.output
    assert "ssim_256 (metric ssim, variant gauss1.2-predrange)" in res.output
    one = CliRunner().invoke(main, ["protocols", "cfld"])
    assert '"quantize": "truncate"' in one.output
