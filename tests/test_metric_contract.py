"""The metric contract and registry, directions from the registry, and the output check of every
adapter (NaN, range, shape, dtype) before anything is written."""
import json

import numpy as np
import pytest
import torch

from fpdm_bench.errors import BenchError
from fpdm_bench.metrics import METRICS, Metric, PairedMetric, SequenceMetric, SetMetric
from fpdm_bench.models import MODELS, ModelAdapter
from fpdm_bench.registry import UnknownName
from fpdm_bench.results import Results
from fpdm_bench.runner import RunConfig, run


def test_every_registered_metric_declares_the_contract():
    assert {"fid", "kid", "fd_dinov2", "lpips", "ssim", "psnr", "mae", "l1", "pose"} <= set(METRICS.names())
    for name in METRICS.names():
        cls = METRICS.get(name)
        assert issubclass(cls, Metric) and cls.name == name
        assert isinstance(cls.higher_is_better, bool) and cls.kind in ("paired", "set", "sequence")
        assert issubclass(cls, {"paired": PairedMetric, "sequence": SequenceMetric}.get(cls.kind, SetMetric))
        for m in ("update", "merge", "compute"):
            assert callable(getattr(cls, m))
    assert METRICS.get("fid").higher_is_better is False and METRICS.get("ssim").higher_is_better is True
    with pytest.raises(UnknownName, match="Did you mean 'lpips'"):
        METRICS.get("lpip")


def test_direction_comes_from_the_registry_for_every_key():
    r = Results({"metrics": {"ssim_256": {"value": 0.5, "metric": "ssim"}, "mae": {"value": 0.1, "metric": "mae"},
                             "pose_dist": {"value": 0.2, "metric": "pose"}, "fd_dinov2": {"value": 3.0}}})
    assert r.higher_is_better("ssim_256") is True
    assert r.higher_is_better("mae") is False
    assert r.higher_is_better("pose_dist") is False  # an output of the pose metric
    assert r.higher_is_better("fd_dinov2") is False  # older results without "metric": key = registry name


def test_paired_metrics_merge_in_order_and_drop_remainders():
    a, b = METRICS.get("mae")(drop_remainder=4), METRICS.get("mae")(drop_remainder=4)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(6, 3, 8, 8, generator=g), torch.rand(6, 3, 8, 8, generator=g)
    a.update(x[:3], y[:3], {})
    b.update(x[3:], y[3:], {})
    a.merge(b)
    one = METRICS.get("mae")(drop_remainder=4)
    one.update(x, y, {})
    assert a.values == one.values
    out = a.compute()["mae"]
    assert out["n"] == 4 and out["dropped"] == 2 and out["metric"] == "mae"
    assert out["value"] == pytest.approx(float((x - y).abs().flatten(1).mean(1)[:4].double().mean()), rel=1e-6)


class Broken(ModelAdapter):
    """Test model that returns a broken output (what: nan | range | shape | dtype) for its 3rd pair."""

    name = "broken"

    def __init__(self, device="cpu", dtype=torch.float32, what="nan"):
        super().__init__(device, dtype)
        self.what = what
        self.calls = 0

    def generate(self, batch, generators):
        out = batch["source"].clone()
        bad = [i for i, p in enumerate(batch["pair_id"]) if p.startswith("im002")]
        if self.what == "nan" and bad:
            out[bad[0], :, 3, 3] = float("nan")
        if self.what == "range":
            out = out * 2 - 1
        if self.what == "shape":
            out = out[..., :-1]
        if self.what == "dtype":
            out = (out * 255).to(torch.uint8)
        return out


if "broken" not in MODELS:
    MODELS.register("broken", Broken)


@pytest.mark.parametrize("what,needle", [("nan", "non-finite image for pair im002"), ("range", "in [-1"),
                                         ("shape", "shape"), ("dtype", "uint8")])
def test_bad_model_output_stops_before_writing_that_pair(fixture_root, tmp_path, what, needle):
    out = tmp_path / what
    cfg = RunConfig(model="broken", dataset="fixture", data_root=str(fixture_root), out=str(out), progress=False,
                    protocol="paired", batch_size=1, model_args={"what": what})
    with pytest.raises(BenchError, match="model broken") as e:
        run(cfg, log=lambda m: None)
    assert needle in str(e.value)
    written = [json.loads(x)["pair_id"] for x in (out / "samples.jsonl").read_text().splitlines()]
    pngs = sorted(p.stem for p in (out / "samples").glob("*.png"))
    assert sorted(written) == pngs  # every written image has its line, and nothing more
    if what == "nan":  # the pairs before the bad one were kept, the bad one was not written
        assert written == ["im000_2_im001", "im001_2_im002"]
    else:
        assert written == []


def test_nan_output_message_is_one_line_on_the_command_line(fixture_root, tmp_path):
    from click.testing import CliRunner

    from fpdm_bench.cli import main

    res = CliRunner().invoke(main, ["run", "--model", "broken", "--dataset", "fixture", "--data-root",
                                    str(fixture_root), "--out", str(tmp_path / "r"), "--protocol", "paired",
                                    "--no-progress", "--model-arg", "what=nan"])
    assert res.exit_code != 0 and isinstance(res.exception, BenchError)
    assert "\n" not in str(res.exception) and "NaN" in str(res.exception)


def test_set_metric_state_merges_across_processes():
    fid_a, fid_b, fid_all = (METRICS.get("fid")(replicates=3) for _ in range(3))
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(40, 8))
    ids = [str(i) for i in range(40)]
    fid_a.update(feats[:20], ids[:20])
    fid_b.update(feats[20:], ids[20:])
    fid_all.update(feats, ids)
    fid_a.merge(fid_b)
    ref = rng.normal(size=(50, 8)) + 0.3

    class Ref:  # reference statistics as refstats gives them
        from fpdm_bench.refstats import Moments
        from fpdm_bench.metrics.fid import psd_factor

        sigma = np.cov(ref, rowvar=False)
        moments = {0: Moments(ref.mean(0), sigma, psd_factor(sigma), 50, 0)}

    a, b = fid_a.compute(Ref)["fid"], fid_all.compute(Ref)["fid"]
    # merged partial sums add in another order than one running sum, and LAPACK's eigensolver (BLAS
    # kernels differ per CPU) amplifies the last bits: 1e-6 relative holds on any x86 machine
    assert a["value"] == pytest.approx(b["value"], rel=1e-6) and a["n"] == b["n"] == 40


def test_a_set_metric_with_one_image_is_unavailable_not_a_crash(tmp_path):
    from PIL import Image

    from fpdm_bench.protocols import get_protocol
    from fpdm_bench.scoring import Scorer
    from helpers import TinyFeatures

    refs = []
    for i in range(3):
        p = tmp_path / f"r{i}.png"
        Image.fromarray(np.full((16, 12, 3), 40 * i, np.uint8)).save(p)
        refs.append(p)
    sc = Scorer(get_protocol("paired").with_changes(name="t", metrics={"fid": {}, "mae": {}}), reference_paths=refs,
                size=(16, 12), networks={"fid-inception": TinyFeatures()}, cache=tmp_path / "c")
    x = torch.rand(1, 3, 16, 12)
    rows = sc.update(x, {"pair_id": ["a"], "target": x})
    out = sc.compute([{"pair_id": "a", "metrics": rows[0]}])
    assert out["mae"]["value"] == 0.0
    assert out["fid"]["value"] is None and "at least 2 images" in out["fid"]["unavailable"]
