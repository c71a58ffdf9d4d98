"""The sampling options every model gets for the like-for-like search (issue 29): ``temperature`` (the
initial noise's scale) for PIDM, CFLD and PoCoLD as FPDM has it, CFLD's optional DDIM, and the search
grid of tools/sampling_search.py (the same settings for every model)."""
import importlib.util
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import fpdm_bench  # noqa: E402,F401  (torchvision shim first)
import pytest  # noqa: E402
import torch  # noqa: E402

from fpdm_bench.errors import BenchError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _adapter(model, **kw):
    """The shipped tiny checkpoint of ``model`` at 3 sampler steps."""
    if model == "pidm":
        from fpdm_bench_baselines.pidm.adapter import PIDMAdapter as A
    elif model == "cfld":
        from fpdm_bench_baselines.cfld.adapter import CFLDAdapter as A
    else:
        from fpdm_bench_baselines.pocold.adapter import PoCoLDAdapter as A
    return A.from_pretrained(None, steps=3, **kw)


def _batch():
    from fpdm_bench.data import open_dataset

    ds = open_dataset("synthetic")
    recs = ds.pairs[:2]
    kp = lambda names: torch.stack([torch.tensor(ds.keypoints(x), dtype=torch.float32) for x in names])  # noqa: E731
    return {"source": torch.stack([ds.load_image(r.source) for r in recs]),
            "source_kp": kp([r.source for r in recs]), "target_kp": kp([r.target for r in recs]),
            "pair_id": [r.pair_id for r in recs]}


def _gens(seed):
    return [torch.Generator().manual_seed(seed + i) for i in range(2)]


# A deterministic sampler (PIDM's and CFLD's DDIM, PoCoLD's PNDM) from temperature 0 starts at the mean
# and draws nothing more, so the image cannot depend on the pair's seed; at temperature 1 it must.
# Same process, same order: bit-identity is what the code guarantees.
@pytest.mark.parametrize("model,kw", [("pidm", {"scheduler": "ddim"}), ("cfld", {"scheduler": "ddim"}),
                                      ("pocold", {})])
def test_temperature_zero_on_a_deterministic_sampler_ignores_the_seed(model, kw):
    batch = _batch()
    cold = _adapter(model, temperature=0.0, **kw)
    assert cold.info()["temperature"] == 0.0
    assert torch.equal(cold.generate(batch, _gens(0)), cold.generate(batch, _gens(100)))
    warm = _adapter(model, **kw)
    assert warm.info()["temperature"] == 1.0  # the default: the official noise
    assert not torch.equal(warm.generate(batch, _gens(0)), warm.generate(batch, _gens(100)))


@pytest.mark.parametrize("model", ["pidm", "cfld", "pocold"])
def test_temperature_one_is_the_default_bit_for_bit(model):
    batch = _batch()
    assert torch.equal(_adapter(model).generate(batch, _gens(3)),
                       _adapter(model, temperature=1.0).generate(batch, _gens(3)))


@pytest.mark.parametrize("model", ["pidm", "cfld", "pocold"])
def test_a_temperature_outside_zero_one_is_refused(model):
    with pytest.raises(BenchError, match=f"{model}: temperature must be in \\[0, 1\\], got 1.5"):
        _adapter(model, temperature=1.5)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "warm", None])
def test_check_temperature_refuses_what_is_not_in_zero_one(bad):
    from fpdm_bench.seeding import check_temperature

    with pytest.raises(BenchError, match="m: temperature must be"):
        check_temperature(bad, "m")
    assert check_temperature("0.5", "m") == 0.5


def test_cfld_ddim_is_offered_with_the_official_timesteps_and_a_bad_name_is_refused():
    from fpdm_bench_baselines.cfld.sampler import make_scheduler

    ddim, ddpm = make_scheduler(50, "ddim"), make_scheduler(50)
    assert torch.equal(ddim.timesteps, ddpm.timesteps)  # 981, 961, ..., 1: the same grid, no noise drawn
    assert _adapter("cfld", scheduler="ddim").info()["scheduler"] == "ddim"
    with pytest.raises(BenchError, match="unknown scheduler 'dpm'.*ddpm, ddim"):
        _adapter("cfld", scheduler="dpm")


def _search_tool():
    spec = importlib.util.spec_from_file_location("sampling_search", ROOT / "tools" / "sampling_search.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_model_gets_the_same_search_grid():
    """Same settings, same temperatures, a deterministic sampler and guidance 1 where the name says so,
    tau only for a checkpoint with a prior (and 0 in the grid then, whatever the checkpoint's)."""
    tool = _search_tool()
    assert sorted(tool.STEPS) == ["cfld", "fpdm", "pidm", "pocold"]
    for model in tool.STEPS:
        plain, prior = tool.grid(model, False), tool.grid(model, True)
        assert list(plain) == ["paper", "det-t0", "det-t0.5-g1", "det-t0-g1"]
        assert [g["temperature"] for g in plain.values()] == [1.0, 0.0, 0.5, 0.0]
        assert all("residual_threshold" not in g for g in plain.values())
        assert all(g["residual_threshold"] == 0.0 for g in prior.values())
        for name, g in plain.items():
            assert g.get("scheduler") in ((None, "ddpm") if name == "paper" else (None, "ddim"))
            assert (g["guidance"] == 1.0) == name.endswith("g1")
