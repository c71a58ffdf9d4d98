"""One-pass scoring vs the reference libraries run one after another, over the same two folders.

`make bench-scoring` runs it. The one-pass scorer (``fpdm-bench score --real --generated``, protocol
``standard``) decodes each image once and feeds FID, KID, SSIM (window 51 and Gaussian), PSNR and MAE
(LPIPS too where its weights exist) from that pass. The reference is what a user would otherwise run:
pytorch-fid's ``calculate_fid_given_paths``, torchmetrics' KID (on the same Inception network),
then scikit-image SSIM/PSNR and a numpy MAE, each decoding the folders itself. Both must give the
same numbers (the parity tolerances of the test suite); the speed ratio goes to ``extra_info`` and
is printed. The floor is a bare Inception forward over the same images (each decoded once, the same
network the scorer uses, in the scorer's feature chunks of 16, which ran faster here than pytorch-fid's
50; the faster of two timed runs): no scorer can be faster than that, and the one-pass
scorer's ratio to it (goal: at most 1.2) is the overhead of everything else it computes. These are
measurements, not timed assertions.
"""
import os
import time

import fpdm_bench  # noqa: F401  (torchvision shim first)
import numpy as np
import pytest
import torch
from PIL import Image

N = int(os.environ.get("BENCH_SCORING_N", "100"))
SIZE = (256, 176)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """N real images (smooth random colour fields) and N generated ones (shifted, noisier copies)."""
    root = tmp_path_factory.mktemp("scoring")
    rng = np.random.default_rng(0)
    for sub in ("real", "gen"):
        (root / sub).mkdir()
    for i in range(N):
        low = rng.uniform(0, 255, (8, 6, 3)).astype(np.uint8)
        real = np.asarray(Image.fromarray(low).resize(SIZE[::-1], Image.BICUBIC))
        gen = np.roll(real, 5, axis=1).astype(np.int16) + rng.integers(-20, 21, real.shape)
        Image.fromarray(real).save(root / "real" / f"{i:05d}.png")
        Image.fromarray(np.clip(gen, 0, 255).astype(np.uint8)).save(root / "gen" / f"{i:05d}.png")
    return root / "real", root / "gen"


def _pytorch_fid_inception(tmp_path, monkeypatch):
    """pytorch-fid's own InceptionV3, its weights file placed (offline) where its loader looks."""
    from pytorch_fid.inception import InceptionV3

    from fpdm_bench import weights as W
    from fpdm_bench.metrics.inception import write_pytorch_fid_weights

    write_pytorch_fid_weights(tmp_path / "hub", W.fid_helper_file())
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return InceptionV3([3]).eval()


def _read(path):
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255.0


def reference_libraries(real, gen, inception):
    """pytorch-fid, torchmetrics KID, scikit-image SSIM/PSNR and numpy MAE, one after another."""
    from pytorch_fid.fid_score import calculate_fid_given_paths
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    from torchmetrics.image.kid import KernelInceptionDistance

    out = {"fid": calculate_fid_given_paths([str(real), str(gen)], batch_size=50, device="cpu", dims=2048,
                                            num_workers=0)}

    class Features(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = inception

        def forward(self, x):
            return self.net(x)[0].flatten(1)

    names = sorted(p.name for p in real.iterdir())
    kid = KernelInceptionDistance(feature=Features(), subsets=1, subset_size=len(names))
    for start in range(0, len(names), 50):
        chunk = names[start:start + 50]
        for folder, is_real in ((real, True), (gen, False)):
            x = torch.from_numpy(np.stack([_read(folder / n) for n in chunk])).permute(0, 3, 1, 2).float()
            kid.update(x, real=is_real)
    out["kid"] = float(kid.compute()[0])
    ssim, ssim_g, psnr, mae = [], [], [], []
    for n in names:
        r, g = _read(real / n), _read(gen / n)
        ssim.append(structural_similarity(r, g, win_size=51, channel_axis=2, data_range=1.0))
        ssim_g.append(structural_similarity(r, g, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                            channel_axis=2, data_range=1.0))
        psnr.append(peak_signal_noise_ratio(r, g, data_range=1.0))
        mae.append(np.abs(r - g).mean())
    out.update(ssim=np.mean(ssim), ssim_gauss=np.mean(ssim_g), psnr=np.mean(psnr), mae=np.mean(mae))
    return out


def bare_inception(real, gen):
    """The floor: decode every image once and run the FID Inception over it, nothing else."""
    from fpdm_bench import weights as W
    from fpdm_bench.images import list_images, read_image
    from fpdm_bench.metrics import inception
    from fpdm_bench.scoring import FEATURE_CHUNK

    net = inception.build("fid-inception", W.find("fid-inception"))
    for folder in (real, gen):
        files = list_images(folder)
        for start in range(0, len(files), FEATURE_CHUNK):
            net(torch.stack([read_image(f) for f in files[start:start + FEATURE_CHUNK]]))


def test_one_pass_vs_reference_libraries(benchmark, folders, tmp_path, monkeypatch):
    from fpdm_bench.commands.score import score_folders

    real, gen = folders
    inception = _pytorch_fid_inception(tmp_path, monkeypatch)
    torch.set_num_threads(torch.get_num_threads())
    t0 = time.perf_counter()
    ref = reference_libraries(real, gen, inception)
    t_ref = time.perf_counter() - t0

    rounds = iter(range(1000))

    def one_pass():  # a fresh reference-statistics cache each time: the real folder is scored too
        return score_folders(real, gen, "standard", cache=tmp_path / f"cache{next(rounds)}")["metrics"]

    bare_inception(real, gen)  # warm-up: network built and cached, as for the one-pass run below
    floors = []
    for _ in range(2):
        t0 = time.perf_counter()
        bare_inception(real, gen)
        floors.append(time.perf_counter() - t0)
    t_floor = min(floors)
    ours = benchmark.pedantic(one_pass, rounds=1, iterations=1)
    t_ours = benchmark.stats.stats.mean
    assert ours["fid"]["value"] == pytest.approx(ref["fid"], rel=1e-3)
    assert ours["kid"]["value"] == pytest.approx(ref["kid"], rel=1e-3, abs=1e-6)
    for name in ("ssim", "ssim_gauss"):
        assert ours[name]["value"] == pytest.approx(ref[name], abs=1e-4)
    assert ours["psnr"]["value"] == pytest.approx(ref["psnr"], rel=1e-6)
    assert ours["mae"]["value"] == pytest.approx(ref["mae"], abs=1e-7)
    benchmark.extra_info.update(n_images=N, size=list(SIZE), reference_seconds=round(t_ref, 2),
                                one_pass_seconds=round(t_ours, 2), speedup=round(t_ref / t_ours, 2),
                                floor_seconds=round(t_floor, 2), over_floor=round(t_ours / t_floor, 2),
                                lpips="computed" if ours.get("lpips", {}).get("value") is not None else "n/a (weights missing)")
    print(f"\nscoring {N} pairs at {SIZE[0]}x{SIZE[1]}: reference libraries {t_ref:.1f} s, one pass {t_ours:.1f} s, "
          f"speed-up {t_ref / t_ours:.2f}x; bare Inception floor {t_floor:.1f} s, one pass / floor "
          f"{t_ours / t_floor:.2f}x")
