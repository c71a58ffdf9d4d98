"""Official FPDM checkpoints across transformers versions, and the official training recipe in the paper configs.

DINOv2 (issue 10 item 10): the official code pins transformers 4.40.1, whose ``Dinov2Model`` names
the attention projections differently from transformers 5. The key manifests in
``tests/fixtures/fpdm_keys/`` (see its README) record both namings; these tests check the converter's
key map against them, and that an official-style stage-2 state dict with the 4.40.1 names converts
and loads strictly into our stage-2 model under the installed transformers.

Training recipe (item 11): the paper configs list the official settings with citations and say
which ones the trainers implement.
"""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import fpdm_bench  # noqa: E402,F401  (torchvision shim first)
import json  # noqa: E402
import re  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from fpdm_bench.errors import BenchError  # noqa: E402
from fpdm_bench_reference.config import load_config, preset_path  # noqa: E402
from fpdm_bench_reference.stage2 import convert as s2convert  # noqa: E402
from fpdm_bench_reference.stage2.model import build_model  # noqa: E402
from helpers import FUSION_DIM, micro_config  # noqa: E402

KEYS_DIR = Path(__file__).parent / "fixtures" / "fpdm_keys"
OFFICIAL_TF = "4.40.1"  # dhlee-work/FPDM requirements.txt l.14
REFERENCE_5X = "5.24.0"


def manifest(version):
    return json.loads((KEYS_DIR / f"dinov2_keys_transformers-{version}.json").read_text())


def key_shapes(m, config):
    return [(k, tuple(shape)) for k, shape in m["keys"][config]]


def all_manifests():
    return sorted(KEYS_DIR.glob("dinov2_keys_transformers-*.json"))


# --- the key map against the manifests -----------------------------------------------------------


def test_manifests_are_what_they_claim():
    old, new = manifest(OFFICIAL_TF), manifest(REFERENCE_5X)
    assert old["transformers"] == OFFICIAL_TF and new["transformers"] == REFERENCE_5X
    for config in ("small", "large"):
        a, b = key_shapes(old, config), key_shapes(new, config)
        assert len(a) == len(b) and sorted(s for _, s in a) == sorted(s for _, s in b)
        assert any(".attention.attention.query." in k for k, _ in a) and not any("q_proj" in k for k, _ in a)
        assert any(".attention.q_proj." in k for k, _ in b) and not any("attention.attention" in k for k, _ in b)
        assert not any(k.endswith("position_ids") for k, _ in a + b)
    n_layers = old["configs"]["large"]["num_hidden_layers"]
    # dinov2-large: 5 embedding tensors + 18 per layer + the final layernorm's 2
    assert n_layers == 24 and len(key_shapes(old, "large")) == 5 + 18 * n_layers + 2
    assert dict(key_shapes(old, "large"))["embeddings.position_embeddings"] == (1, 1 + 37 * 37, 1024)


@pytest.mark.parametrize("path", all_manifests(), ids=lambda p: p.stem)
@pytest.mark.parametrize("config", ["small", "large"])
def test_key_map_takes_every_version_to_either_naming(path, config):
    """Renaming any recorded version's keys gives exactly the 4.40.1 list, and exactly the 5.x list."""
    m = json.loads(path.read_text())
    for naming, ref in (("4", OFFICIAL_TF), ("5", REFERENCE_5X)):
        renamed = sorted((s2convert.rename_dinov2(k, naming), s) for k, s in key_shapes(m, config))
        assert renamed == sorted(key_shapes(manifest(ref), config)), (path.name, naming)


def test_rename_rejects_an_unknown_naming():
    with pytest.raises(BenchError, match="DINOv2 naming"):
        s2convert.rename_dinov2("encoder.layer.0.attention.attention.query.weight", "6")


def test_installed_naming_matches_the_installed_model_and_a_manifest():
    from transformers import Dinov2Config, Dinov2Model

    small = manifest(OFFICIAL_TF)["configs"]["small"]
    with torch.device("meta"):
        installed = [(k, tuple(v.shape)) for k, v in Dinov2Model(Dinov2Config(**small)).state_dict().items()]
    naming = s2convert.dinov2_naming()
    expected = key_shapes(manifest(OFFICIAL_TF if naming == "4" else REFERENCE_5X), "small")
    assert sorted(installed) == sorted(expected)


# --- an official-style stage-2 state dict with the 4.40.1 names ------------------------------------

# ours -> official Lightning prefixes for everything but the DINOv2 encoder (latest FPDM code)
OFFICIAL_PREFIXES = [("fusion_proj.", "unet.class_embedding.net."), ("unet.", "unet."), ("vae.", "vae."),
                     ("source_proj.", "sd_model.srcimage_proj_model.net."), ("pose_embed.", "sd_model.pose_t_proj.")]


def manifest_model(seed=0):
    """A micro stage-2 model whose source encoder has the manifests' ``small`` DINOv2 config."""
    cfg = manifest(OFFICIAL_TF)["configs"]["small"]
    overrides = [f"stage2.source_encoder.config.{k}={v}" for k, v in cfg.items()]
    overrides.append(f"stage2.source_encoder.image_size=[{cfg['image_size']},{cfg['image_size']}]")
    torch.manual_seed(seed)
    return build_model(micro_config(*overrides), FUSION_DIM).eval()


def official_state(model, version=OFFICIAL_TF, seed=7):
    """What the official LightningModule's state_dict would hold: our non-encoder weights under the
    official prefixes (UNet twice, as unet.* and sd_model.unet.*), and a DINOv2 encoder whose names
    and shapes come from the transformers ``version`` manifest, filled with seeded random values."""
    state = {}
    for k, v in model.state_dict().items():
        if k.startswith("source_encoder."):
            continue
        ours, theirs = next(p for p in OFFICIAL_PREFIXES if k.startswith(p[0]))
        state[theirs + k[len(ours):]] = v.clone()
        if ours == "unet.":
            state["sd_model.unet." + k[len(ours):]] = v.clone()
    g = torch.Generator().manual_seed(seed)
    encoder = {k: torch.randn(shape, generator=g) for k, shape in key_shapes(manifest(version), "small")}
    state.update({"src_image_encoder." + k: v for k, v in encoder.items()})
    return state, encoder


@pytest.mark.parametrize("version", [OFFICIAL_TF, REFERENCE_5X])
def test_official_state_converts_and_loads_strictly(version, tmp_path):
    """4.40.1 names (the official file) and 5.x names (a file re-saved under transformers 5) both load."""
    from fpdm_bench_reference.convert import _load_strict, load_official_checkpoint

    src = manifest_model(seed=0)
    state, encoder = official_state(src, version)
    torch.save({"state_dict": state, "epoch": 99, "global_step": 1}, tmp_path / "last.ckpt")
    converted = load_official_checkpoint(tmp_path / "last.ckpt").stage2
    naming = s2convert.dinov2_naming()
    fresh = manifest_model(seed=123)
    _load_strict(fresh, converted, "stage 2")  # the pipeline converter's check: nothing unexpected
    fresh.load_state_dict(converted, strict=True)
    loaded = fresh.state_dict()
    for k, v in encoder.items():
        torch.testing.assert_close(loaded["source_encoder." + s2convert.rename_dinov2(k, naming)], v,
                                   rtol=0, atol=0, msg=k)
    for k, v in src.state_dict().items():
        if not k.startswith("source_encoder."):
            torch.testing.assert_close(loaded[k], v, rtol=0, atol=0, msg=k)
    with torch.no_grad():  # the loaded encoder runs
        tokens = fresh.encode_source(torch.rand(1, 3, 40, 28))
    assert torch.isfinite(tokens).all()


@pytest.mark.parametrize("naming", ["4", "5"])
def test_converter_writes_the_requested_naming(naming):
    """Whatever transformers is installed, the converter can target either naming exactly."""
    state, _ = official_state(manifest_model())
    out = s2convert.convert_official_stage2(state, dinov2_names=naming)
    prefix = "source_encoder."
    got = sorted((k[len(prefix):], tuple(v.shape)) for k, v in out.items() if k.startswith(prefix))
    assert got == sorted(key_shapes(manifest(OFFICIAL_TF if naming == "4" else REFERENCE_5X), "small"))


def test_without_the_key_map_the_official_names_would_not_load(monkeypatch):
    """The strict load above depends on the renaming: with it switched off, the 4.40.1 names are rejected."""
    if s2convert.dinov2_naming() == "4":
        pytest.skip("transformers 4.x installed: the official names are already the installed ones")
    monkeypatch.setattr(s2convert, "rename_dinov2", lambda key, naming: key)
    state, _ = official_state(manifest_model())
    converted = s2convert.convert_official_stage2(state)
    with pytest.raises(RuntimeError, match="attention.attention.query"):
        manifest_model(seed=1).load_state_dict(converted, strict=True)


# --- the official training recipe in the paper configs --------------------------------------------


def official_entries(stage):
    """The ``# official:`` comment entries of a paper config (continuation lines joined), by setting."""
    entries, current = {}, None
    for line in preset_path(stage, "paper").read_text().splitlines():
        if line.startswith("# official:"):
            name, _, rest = line[len("# official:"):].partition("=")
            current = name.strip()
            entries[current] = rest.strip()
        elif current and line.startswith("#   "):
            entries[current] += " " + line[1:].strip()
        else:
            current = None
    return entries


def parts(entry):
    """setting | implemented or not | citation"""
    fields = [f.strip() for f in entry.split(" | ")]
    assert len(fields) == 3, entry
    return fields


STAGE2_RECIPE = {  # setting: (phrases of the official value, implemented?, a citation)
    "lr schedule": (["warm-up over 5 epochs", "x0.1 (1e-5) from epoch 55", "max_epochs 100"], "NOT",
                    "model.py l.63-79"),
    "batch": (['"# 42"', "accumulate_grad_batches 3", "42 x 3 = 126"], "partly", "c1 l.1, l.7, l.10"),
    "keypoint jitter": (["N(0, 1)", "always applied"], "NOT", "dataset.py l.99-111"),
    "horizontal flip": (["p 0.5", "joints swapped"], "NOT", "dataset.py l.113-119"),
    "same-image pairs": (["p 0.05"], "NOT", "dataset.py l.131-136"),
    "low-resolution sources": (["50 %", "256x256"], "NOT", "dataset.py l.137-144"),
    "condition dropout": (["one coin per batch", "not per sample", "pose 0.2", "source tokens 0.2", "fusion 0.2"],
                          "partly", "model.py l.217-218, l.250-259"),
    "optimizer": (["lr 1e-4", "weight decay 0.0"], "implemented", "c1 l.9, l.12"),
    "noise offset": (["0.1"], "implemented", "c1 l.36"),
    "precision": (["16-mixed"], "NOT", "B2 l.126"),
    "DINOv2 numerics": (["transformers 4.40.1", "scale_factor=36.1/37", "size=(36, 36)"], "implemented",
                        "modeling_dinov2.py l.96-109"),
}
STAGE1_RECIPE = {
    "epochs": (["max_epochs 5"], "implemented (train.epochs 5)", "b1 l.1, l.13"),
    "input dropout": (["img_pose_drop_rate 0.0", "per-sample coin"], "not implemented, which equals the official 0.0",
                      "b1 l.1, l.11"),
    "combiner dropout": (["nn.Dropout(0.5)"], "implemented", "models.py l.29-37"),
    "batch": (['"# 48"', "accumulate_grad_batches 1"], "implemented", "b1 l.1, l.8, l.16"),
    "optimizer": (["lr 1e-5", "weight decay 1e-4", "no lr scheduler"], "implemented", "b1 l.14-15"),
}


@pytest.mark.parametrize("stage,recipe", [("stage2", STAGE2_RECIPE), ("stage1", STAGE1_RECIPE)])
def test_paper_configs_record_the_official_recipe(stage, recipe):
    entries = official_entries(stage)
    text = preset_path(stage, "paper").read_text()
    assert "dhlee-work/FPDM @ 7d90524" in text
    for setting, (phrases, status, citation) in recipe.items():
        assert setting in entries, f"{stage} paper config: no '# official: {setting} =' entry"
        value, implemented, cited = parts(entries[setting])
        for phrase in phrases:
            assert phrase in value, (setting, phrase)
        assert implemented.startswith(status), (setting, implemented)
        assert citation in cited, (setting, cited)
        assert re.search(r"l\.\d+", cited), (setting, cited)
    for setting, entry in entries.items():  # every entry says whether it is implemented, with lines
        _, implemented, cited = parts(entry)
        assert re.match(r"(implemented|NOT implemented|not implemented|partly)", implemented), (setting, implemented)
        assert re.search(r"l\.\d+", cited), (setting, cited)


def test_paper_config_keys_match_the_recorded_official_values():
    """The settings marked implemented are the values the trainers read."""
    s1, s2 = load_config("stage1", "paper"), load_config("stage2", "paper")
    assert s1["train"]["epochs"] == 5 and s1["train"]["batch_size"] == 48
    assert s1["train"]["lr"] == 1e-5 and s1["train"]["weight_decay"] == 1e-4 and s1["train"]["warmup_steps"] == 0
    assert s1["stage1"]["combiner"]["dropout"] == 0.5
    assert s2["train"]["batch_size"] == 42 and s2["train"]["lr"] == 1e-4 and s2["train"]["weight_decay"] == 0.0
    assert s2["stage2"]["noise_offset"] == 0.1
    assert s2["stage2"]["condition_dropout"] == {"source": 0.2, "fusion": 0.2, "pose": 0.2}
    assert s2["stage2"]["source_proj"]["dropout"] == 0.2 and s2["stage2"]["fusion_proj"]["dropout"] == 0.2
