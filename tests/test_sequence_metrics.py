"""Sequence metrics (flicker, tOF, tLP, FVD) on datasets whose pairs are frames of videos.

Each metric is checked against a direct computation (numpy; cv2 called directly with TecoGAN's
arguments; a stand-in LPIPS; pytorch-fid's Fréchet distance on a stand-in I3D's features), then
through runs of the tiny synthetic PHOENIX set: the oracle at 0, shuffled frames clearly worse,
values independent of batch size and shards, `compare` with a CI over videos, and n/a (with the
reason) where a dataset declares no videos or a weight file is missing.
"""
import shutil

import numpy as np
import pytest
import torch
import torch.nn as nn
from helpers import NoisyCopy

from fpdm_bench.data import open_dataset
from fpdm_bench.data.synth import synthesize_phoenix
from fpdm_bench.errors import WeightsMissing
from fpdm_bench.metrics import METRICS, MetricContext, SequenceMetric
from fpdm_bench.models import MODELS
from fpdm_bench.protocols import PROTOCOLS, Protocol, get_protocol, register
from fpdm_bench.rundir import read_sequences
from fpdm_bench.runner import RunConfig, merge, run
from fpdm_bench.sequences import videos
from fpdm_bench.stats.comparison import compare_runs

if "noisy-copy" not in MODELS:
    MODELS.register("noisy-copy", NoisyCopy, "test model")
if "t-seq" not in PROTOCOLS:
    register(Protocol(name="t-seq", description="test: mae + flicker + tOF", source="test",
                      metrics={"mae": {"variant": "mean_abs"}, "flicker": {}, "tof": {}}))

SEQ_KEYS = ("flicker", "tof")
SHUFFLE = [3, 0, 5, 1, 4, 2]  # a permutation of 6 frames that keeps no two neighbours adjacent


def _frames(seed, f=5, h=8, w=6):
    """[F, 3, H, W] 8-bit-valued frames in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (f, 3, h, w), generator=g).float() / 255


def _sequence_entries(res):
    return {k: res["metrics"][k] for k in SEQ_KEYS}


@pytest.fixture(scope="module")
def phoenix_root(tmp_path_factory):
    """3 test videos x 6 frames (18 pairs) at 260x210: the embedded set, small."""
    root = tmp_path_factory.mktemp("phx") / "synthetic-phoenix"
    synthesize_phoenix(root, train_videos=1, test_videos=3, frames=6)
    return root


def _cfg(root, out, **kw):
    base = dict(model="noisy-copy", dataset="synthetic-phoenix", data_root=str(root), out=str(out), progress=False,
                protocol="t-seq")
    base.update(kw)
    return RunConfig(**base)


@pytest.fixture(scope="module")
def runs(phoenix_root, tmp_path_factory):
    """Runs of the tiny set under t-seq: noisy-copy (batch 1), oracle, keypoint-warp."""
    out = tmp_path_factory.mktemp("runs")
    res = {m: run(_cfg(phoenix_root, out / m, model=m, batch_size=1 if m == "noisy-copy" else 4), log=lambda s: None)
           for m in ("noisy-copy", "oracle", "keypoint-warp")}
    return out, res


# --- the metrics against direct computations ------------------------------------------------------


def test_flicker_is_the_mean_abs_difference_of_frame_differences():
    g, y = _frames(0), _frames(1)
    m = METRICS.get("flicker")()
    got = m.update("v", [(g, y)])
    gn, yn = g.double().numpy(), y.double().numpy()
    direct = [np.abs((gn[t] - gn[t - 1]) - (yn[t] - yn[t - 1])).mean() for t in range(1, len(g))]
    assert got["per_frame"][0] is None and got["per_frame"][1:] == pytest.approx(direct, abs=1e-15)
    assert got["value"] == pytest.approx(np.mean(direct), abs=1e-15)
    # a gap in the video: no transition across it, one entry per frame
    two = METRICS.get("flicker")().update("v", [(g[:2], y[:2]), (g[2:], y[2:])])
    assert [v is None for v in two["per_frame"]] == [True, False, True, False, False]
    # the same as the generated video shifted by a constant: flicker ignores a per-frame-constant offset
    assert METRICS.get("flicker")().update("v", [(y * 0.5 + 0.25, y * 0.5)])["value"] == pytest.approx(0, abs=1e-7)  # float32 inputs


def _tecogan_crop(img):
    """TecoGAN metrics.py:77-92 (crop_8x8), as written there."""
    ori_h, ori_w = img.shape[0], img.shape[1]
    h, w = (ori_h // 32) * 32, (ori_w // 32) * 32
    while h > ori_h - 16:
        h = h - 32
    while w > ori_w - 16:
        w = w - 32
    y, x = (ori_h - h) // 2, (ori_w - w) // 2
    return img[y:y + h, x:x + w]


def test_tof_matches_calling_cv2_as_tecogan_does(phoenix_root):
    import cv2

    ds = open_dataset("synthetic-phoenix", phoenix_root)
    (_, runs), = videos(ds.pairs)[:1]
    y = torch.stack([ds.load_image(p.target) for p in runs[0]])
    g = y[SHUFFLE]  # the frames out of order: other flows
    got = METRICS.get("tof")().update("v", [(g, y)])

    def grey(x):
        return [cv2.cvtColor(np.round(a.permute(1, 2, 0).numpy() * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
                for a in x]

    gg, yy = grey(g), grey(y)
    direct = []
    for t in range(1, len(y)):  # TecoGAN metrics.py:147-151,166-168
        target_of = cv2.calcOpticalFlowFarneback(yy[t - 1], yy[t], None, 0.5, 3, 15, 3, 5, 1.2, 0)
        output_of = cv2.calcOpticalFlowFarneback(gg[t - 1], gg[t], None, 0.5, 3, 15, 3, 5, 1.2, 0)
        d = np.absolute(_tecogan_crop(target_of) - _tecogan_crop(output_of))
        direct.append(np.sqrt(np.sum(d * d, axis=-1)).mean())
    assert got["per_frame"][1:] == pytest.approx(direct, rel=1e-6)
    assert got["value"] == pytest.approx(np.mean(direct), rel=1e-6)
    assert METRICS.get("tof")().update("v", [(y, y)])["value"] == 0.0


class StandInLPIPS(nn.Module):
    """lpips.LPIPS's call signature, mean squared difference of [-1, 1] images."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(1.0))

    def forward(self, a, b, normalize=False):
        if normalize:
            a, b = a * 2 - 1, b * 2 - 1
        return ((a - b) ** 2).mean((1, 2, 3), keepdim=True) * self.scale


def test_tlp_with_a_stand_in_network():
    g, y = _frames(2, f=20, h=64, w=56), _frames(3, f=20, h=64, w=56)  # 19 transitions: two LPIPS chunks
    m = METRICS.get("tlp")()
    m.setup(MetricContext(networks={"lpips-alex": StandInLPIPS()}))
    got = m.update("v", [(g, y)])

    def d(x):  # TecoGAN crops the frames (crop_8x8) before LPIPS; 64x56 keeps 32x32
        x = np.stack([_tecogan_crop(a.permute(1, 2, 0).numpy().astype(np.float64)) for a in x]) * 2 - 1
        return ((x[1:] - x[:-1]) ** 2).mean((1, 2, 3))

    direct = np.abs(d(g) - d(y))  # the network runs in float32: |difference| of two float32 distances
    assert got["per_frame"][1:] == pytest.approx(direct.tolist(), abs=1e-6)
    assert got["value"] == pytest.approx(direct.mean(), abs=1e-6)
    oracle = METRICS.get("tlp")()
    oracle.setup(MetricContext(networks={"lpips-alex": StandInLPIPS()}))
    assert oracle.update("v", [(y, y)])["value"] == 0.0


class StandInI3D(nn.Module):
    """uint8 clips [N, 3, T, H, W] -> 5 features: a fixed projection of per-channel, per-frame means."""

    def __init__(self, t=8):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.proj = nn.Parameter(torch.randn(3 * t, 5, generator=g, dtype=torch.float64))

    def forward(self, clips):
        assert clips.dtype == torch.uint8
        x = clips.double().mean((3, 4)).flatten(1) / 255  # [N, 3*T]
        return torch.tanh(x @ self.proj)


def test_fvd_slices_clips_and_matches_pytorch_fid():
    from pytorch_fid.fid_score import calculate_frechet_distance

    net = StandInI3D()
    m = METRICS.get("fvd")(clip_length=8, clip_stride=6, resamples=50)
    m.setup(MetricContext(networks={"i3d": net}))
    vids = {f"v{k}": (_frames(10 + k, f=20), _frames(20 + k, f=20)) for k in range(3)}
    for v, (g, y) in vids.items():  # 20 frames, clips at 0, 6, 12
        assert m.update(v, [(g, y)]) == {"value": None, "clips": 3}
    gap = m.update("gap", [(vids["v0"][0][:7], vids["v0"][1][:7]), (vids["v1"][0][:9], vids["v1"][1][:9])])
    assert gap["clips"] == 1  # a run of 7 frames holds no 8-frame clip; no clip spans the gap
    res = m.compute()["fvd"]

    def clips(x, starts):
        u8 = torch.from_numpy(np.round(x.numpy() * 255).astype(np.uint8)).permute(1, 0, 2, 3)  # [3, F, H, W]
        return torch.stack([u8[:, s:s + 8] for s in starts])

    with torch.no_grad():
        fg = torch.cat([net(clips(g, (0, 6, 12))) for g, _ in vids.values()] + [net(clips(vids["v1"][0][:9], (0,)))])
        fy = torch.cat([net(clips(y, (0, 6, 12))) for _, y in vids.values()] + [net(clips(vids["v1"][1][:9], (0,)))])
    fg, fy = fg.numpy(), fy.numpy()
    # population covariances, as StyleGAN-V's and cd-fvd's FeatureStats.get_mean_cov
    direct = calculate_frechet_distance(fg.mean(0), np.cov(fg, rowvar=False, bias=True),
                                        fy.mean(0), np.cov(fy, rowvar=False, bias=True))
    assert res["value"] == pytest.approx(direct, rel=1e-6)
    assert res["n"] == 4 and res["clips"] == 10 and res["metric"] == "fvd"
    lo, hi = res["ci95"]
    assert lo < hi


def test_fvd_distance_matches_pytorch_fid_on_features():
    from pytorch_fid.fid_score import calculate_frechet_distance

    from fpdm_bench.metrics.fvd import fvd

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(60, 8)), rng.normal(0.3, 1.2, size=(50, 8))
    direct = calculate_frechet_distance(a.mean(0), np.cov(a, rowvar=False, bias=True),
                                        b.mean(0), np.cov(b, rowvar=False, bias=True))
    assert fvd(a, b) == pytest.approx(direct, rel=1e-9)
    assert fvd(a, a) == pytest.approx(0.0, abs=1e-9)


def test_missing_weights_make_tlp_and_fvd_na_with_the_file_named(tmp_path, monkeypatch):
    from fpdm_bench.scoring import Scorer

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("FPDM_BENCH_WEIGHTS", str(tmp_path / "none"))
    monkeypatch.setenv("FPDM_BENCH_OFFLINE", "1")
    for name, file in (("tlp", "alexnet-owt-7be5be79.pth"), ("fvd", "i3d_torchscript.pt")):
        with pytest.raises(WeightsMissing, match=file):
            METRICS.get(name)().setup(MetricContext())
    out = Scorer(Protocol(name="t-na", description="t", source="t", metrics={"tlp": {}, "fvd": {}})).compute([])
    assert "alexnet-owt-7be5be79.pth" in out["tlp"]["unavailable"] and out["tlp"]["value"] is None
    assert "i3d_torchscript.pt" in out["fvd"]["unavailable"]


# --- the contract and the records -----------------------------------------------------------------


def test_sequence_metrics_declare_their_facts():
    for name in ("flicker", "tof", "tlp", "fvd"):
        cls = METRICS.get(name)
        assert issubclass(cls, SequenceMetric) and cls.kind == "sequence" and cls.higher_is_better is False
        assert cls.title and cls.order is not None
    assert METRICS.get("flicker").resample == "sequence" and METRICS.get("fvd").resample is None
    assert METRICS.get("fvd").depends_on_n
    assert [s.filename for s in METRICS.get("fvd").weights] == ["i3d_torchscript.pt"]
    assert METRICS.get("tlp").weights == METRICS.get("lpips").weights  # one AlexNet record


def test_phoenix_protocol_is_standard_plus_the_sequence_metrics():
    std, ph = get_protocol("standard"), get_protocol("phoenix")
    assert {k: v for k, v in ph.metrics.items() if k in std.metrics} == std.metrics  # existing keys unchanged
    assert set(ph.metrics) - set(std.metrics) == {"flicker", "tof", "tlp", "fvd"}
    assert ph.metrics["fvd"] == {"clip_length": 16, "clip_stride": 16}
    assert ph.reference_fingerprint() == std.reference_fingerprint()
    assert all(k in ph.citations for k in ("tof", "tlp", "fvd"))


def test_phoenix_pairs_declare_their_video_and_frame(phoenix_root):
    from fpdm_bench.data.phoenix import frame_order

    ds = open_dataset("synthetic-phoenix", phoenix_root)
    for p in ds.pairs:
        video, name = p.target.split("/")
        assert p.sequence == video and p.frame == int(name[len("images"):-len(".png")]) - 1
    assert [(v, [len(r) for r in runs]) for v, runs in videos(ds.pairs)] == \
        [(v, [6]) for v in dict.fromkeys(p.sequence for p in ds.pairs)]
    # FPDM's layout: a folder's frames ranked by name, numbers as numbers
    assert frame_order(["a/b/images10.png", "a/b/images2.png", "a/c/x.png"]) == \
        {"a/b/images2.png": ("a/b", 0), "a/b/images10.png": ("a/b", 1), "a/c/x.png": ("a/c", 0)}


# --- runs -------------------------------------------------------------------------------------------


def test_oracle_is_at_zero_and_sequences_jsonl_has_a_row_per_video(runs):
    out, res = runs
    for k in SEQ_KEYS:
        e = res["oracle"]["metrics"][k]
        assert e["value"] == 0.0 and e["n"] == 3 and e["unit"] == "videos" and e["metric"] == k
    rows = read_sequences(out / "oracle")
    assert len(rows) == 3 and all(len(r["frames"]) == 6 for r in rows)
    assert all(r["per_frame"]["flicker"] == [None] + [0.0] * 5 for r in rows)
    noisy = res["noisy-copy"]["metrics"]
    assert noisy["flicker"]["value"] > 0.01 and noisy["tof"]["value"] > 0.05
    lo, hi = noisy["flicker"]["ci95"]
    assert lo <= noisy["flicker"]["value"] <= hi
    # the per-video values average to results.json's
    rows = read_sequences(out / "noisy-copy")
    assert np.mean([r["metrics"]["tof"] for r in rows]) == pytest.approx(noisy["tof"]["value"], rel=1e-12)


def test_shuffling_a_videos_generated_frames_makes_flicker_and_tof_clearly_worse(runs, phoenix_root, tmp_path):
    out, res = runs
    shuffled = tmp_path / "shuffled"
    shutil.copytree(out / "keypoint-warp", shuffled)
    (shuffled / "results.json").unlink()
    for row in read_sequences(out / "keypoint-warp"):
        frames = row["frames"]
        for dst, src in zip(frames, [frames[i] for i in SHUFFLE]):
            shutil.copyfile(out / "keypoint-warp" / "samples" / f"{src}.png", shuffled / "samples" / f"{dst}.png")
    again = merge(shuffled, log=lambda s: None)
    for k in SEQ_KEYS:
        before, after = res["keypoint-warp"]["metrics"][k]["value"], again["metrics"][k]["value"]
        # measured: flicker 0.0168 -> 0.0624 (x3.7), tOF 0.866 -> 2.486 (x2.9); at least x2 asked
        assert after > 2 * before, (k, before, after)
        assert again["metrics"][k]["ci95"][0] > res["keypoint-warp"]["metrics"][k]["ci95"][1]


def test_batch_size_and_shards_do_not_change_sequence_values(runs, phoenix_root, tmp_path):
    out, res = runs
    one = res["noisy-copy"]
    four = run(_cfg(phoenix_root, tmp_path / "b4", batch_size=4), log=lambda s: None)
    assert _sequence_entries(four) == _sequence_entries(one)
    sharded = tmp_path / "sh"
    assert run(_cfg(phoenix_root, sharded, shard="0/2", batch_size=5), log=lambda s: None) is None
    assert not (sharded / "sequences.jsonl").exists()  # a shard computes nothing before the last one is done
    last = run(_cfg(phoenix_root, sharded, shard="1/2", batch_size=2), log=lambda s: None)
    assert _sequence_entries(last) == _sequence_entries(one)
    (sharded / "results.json").unlink()
    merged = merge(sharded, log=lambda s: None)
    assert _sequence_entries(merged) == _sequence_entries(one)
    assert read_sequences(sharded) == read_sequences(tmp_path / "b4") == read_sequences(out / "noisy-copy")


def test_compare_gives_a_ci_over_videos(runs):
    out, _ = runs
    cmp = compare_runs(out / "noisy-copy", out / "keypoint-warp")
    rows = {r.metric: r for r in cmp.rows}
    for k in SEQ_KEYS:
        row = rows[k]
        assert row.ci95 is not None and "over videos" in row.method and "3 videos" in row.method
        base = {r["video"]: r["metrics"][k] for r in read_sequences(out / "noisy-copy")}
        new = {r["video"]: r["metrics"][k] for r in read_sequences(out / "keypoint-warp")}
        assert row.delta == pytest.approx(np.mean([new[v] - base[v] for v in base]), rel=1e-12)
        assert row.verdict == "better"  # keypoint-warp's frames move like the signer's; noise flickers


def test_a_dataset_without_videos_reports_sequence_metrics_na(fixture_root, tmp_path):
    res = run(RunConfig(model="noisy-copy", dataset="fixture", data_root=str(fixture_root), out=str(tmp_path / "f"),
                        progress=False, protocol="t-seq"), log=lambda s: None)
    for k in SEQ_KEYS:
        e = res["metrics"][k]
        assert e["value"] is None and "declares no videos" in e["unavailable"]
    assert res["metrics"]["mae"]["value"] is not None
    assert read_sequences(tmp_path / "f") == []  # written, empty: no video
