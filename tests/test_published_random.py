"""Random-weight builds of the baselines' published configurations (``--model-arg init=random``).

Parameter counts, state-dict keys and shapes are checked against what the official code built
(tests/fixtures/<model>/manifest.json, made by running the official repositories) on the meta
device, where nothing is allocated. The real builds (slow: SD-size modules take seconds and GBs) are
made one at a time, once per model: seeded, the caller's RNG untouched. A published-size
``generate`` runs for PIDM (about a minute on 2 CPU cores); CFLD's and PoCoLD's take minutes
there, so only their shapes are traced (on meta) and their time is ``fpdm-bench profile``'s job.
"""
from __future__ import annotations

import gc
import hashlib
import json
import math
import re
from pathlib import Path

import pytest
import torch

from fpdm_bench.errors import BenchError
from fpdm_bench.models import load_model
from fpdm_bench.models.random_init import ARCHITECTURES
from fpdm_bench_baselines.cfld.adapter import CFLDAdapter
from fpdm_bench_baselines.pidm.adapter import PIDMAdapter
from fpdm_bench_baselines.pocold.adapter import PoCoLDAdapter

FIXTURES = Path(__file__).parent / "fixtures"
ADAPTERS = {"pidm": PIDMAdapter, "cfld": CFLDAdapter, "pocold": PoCoLDAdapter}
#: the published sampling each random build uses unless told otherwise (the official scripts)
PUBLISHED = {"pidm": {"scheduler": "ddim", "steps": 100, "guidance": 2.0, "nfe": 200, "resolution": [256, 256]},
             "cfld": {"scheduler": "ddpm", "steps": 50, "guidance": 2.0, "nfe": 151, "resolution": [512, 512]},
             "pocold": {"scheduler": "pndm", "steps": 50, "guidance": 5.0, "nfe": 154, "resolution": [512, 384]}}
POCOLD_UNET_PARAMETERS = 108_980_889  # the count of the published UNet


def manifest(model: str) -> dict:
    return json.loads((FIXTURES / model / "manifest.json").read_text())


def shapes(module: torch.nn.Module) -> dict:
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def n_params(key_shapes: dict) -> int:
    return sum(math.prod(s) for s in key_shapes.values())


def on_meta(model: str, **kwargs):
    """The random build, every tensor on the meta device (shapes only, nothing allocated)."""
    with torch.device("meta"):
        return ADAPTERS[model].from_random(device="meta", **kwargs)


def test_pidm_matches_the_official_published_model():
    """852 official tensors; the port builds all but the 184 no official forward uses
    (checkpoint.UNUSED), with the official names and shapes."""
    from fpdm_bench_baselines.pidm.checkpoint import official_key_map

    pub = manifest("pidm")["published"]
    used, unused = official_key_map(pub)
    assert len(pub) == 852 and len(unused) == 184
    model = on_meta("pidm")
    assert shapes(model.model) == {k: pub[k] for k in used}
    info = model.info()
    assert info["parameters"] == n_params({k: pub[k] for k in used}) == 162_374_406
    assert info["parameters"] + n_params({k: pub[k] for k in unused}) == n_params(pub) == 180_355_718
    assert sum(info["parameters_by_part"].values()) == info["parameters"]


def test_cfld_matches_the_official_published_files():
    """Both released files' keys and shapes (condition network, the UNet with its ``model.``
    prefix), their parameter counts, and SD 1.5's VAE."""
    m = manifest("cfld")
    model = on_meta("cfld")
    p = model.pipeline
    parts = model.info()["parameters_by_part"]
    for file, module, part in (("pytorch_model.bin", p.conditioner, "condition_network"),
                               ("pytorch_model_1.bin", p.unet, "unet")):
        assert shapes(module) == m["published"][file], file
        assert parts[part] == m["published_n_params"][file] == n_params(
            {k: v for k, v in m["published"][file].items() if k not in m["published_buffers"].get(file, [])})
    assert parts == {"condition_network": 237_902_392, "unet": 859_520_964, "vae": 83_653_863}
    assert {k: v for k, v in p.unet.model.config.items() if k in m["unet_config_published"]} == {
        k: v for k, v in m["unet_config_published"].items() if not k.startswith("_")}
    assert model.info()["parameters"] == sum(parts.values())


def _legacy_vae_names(key: str) -> str:
    """diffusers' old attention names (the published pipeline's vae/, saved by diffusers 0.14) ->
    today's (what ``AutoencoderKL.from_pretrained`` converts them to)."""
    names = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}
    return re.sub(r"\.attentions\.(\d+)\.(query|key|value|proj_attn)\.",
                  lambda g: f".attentions.{g[1]}.{names[g[2]]}.", key)


def test_pocold_matches_the_official_published_pipeline():
    """UNet (108,980,889 parameters), reference encoder, channel mapper and VAE: keys, shapes and
    counts as the official code built them; the scheduler is SD 1.5's PNDM config."""
    from fpdm_bench_baselines.pocold.pipeline import SD15_SCHEDULER

    m = manifest("pocold")
    model = on_meta("pocold")
    p = model.pipeline
    for name, module in (("unet", p.unet), ("rie", p.rie), ("channel_mapper", p.cm), ("vae", p.vae)):
        pub = {_legacy_vae_names(k) if name == "vae" else k: v for k, v in m["published"][name].items()}
        assert shapes(module) == pub, name
    assert model.info()["parameters_by_part"] == m["published_n_params"]
    assert m["published_n_params"]["unet"] == POCOLD_UNET_PARAMETERS
    assert SD15_SCHEDULER == {k: v for k, v in m["sd15_scheduler_config"].items() if k != "_diffusers_version"}
    assert model.sampler_steps() == 51  # PNDM with skip_prk_steps: 50 steps are 51 evaluations


def test_sd15_vae_architecture_is_the_published_count():
    """The shipped sd15-vae.json builds the VAE both CFLD and PoCoLD measured (83,653,863)."""
    declared = json.loads((ARCHITECTURES / "sd15-vae.json").read_text())["_parameters"]
    assert declared == manifest("pocold")["published_n_params"]["vae"] == 83_653_863
    assert on_meta("cfld").info()["parameters_by_part"]["vae"] == declared


@pytest.mark.parametrize("model", sorted(ADAPTERS))
def test_info_says_random_published_and_no_checkpoint(model):
    info = on_meta(model, seed=7).info()
    assert {k: info[k] for k in ("init", "init_seed", "checkpoint", "checkpoint_sha256", "configuration")} == {
        "init": "random", "init_seed": 7, "checkpoint": None, "checkpoint_sha256": None, "configuration": "published"}
    want = PUBLISHED[model]
    assert {k: info[k] for k in want} == want
    assert info["dtype"] == "float32" and info["parameters"] == sum(info["parameters_by_part"].values())


@pytest.mark.parametrize("model", sorted(ADAPTERS))
def test_load_model_builds_random_with_sampling_arguments(model):
    with torch.device("meta"):
        adapter = load_model(model, init="random", init_seed=3, device="meta", steps=2)
    assert isinstance(adapter, ADAPTERS[model])
    info = adapter.info()
    assert info["init"] == "random" and info["init_seed"] == 3 and info["steps"] == 2


@pytest.mark.parametrize("model", sorted(ADAPTERS))
def test_random_build_takes_temperature_like_a_checkpoint(model):
    """--model-arg temperature reaches a random build as it reaches from_pretrained (default 1, the
    official), and an out-of-range one is refused by the same check."""
    with torch.device("meta"):
        assert load_model(model, init="random", device="meta").info()["temperature"] == 1.0
        assert load_model(model, init="random", device="meta", temperature=0.5).info()["temperature"] == 0.5
        with pytest.raises(BenchError, match="temperature"):
            load_model(model, init="random", device="meta", temperature=-1)


@pytest.mark.parametrize("model, file_arg", [("pidm", "weights"), ("cfld", "vae"), ("pocold", "densepose")])
def test_random_build_takes_no_file_arguments(model, file_arg):
    with pytest.raises(BenchError, match=f"takes no argument '{file_arg}'"):
        load_model(model, init="random", **{file_arg: "somewhere"})


def test_cfld_and_pocold_shapes_at_the_published_size():
    """The whole pipeline traced on meta at the published sizes: 512x512 (CFLD, squeezed to the
    frame) and 512x384 (PoCoLD, 1/8-size part maps), 2 steps."""
    from fpdm_bench.seeding import make_generators

    gens = make_generators(0, ["pair"])
    cfld = on_meta("cfld")
    c = cfld.pipeline.conditioner.config
    assert (c.cond_size, c.pose_size, cfld.pipeline.gen_size) == (256, 256, (512, 512))
    out = cfld.pipeline(torch.zeros(1, 3, 256, 256), torch.zeros(1, 21, 256, 256), gens, (256, 176), steps=2)
    assert out.shape == (1, 3, 256, 176)
    pocold = on_meta("pocold")
    assert pocold.pipeline.gen_size == (512, 384) and pocold.pipeline.latent_factor() == 8
    out = pocold.pipeline(torch.zeros(1, 3, 512, 384), torch.zeros(1, 25, 64, 48), gens, steps=2)
    assert out.shape == (1, 3, 512, 384)


# -- real builds: one published-size model in memory at a time -------------------------------------

def fingerprint(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in module.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy())
    return h.hexdigest()


def modules(adapter) -> torch.nn.Module:
    if isinstance(adapter, PIDMAdapter):
        return adapter.model
    p = adapter.pipeline
    parts = (p.conditioner, p.unet, p.vae) if isinstance(adapter, CFLDAdapter) else (p.unet, p.rie, p.cm, p.vae)
    return torch.nn.ModuleList(parts)


@pytest.fixture(scope="module", params=sorted(ADAPTERS))
def built(request):
    """Built three times, one at a time (seeds 1, 0, 0): the fingerprints of the first two and the
    last build, which the tests use."""
    name, prints = request.param, {}
    rng = torch.get_rng_state()
    for i, seed in enumerate((1, 0)):
        prints[i] = fingerprint(modules(load_model(name, init="random", init_seed=seed)))
        gc.collect()
    adapter = load_model(name, init="random", steps=2)
    yield {"name": name, "adapter": adapter, "seed1": prints[0], "seed0": prints[1],
           "rng_untouched": torch.equal(rng, torch.get_rng_state())}
    del adapter
    gc.collect()


@pytest.mark.slow
def test_same_seed_same_weights_other_seed_other_weights(built):
    again = fingerprint(modules(built["adapter"]))
    assert again == built["seed0"] and again != built["seed1"]
    assert built["rng_untouched"]  # seeded() forks the RNG: the caller's stream is not moved


@pytest.mark.slow
def test_real_build_is_float32_on_cpu_with_the_meta_count(built):
    adapter = built["adapter"]
    params = list(modules(adapter).parameters())
    assert all(p.device.type == "cpu" and p.dtype == torch.float32 for p in params)
    assert adapter.info()["parameters"] == sum(p.numel() for p in params) == on_meta(built["name"]).info()["parameters"]


@pytest.mark.slow
def test_generate_at_the_published_size(built):
    if built["name"] != "pidm":
        pytest.skip(f"{built['name']}: a published-size generate takes 2-3 min on 2 CPU cores (fpdm-bench profile "
                    "--model-arg init=random times it); its shapes are traced on meta above")
    from fpdm_bench.data import open_dataset
    from fpdm_bench.data.base import collate
    from fpdm_bench.seeding import make_generators

    batch = collate([open_dataset("synthetic")[0]])
    out = built["adapter"].generate(batch, make_generators(0, batch["pair_id"]))
    assert out.shape == (1, 3, *batch["source"].shape[-2:]) and out.dtype == torch.float32
    assert torch.isfinite(out).all() and 0 <= float(out.min()) and float(out.max()) <= 1
