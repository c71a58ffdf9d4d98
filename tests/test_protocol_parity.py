"""Each paper protocol against its official script's arithmetic, written independently here.

The fixture: 6 "original" photos at 550x375 (half of DeepFashion's 750x1101 originals), 12 pairs,
annotations in the 256x176 frame, and for each protocol a folder of "generated" images at the size
and under the names that code base writes. For every protocol the test recomputes, per pair, what
the official script does (which file it reads, how it resizes and quantises, which SSIM window, which
reference images, which pairs a remainder drop removes), with PIL / cv2 / torch / scikit-image /
pytorch-fid called directly, and compares with ``fpdm-bench score --protocol P``.

FID/LPIPS weights are not on this machine, so both sides use the same stand-in networks (a fixed
random feature network for FID, mean |a - b| for LPIPS): what is compared is every image path into
them. Tolerances: 1e-6 on paired metrics (float32 vs float64 arithmetic of the scripts), 1e-3
relative on FID (scipy's sqrtm vs our eigen route, as in test_metrics_fid).

Line references are to the official files (see fpdm_bench/protocols/records.py).
"""
import json

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from pytorch_fid.fid_score import calculate_frechet_distance
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from conftest import open_manifest
from fpdm_bench.commands.score import score_dataset
from fpdm_bench.errors import DataError
from fpdm_bench.protocols import get_protocol
from helpers import TinyFeatures

ORIGINAL = (550, 375)  # H, W
NATIVE = (256, 176)


class MeanAbs(torch.nn.Module):
    """LPIPS stand-in: mean |a - b| per image pair of [0, 1] inputs."""

    def forward(self, a, b, normalize=False):
        return (a - b).abs().mean((1, 2, 3)).view(-1, 1, 1, 1)


NETWORKS = {"torchvision-inception": TinyFeatures(), "lpips-alex": MeanAbs()}


def _texture(rng, h, w):
    low = rng.integers(0, 256, (6, 4, 3), dtype=np.uint8)
    img = np.asarray(Image.fromarray(low).resize((w, h), Image.BICUBIC)).astype(np.int16)
    return np.clip(img + rng.integers(-12, 13, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    root = tmp_path_factory.mktemp("parity")
    (root / "img").mkdir()
    rng = np.random.default_rng(11)
    names = [f"im{i:03d}.jpg" for i in range(6)]
    for n in names:  # lossless content under a .jpg name would be odd: PNG bytes, read by name
        Image.fromarray(_texture(rng, *ORIGINAL)).save(root / "img" / n, format="PNG")
    kps = {n: np.stack([rng.uniform(0, NATIVE[1], 18), rng.uniform(0, NATIVE[0], 18)], 1).tolist() for n in names}
    pairs = [[names[i], names[(i + 1) % 6]] for i in range(6)] + [[names[i], names[(i + 2) % 6]] for i in range(6)]
    (root / "manifest.json").write_text(json.dumps({"size": list(NATIVE), "keypoints": kps, "pairs": pairs}))
    return root


def _generated(ds, folder, size, name, seed=5):
    """'Generated' images: each target original squeezed to ``size`` plus noise, named as the code base does."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for r in ds.pairs:
        base = np.asarray(Image.open(ds.image_path(r.target)).resize(size[::-1], Image.BICUBIC)).astype(np.int16)
        img = np.clip(base + rng.integers(-40, 41, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / name.format(pair_id=r.pair_id, source=r.source, target=r.target))
    return folder


def pil01(path, size=None):
    """PIL open, RGB, optional PIL bicubic resize to size=(H, W), float64 [0, 1] HWC."""
    im = Image.open(path).convert("RGB")
    if size is not None:
        im = im.resize((size[1], size[0]), Image.BICUBIC)
    return np.asarray(im, np.float64) / 255.0


def official_paired(gt, pred, sigma):
    """The paired metrics as the scripts call scikit-image (gt first), on HWC float [0, 1]."""
    g255, p255 = gt * 255, pred * 255
    return {
        "ssim": structural_similarity(gt, pred, data_range=1, win_size=51, channel_axis=2),
        "ssim_256": structural_similarity(g255, p255, gaussian_weights=True, sigma=sigma, use_sample_covariance=False,
                                          channel_axis=2, data_range=p255.max() - p255.min()),
        "psnr": peak_signal_noise_ratio(gt, pred, data_range=1),
        "mae": float(np.abs(gt - pred).sum() / (gt + pred).sum()),
        "l1": float(np.abs(gt - pred).mean()),
    }


def features(images):
    """Stand-in FID features of HWC float images."""
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
    return NETWORKS["torchvision-inception"](x).double().numpy()


def official_fid(gen_images, ref_images):
    a, b = features(gen_images), features(ref_images)
    return calculate_frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def ours(ds, folder, protocol, tmp_path, **kw):
    return score_dataset(ds, folder, protocol, networks=NETWORKS, cache=tmp_path / "cache", **kw)


def check(got, want_rows, keys, drop=()):
    for k in keys:
        vals = [w[k] for pid, w in want_rows if pid not in drop]
        assert got["metrics"][k]["value"] == pytest.approx(np.mean(vals), rel=1e-6, abs=1e-9), k
        assert got["metrics"][k]["n"] == len(vals), k


@pytest.mark.parametrize("name,size", [("fpdm", (256, 176)),
                                       pytest.param("fpdm-512", (512, 352), marks=pytest.mark.slow)])
def test_fpdm_and_fpdm_512(originals, tmp_path, name, size):
    """C2.eval.caculate_metrics.py: every image PIL-bicubic-resized once to the eval size (ground truth from
    the originals), skimage SSIM win 51 / ssim_256 sigma 1.5, GFLA MAE, L1; FID reference = the evaluated
    pairs' unique targets; LPIPS alex in batches of 10, remainder dropped."""
    ds = open_manifest(originals)
    gen = _generated(ds, tmp_path / name, (512, 352), "{source}_2_{target}.png")  # FPDM samples at 512x352
    got = ours(ds, gen, name, tmp_path, limit=11)
    pairs = ds.pairs[:11]
    rows, gens, lp = [], [], {}
    for r in pairs:
        g = pil01(gen / f"{r.source}_2_{r.target}.png", size)
        t = pil01(ds.image_path(r.target), size)
        rows.append((r.pair_id, official_paired(t, g, 1.5)))
        gens.append(g)
        lp[r.pair_id] = np.abs(g - t).mean()
    check(got, rows, ("ssim", "ssim_256", "psnr", "mae", "l1"))
    # LPIPS: batches of 10 over 11 pairs drop 1: the last in (sorted) file-name order
    order = sorted(pairs, key=lambda r: f"{r.source}_2_{r.target}.png")
    assert got["metrics"]["lpips"]["n"] == 10 and got["metrics"]["lpips"]["dropped"] == 1
    assert got["metrics"]["lpips"]["value"] == pytest.approx(np.mean([lp[r.pair_id] for r in order[:10]]),
                                                             rel=1e-6)
    targets = list(dict.fromkeys(r.target for r in pairs))
    assert got["protocol"]["reference_used"]["rule"] == "test-targets"
    assert got["protocol"]["reference_used"]["n_files"] == len(targets) == 6
    ref = [pil01(ds.image_path(t), size) for t in targets]
    assert got["metrics"]["fid"]["value"] == pytest.approx(official_fid(gens, ref), rel=1e-3)
    assert got["protocol"]["real_images"]["ground_truth"] == {"sizes": {"550x375": 6}, "resized_to":
                                                              f"{size[0]}x{size[1]}", "upsampled": 0}


def test_fpdm_reference_is_the_targets_of_the_evaluated_pairs(originals, tmp_path):
    ds = open_manifest(originals)
    gen = _generated(ds, tmp_path / "g", (256, 176), "{pair_id}.png")
    got = ours(ds, gen, "fpdm", tmp_path, limit=3)
    assert got["protocol"]["reference_used"]["n_files"] == 3  # im001, im002, im003 — not all 6 images


def test_pidm(originals, tmp_path):
    """utils/metrics.py: SSIM/PSNR/MAE on the 256x256 files (ground truth = the original squeezed to
    256x256 by PIL bicubic, PNG); FID and LPIPS on cv2.resize(float32, (176, 256)) without rounding, in
    batches of 64 (here 5, so that 12 pairs leave a remainder) dropping the last in sorted file order."""
    ds = open_manifest(originals)
    gen = _generated(ds, tmp_path / "pidm", (256, 256), "{pair_id}_vis.png")
    proto = get_protocol("pidm")
    proto = proto.with_changes(metrics={k: ({**v, "drop_remainder": 5} if "drop_remainder" in v else v)
                                        for k, v in proto.metrics.items()})
    got = ours(ds, gen, proto, tmp_path)

    def squeezed(path):  # PIDM's 256x256 PNGs: PIL bicubic, rounded
        return np.asarray(Image.open(path).convert("RGB").resize((256, 256), Image.BICUBIC), np.uint8)

    def small(arr):  # cv2 path of the FID/LPIPS code: float32 0-255, INTER_LINEAR to 176x256, not rounded
        return cv2.resize(arr.astype(np.float32), (176, 256)) / 255.0

    rows, lp, gen_small = [], {}, {}
    for r in ds.pairs:
        g8 = np.asarray(Image.open(gen / f"{r.pair_id}_vis.png").convert("RGB"))
        t8 = squeezed(ds.image_path(r.target))
        rows.append((r.pair_id, official_paired(t8 / 255.0, g8 / 255.0, 1.2)))
        gen_small[r.pair_id] = small(g8)
        lp[r.pair_id] = np.abs(small(g8) - small(t8)).mean()
    check(got, rows, ("ssim", "ssim_256", "psnr", "mae", "l1"))
    order = [r.pair_id for r in sorted(ds.pairs, key=lambda r: f"{r.pair_id}_vis.png")]
    dropped = set(order[10:])
    assert dropped == {"im005_2_im000", "im005_2_im001"}  # not the last two in dataset order
    assert got["metrics"]["lpips"]["value"] == pytest.approx(np.mean([lp[p] for p in order[:10]]), rel=1e-5)
    assert got["metrics"]["fid"]["n"] == 10 and got["metrics"]["fid"]["dropped"] == 2
    ref_files = sorted(ds.reference_images(), key=lambda p: p.name)
    ref = [small(squeezed(p)) for p in ref_files[:5]]  # 6 reference images, batches of 5: the last one dropped
    want = official_fid([gen_small[p] for p in order[:10]], ref)
    assert got["metrics"]["fid"]["value"] == pytest.approx(want, rel=1e-3)


def test_cfld(originals, tmp_path):
    """models/metrics.py + pose_transfer_test.py: generated 512x512 -> F.interpolate(bicubic, antialias)
    to 256x176 -> x*255 -> uint8 truncation; ground truth and reference through PIL bicubic (rounded)."""
    ds = open_manifest(originals)
    gen = _generated(ds, tmp_path / "cfld", (512, 512), "{pair_id}.png")
    got = ours(ds, gen, "cfld", tmp_path)
    rows, gens = [], []
    for r in ds.pairs:
        x = torch.from_numpy(np.asarray(Image.open(gen / f"{r.pair_id}.png"), np.float32) / 255).permute(2, 0, 1)[None]
        x = F.interpolate(x, size=NATIVE, mode="bicubic", antialias=True)
        g = (x.float() * 255).clamp(0, 255).to(torch.uint8).float().div(255)[0].permute(1, 2, 0).double().numpy()
        t = pil01(ds.image_path(r.target), NATIVE)
        rows.append((r.pair_id, official_paired(t, g, 1.5)))
        gens.append(g)
    check(got, rows, ("ssim", "ssim_256", "psnr"))
    assert "mae" not in got["metrics"]
    ref = [pil01(p, NATIVE) for p in ds.reference_images()]
    assert got["metrics"]["fid"]["value"] == pytest.approx(official_fid(gens, ref), rel=1e-3)


def test_pocold(originals, tmp_path):
    """metrics.py (GFLA lineage): images read as stored (256x176 ground truth), no resize; batches of 64
    (12 pairs: the script shrinks the batch, nothing dropped)."""
    ds = open_manifest(originals)
    gen = _generated(ds, tmp_path / "pocold", NATIVE, "{pair_id}_vis.png")
    got = ours(ds, gen, "pocold", tmp_path)
    rows = [(r.pair_id, official_paired(pil01(ds.image_path(r.target), NATIVE), pil01(gen / f"{r.pair_id}_vis.png"),
                                        1.5)) for r in ds.pairs]
    check(got, rows, ("ssim", "ssim_256", "psnr", "mae", "l1"))
    assert got["metrics"]["lpips"]["n"] == 12 and "dropped" not in got["metrics"]["lpips"]


def test_small_ground_truth_is_refused_unless_allowed(originals, tmp_path):
    """A 512x352 protocol given only 256x176 files would compare against upsampled ground truth."""
    small = tmp_path / "small"
    (small / "img").mkdir(parents=True)
    for p in (originals / "img").iterdir():
        Image.open(p).resize(NATIVE[::-1], Image.BICUBIC).save(small / "img" / p.name, format="PNG")
    (small / "manifest.json").write_text((originals / "manifest.json").read_text())
    ds = open_manifest(small)
    gen = _generated(ds, tmp_path / "g", (512, 352), "{pair_id}.png")
    with pytest.raises(DataError, match="smaller than protocol fpdm-512's evaluation size 512x352"):
        ours(ds, gen, "fpdm-512", tmp_path)
    got = ours(ds, gen, "fpdm-512", tmp_path, allow_upsampled=True)
    assert got["protocol"]["real_images"]["ground_truth"]["upsampled"] == 6


def test_cfld_train_list_reference_and_its_fallback(tmp_path):
    from fpdm_bench.data.synth import synthesize_deepfashion
    from fpdm_bench.data.deepfashion import open_deepfashion
    from fpdm_bench.scoring import Scorer

    root = tmp_path / "df"
    synthesize_deepfashion(root, train_identities=2, test_identities=1, poses=2)
    ds = open_deepfashion(root)
    sc = Scorer("cfld", dataset=ds, networks=NETWORKS, pairs=ds.pairs)
    paths, rule = sc.reference_set()
    assert rule.startswith("train (train-list unavailable") and len(paths) == len(ds.reference_images("train"))
    names = sorted(p.name for p in ds.reference_images("train"))[:3]
    (root / "train.lst").write_text("\n".join(names) + "\n")
    paths, rule = sc.reference_set()
    assert rule == "train-list" and sorted(p.name for p in paths) == names


def test_records_cite_their_sources_and_say_what_is_added():
    for name in ("fpdm", "fpdm-512", "pidm", "cfld", "pocold"):
        p = get_protocol(name)
        for key in ("eval_size", "fid", "lpips", "ssim", "ssim_256", "psnr", "reference"):
            if key != "reference" or p.reference:
                assert key in p.citations and ":" in p.citations[key], (name, key)
        assert "KID is not in the official script" in p.notes
        assert "transform_input" in p.notes and "ImageNet normalisation" not in p.notes.replace(
            "neither ImageNet mean/std normalisation", "")
    assert "DistModel" in get_protocol("pocold").notes and "31bc127" in get_protocol("pocold").notes


def test_score_real_folders_check_the_ground_truth_size(tmp_path):
    from fpdm_bench.commands.score import score_folders

    rng = np.random.default_rng(0)
    for sub in ("real", "gen"):
        (tmp_path / sub).mkdir()
        for i in range(3):
            Image.fromarray(_texture(rng, 64, 44)).save(tmp_path / sub / f"x{i}.png")
    with pytest.raises(DataError, match="smaller than protocol fpdm-512"):
        score_folders(tmp_path / "real", tmp_path / "gen", "fpdm-512", networks=NETWORKS, cache=tmp_path / "c")
    got = score_folders(tmp_path / "real", tmp_path / "gen", "fpdm-512", networks=NETWORKS, cache=tmp_path / "c",
                        allow_upsampled=True)
    assert got["protocol"]["real_images"]["ground_truth"]["upsampled"] == 3
