"""Protocol defects found by reading the official scripts again, one test each."""
import numpy as np
import pytest
import torch
from helpers import TinyFeatures
from PIL import Image
from pytorch_fid.fid_score import calculate_frechet_distance

from fpdm_bench.protocols import get_protocol
from fpdm_bench.scoring import Scorer


def _images(n, seed, size=(64, 48)):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, *size, generator=g) * 255).round() / 255  # 8-bit, as read from PNG


@pytest.mark.parametrize("name", ["pidm", "pocold"])
@pytest.mark.parametrize("with_pairs", [False, True])
def test_fid_batch_shrunk_by_a_small_reference_set_applies_to_the_generated_set(name, with_pairs, tmp_path):
    """Defect: PIDM's (and PoCoLD's, GFLA's) FID object keeps one batch size (64, utils/metrics.py:52).
    It reads the reference set first, and a set smaller than the batch shrinks it for good (:169-173),
    so the generated set is then cut to a multiple of the reference size: 48 reference + 72 generated
    -> the first 48 generated, not 64."""
    ref = _images(48, seed=1)
    ref_paths = []
    for i, im in enumerate(ref):
        ref_paths.append(tmp_path / "ref" / f"r{i:02d}.png")
        ref_paths[-1].parent.mkdir(exist_ok=True)
        Image.fromarray((im.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(ref_paths[-1])
    gen = _images(72, seed=2)
    ids = [f"g{i:03d}" for i in range(72)]
    proto = get_protocol(name)
    proto = proto.with_changes(metrics={"fid": {**proto.metrics["fid"], "replicates": 0}})

    def fid(images):
        sc = Scorer(proto, reference_paths=ref_paths, networks={"torchvision-inception": TinyFeatures()},
                    cache=tmp_path / "cache", allow_upsampled=True,
                    pairs=ids[: len(images)] if with_pairs else None)
        for s in range(0, len(images), 16):
            sc.update(images[s:s + 16], {"pair_id": ids[s:s + 16]})
        return sc.compute([])["fid"]

    got = fid(gen)
    assert got["n"] == 48 and got["dropped"] == 24
    assert got["value"] == pytest.approx(fid(gen[:48])["value"], rel=1e-9)
    if name == "pocold":  # native size, nothing resized: the features are the network's on the images
        a, b = (TinyFeatures()(x).double().numpy() for x in (gen[:48], ref))
        want = calculate_frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
        assert got["value"] == pytest.approx(want, rel=1e-3)
