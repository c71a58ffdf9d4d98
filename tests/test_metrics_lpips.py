"""LPIPS plumbing vs the lpips package with identical (random) backbone weights; missing weights."""
import fpdm_bench  # noqa: F401

import lpips
import pytest
import torch
import torchvision

from fpdm_bench.errors import WeightsMissing
from fpdm_bench.metrics import MetricContext
from fpdm_bench.metrics import lpips as ours_lpips


@pytest.mark.parametrize("net,tv", [("alex", "alexnet")])  # vgg uses the same mapping (slow to build)
def test_lpips_matches_package_with_same_backbone(tmp_path, monkeypatch, net, tv):
    torch.manual_seed(0)
    backbone = getattr(torchvision.models, tv)(weights=None).state_dict()
    file = tmp_path / "backbone.pth"
    torch.save(backbone, file)
    ours = ours_lpips.build(net, file)  # loads the file into lpips' slices
    ref = lpips.LPIPS(net=net, pnet_rand=True, verbose=False).eval()
    ours_lpips.load_backbone(ref, backbone)  # same tensors, loaded independently
    # and the mapping itself: lpips' slice tensors equal torchvision's features tensors
    assert torch.equal(ours.net.slice1[0].weight, backbone["features.0.weight"])
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(2, 3, 64, 48, generator=g), torch.rand(2, 3, 64, 48, generator=g)
    metric = ours_lpips.LPIPS(net=net)
    metric.setup(MetricContext(networks={f"lpips-{net}": ours}))
    got = [r["lpips"] for r in metric.update(a, b, {})]
    want = ref(a, b, normalize=True).flatten().tolist()
    assert got == pytest.approx(want, abs=1e-6)
    assert got == pytest.approx(ref(2 * a - 1, 2 * b - 1).flatten().tolist(), abs=1e-6)  # PIDM's x/127.5-1


def test_missing_backbone_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("FPDM_BENCH_WEIGHTS", str(tmp_path))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(WeightsMissing, match=r"LPIPS \(alex\) unavailable: alexnet-owt-7be5be79.pth missing"):
        ours_lpips._build_cached.__wrapped__("alex", None, "cpu")
