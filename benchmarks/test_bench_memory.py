"""Memory of one-pass scoring as the number of images grows: 1k vs 4k image pairs.

Each size runs `score_folders` (decode from disk, SSIM/PSNR/MAE, FID and KID states, bootstrap CIs)
in a fresh process and reads its peak resident memory. Images are streamed in batches and never
held; what grows with n is small per image: the per-sample metric values (kept for the CIs and
samples.jsonl) and KID's feature rows. The feature network is a small stand-in here so that 5k
images fit in a CI-sized run; Inception adds a constant (its weights and the FID sums), not a
per-image term. Run with `make bench-scoring`.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SCRIPT = """
import json, resource, sys
sys.path.insert(0, {tests!r})
import fpdm_bench
from helpers import TinyFeatures
from fpdm_bench.commands.score import score_folders
out = score_folders({real!r}, {gen!r}, "standard", networks={{"fid-inception": TinyFeatures()}}, cache={cache!r}, batch_size=32)
print(json.dumps({{"n": out["n"], "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "fid": out["metrics"]["fid"]["value"]}}))
"""


def _folders(root: Path, n: int):
    rng = np.random.default_rng(n)
    for sub in ("real", "gen"):
        (root / sub).mkdir(parents=True)
    for i in range(n):
        a = rng.integers(0, 256, (64, 44, 3), dtype=np.uint8)
        Image.fromarray(a).save(root / "real" / f"{i:05d}.png")
        Image.fromarray(255 - a).save(root / "gen" / f"{i:05d}.png")
    return root / "real", root / "gen"


def _peak(root: Path, n: int) -> dict:
    real, gen = _folders(root / str(n), n)
    code = SCRIPT.format(tests=str(Path(__file__).parents[1] / "tests"), real=str(real), gen=str(gen),
                         cache=str(root / f"cache{n}"))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.benchmark(group="memory")
def test_memory_flat_1k_vs_4k_images(benchmark, tmp_path):
    small = _peak(tmp_path, 1000)
    large = benchmark.pedantic(lambda: _peak(tmp_path / "b", 4000), rounds=1, iterations=1)
    growth_kb_per_image = (large["peak_rss_mb"] - small["peak_rss_mb"]) * 1024 / 3000
    benchmark.extra_info.update(peak_rss_mb_1k=round(small["peak_rss_mb"], 1),
                                peak_rss_mb_4k=round(large["peak_rss_mb"], 1),
                                growth_kb_per_image=round(growth_kb_per_image, 2))
    print(f"\npeak RSS: 1000 pairs {small['peak_rss_mb']:.1f} MB, 4000 pairs {large['peak_rss_mb']:.1f} MB "
          f"({growth_kb_per_image:.2f} KB per extra pair)")
    assert small["n"] == 1000 and large["n"] == 4000
    # holding the decoded images would cost 2 x 64*44*3*4 B = 66 KB per pair, ~200 MB more at 4k
    assert large["peak_rss_mb"] < 1.25 * small["peak_rss_mb"]
