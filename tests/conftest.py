"""Shared test set-up: the torchvision shim first, offline hub, and a tiny fixture dataset."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# reference statistics cached by the tests go to a throw-away folder, not the user's ~/.cache
os.environ.setdefault("FPDM_BENCH_CACHE", __import__("tempfile").mkdtemp(prefix="fpdm-bench-test-cache-"))

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import fpdm_bench  # noqa: E402,F401  (the torchvision shim must run before torchvision imports)
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from fpdm_bench.data import DATASETS  # noqa: E402
from fpdm_bench.data.base import PairDataset, PairRecord, pair_id_for  # noqa: E402


class ManifestDataset(PairDataset):
    """A minimal dataset for tests: manifest.json lists images, keypoints and pairs."""

    def image_path(self, name):
        return self.root / "img" / name

    def reference_images(self, split=None):
        return [self.image_path(n) for n in sorted(self._keypoints)]


def open_manifest(root, split="test", size=None, skip_bad=False):
    m = json.loads((Path(root) / "manifest.json").read_text())
    ds = ManifestDataset(name="fixture", root=root, split=split, native_size=tuple(m["size"]), size=size)
    ds._keypoints = {k: np.asarray(v, np.float32) for k, v in m["keypoints"].items()}
    ds.pairs = [PairRecord(pair_id_for(a, b), a, b) for a, b in m["pairs"]]
    ds.check_pairs(Path(root) / "manifest.json", skip_bad=skip_bad)
    return ds


if "fixture" not in DATASETS:
    DATASETS.register("fixture", open_manifest, "test fixture (manifest.json layout)")


def make_fixture(root: Path, n_images: int = 6, size=(32, 24), seed: int = 0) -> Path:
    """Random-texture images with random keypoints; pairs = all ordered pairs (i, i+1 mod n)."""
    rng = np.random.default_rng(seed)
    (root / "img").mkdir(parents=True, exist_ok=True)
    kps, names = {}, []
    for i in range(n_images):
        name = f"im{i:03d}.png"
        arr = rng.integers(0, 256, size=(size[0], size[1], 3), dtype=np.uint8)
        Image.fromarray(arr).save(root / "img" / name)
        kp = np.stack([rng.uniform(0, size[1], 18), rng.uniform(0, size[0], 18)], 1)
        kps[name] = kp.tolist()
        names.append(name)
    pairs = [[names[i], names[(i + 1) % n_images]] for i in range(n_images)]
    pairs += [[names[i], names[(i + 2) % n_images]] for i in range(n_images)]
    (root / "manifest.json").write_text(json.dumps({"size": list(size), "keypoints": kps, "pairs": pairs}))
    return root


@pytest.fixture
def fixture_root(tmp_path):
    return make_fixture(tmp_path / "fixture")
