"""Bad FPDM checkpoints, tried as a new user would: one line naming the file and what was expected."""
import json
import shutil

import pytest
from click.testing import CliRunner

from fpdm_bench.cli import main
from fpdm_bench.errors import BenchError
from fpdm_bench_reference.adapter import TINY_CHECKPOINT
from fpdm_bench_reference.pipeline import FPDMPipeline


@pytest.fixture
def ckpt(tmp_path):
    """A copy of the shipped tiny checkpoint to damage."""
    dst = tmp_path / "ckpt"
    shutil.copytree(TINY_CHECKPOINT, dst, ignore=shutil.ignore_patterns("*.jsonl", "*.png", "stage1-eval"))
    return dst


def one_line(exc_info, *needles):
    msg = str(exc_info.value)
    assert "\n" not in msg, msg
    for n in needles:
        assert n in msg, msg
    return msg


def test_the_copy_loads(ckpt):
    FPDMPipeline.from_pretrained(ckpt)


def test_not_a_checkpoint_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchError) as e:
        FPDMPipeline.from_pretrained(tmp_path / "empty")
    one_line(e, "empty", "not an FPDM checkpoint folder", "stage1/ and stage2/")


def test_a_run_directory_as_checkpoint(tmp_path):
    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    (run / "results.json").write_text("{}")
    with pytest.raises(BenchError) as e:
        FPDMPipeline.from_pretrained(run)
    one_line(e, "is a run directory", "model.json")


@pytest.mark.parametrize("stage", ["stage1", "stage2"])
def test_truncated_weights(ckpt, stage):
    f = ckpt / stage / "model.safetensors"
    f.write_bytes(f.read_bytes()[:1000])
    with pytest.raises(BenchError) as e:
        FPDMPipeline.from_pretrained(ckpt)
    one_line(e, str(f), "not a readable safetensors file", "truncated or corrupt")


def test_corrupt_weights(ckpt):
    f = ckpt / "stage2" / "model.safetensors"
    data = bytearray(f.read_bytes())
    data[:8] = b"\xff" * 8  # header length now absurd
    f.write_bytes(bytes(data))
    with pytest.raises(BenchError) as e:
        FPDMPipeline.from_pretrained(ckpt)
    one_line(e, str(f), "not a readable safetensors file")


def test_weights_of_another_model(ckpt):
    shutil.copy(ckpt / "stage1" / "model.safetensors", ckpt / "stage2" / "model.safetensors")
    with pytest.raises(BenchError) as e:
        FPDMPipeline.from_pretrained(ckpt)
    one_line(e, str(ckpt / "stage2" / "model.safetensors"), "does not match the FPDM stage-2 model", "missing")


def test_config_that_does_not_fit_the_weights(ckpt):
    cfg_file = ckpt / "stage1" / "config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["vision_config"]["hidden_size"] = cfg["vision_config"]["hidden_size"] * 2
    cfg_file.write_text(json.dumps(cfg))
    with pytest.raises(BenchError) as e:
        FPDMPipeline.from_pretrained(ckpt)
    one_line(e, str(ckpt / "stage1" / "model.safetensors"), "do not fit the FPDM stage-1 model")


def test_cli_prints_one_line(ckpt, fixture_root, tmp_path):
    f = ckpt / "stage2" / "model.safetensors"
    f.write_bytes(f.read_bytes()[:1000])
    res = CliRunner().invoke(main, ["run", "--model", "fpdm", "--checkpoint", str(ckpt), "--dataset", "fixture",
                                    "--data-root", str(fixture_root), "--out", str(tmp_path / "r"), "--protocol",
                                    "paired", "--no-progress"])
    assert res.exit_code != 0 and isinstance(res.exception, BenchError)
    assert "truncated or corrupt" in str(res.exception)
    assert not (tmp_path / "r" / "samples.jsonl").exists() or not (tmp_path / "r" / "samples.jsonl").read_text()
