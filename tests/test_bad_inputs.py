"""Bad inputs, tried as a new user would, through the console entry: one line naming the option or
file and what to do, exit 2; never a silent wrong result, never a raw traceback (issue 25)."""
import errno
import json
import os
import sys

import pytest

from fpdm_bench.cli import entry
from fpdm_bench.errors import BenchError
from fpdm_bench.runner import RunConfig, run


def cli(capsys, monkeypatch, *args):
    """Run `fpdm-bench ARGS` as the console script does: (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["fpdm-bench", *map(str, args)])
    try:
        entry()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys, monkeypatch, *args, needles=()):
    code, out, err = cli(capsys, monkeypatch, *args)
    assert code == 2, (code, out, err)
    assert "Traceback" not in err + out
    lines = [ln for ln in err.splitlines() if ln.lower().startswith("error")]
    assert len(lines) == 1, err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def base(fixture_root, tmp_path):
    return ["run", "--model", "copy-source", "--dataset", "fixture", "--data-root", fixture_root, "--protocol",
            "paired", "--no-progress", "--workers", "0", "--out", tmp_path / "r"]


@pytest.mark.parametrize("option,value", [("--limit", "-1"), ("--limit", "0"), ("--batch-size", "0"),
                                          ("--batch-size", "-3"), ("--steps", "0"), ("--workers", "-1")])
def test_out_of_range_integers_are_refused_before_anything_runs(capsys, monkeypatch, base, tmp_path, option, value):
    # before: --limit -1 scored 11 of 12 pairs, --limit 0 all 12, --batch-size -3 exit 0 with nothing
    # generated; --batch-size 0, --steps 0, --workers -1 tracebacks
    refused(capsys, monkeypatch, *base, option, value, needles=(option, value))
    assert not (tmp_path / "r").exists()


def test_runconfig_validates_for_library_callers(fixture_root, tmp_path):
    for kw, option in ((dict(limit=0), "--limit"), (dict(batch_size=-3), "--batch-size"),
                       (dict(workers=-1), "--workers"), (dict(model_args={"steps": 0}), "--steps")):
        with pytest.raises(BenchError, match=option):
            run(RunConfig(model="copy-source", dataset="fixture", data_root=str(fixture_root),
                          out=str(tmp_path / "r"), **kw), log=lambda m: None)
    assert not (tmp_path / "r").exists()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_one_line(capsys, monkeypatch, base):
    refused(capsys, monkeypatch, *base, "--device", "cuda", needles=("CUDA is not available", "--device cpu"))
    with pytest.raises(BenchError, match="CUDA is not available"):
        RunConfig(model="copy-source", dataset="fixture", out="x", device="cuda").validate()


def test_a_missing_data_root_is_not_created(capsys, monkeypatch, tmp_path):
    # before: the synthetic set was generated into the typo'd folder, exit 0
    typo = tmp_path / "nonexistent"
    refused(capsys, monkeypatch, "run", "--model", "copy-source", "--dataset", "synthetic", "--data-root", typo,
            "--out", tmp_path / "r", needles=(str(typo), "not found", "data synth"))
    assert not typo.exists() and not (tmp_path / "r").exists()


def test_the_default_data_root_and_data_synth_may_create(tmp_path, monkeypatch):
    import fpdm_bench.data as data
    from fpdm_bench.commands.options import existing_data_root

    monkeypatch.setattr(data, "DEFAULT_DATA_HOME", tmp_path / "data")
    default = str(tmp_path / "data" / "synthetic")  # made on first use, as before
    assert existing_data_root(None, None, default) == default
    assert existing_data_root(None, None, None) is None
    with pytest.raises(BenchError, match="not found"):
        existing_data_root(None, None, str(tmp_path / "elsewhere" / "synthetic"))


def config(tmp_path, text):
    f = tmp_path / "run.yaml"
    f.write_text(text)
    return f


def test_config_unknown_key_has_a_did_you_mean(capsys, monkeypatch, base, tmp_path):
    # before: ignored silently (batch size 8)
    refused(capsys, monkeypatch, *base, "--config", config(tmp_path, "batchsize: 4\n"),
            needles=("run.yaml", "'batchsize'", "did you mean 'batch_size'"))


@pytest.mark.parametrize("text,needles", [("batch_size: [1, 2]\n", ("batch_size", "expected one integer", "list")),
                                          ("limit: four\n", ("limit", "'four'")),
                                          ("limit: -1\n", ("limit", "-1"))])
def test_config_wrong_type_is_one_line(capsys, monkeypatch, base, tmp_path, text, needles):
    # before: a YAML list for an integer option was a TypeError traceback
    refused(capsys, monkeypatch, *base, "--config", config(tmp_path, text), needles=("run.yaml", *needles))


def test_config_takes_option_names_and_parameter_names(capsys, monkeypatch, base, tmp_path):
    code, out, err = cli(capsys, monkeypatch, *base, "--config", config(tmp_path, "limit: 2\nbatch-size: 1\n"))
    assert code == 0, err
    assert json.loads((tmp_path / "r" / "results.json").read_text())["n"] == 2


@pytest.fixture
def finished(fixture_root, tmp_path):
    out = tmp_path / "done"
    run(RunConfig(model="copy-source", dataset="fixture", data_root=str(fixture_root), out=str(out), limit=4,
                  protocol="paired", progress=False, workers=0), log=lambda m: None)
    return out


def test_compare_on_an_empty_object(capsys, monkeypatch, finished, tmp_path):
    # before: "results use different protocols (paired vs ?)"
    (tmp_path / "empty.json").write_text("{}")
    refused(capsys, monkeypatch, "compare", finished, tmp_path / "empty.json",
            needles=("empty.json", "not the results.json of a finished run"))


def test_compare_on_a_string_metric_value(capsys, monkeypatch, finished, tmp_path):
    # before: TypeError traceback
    r = json.loads((finished / "results.json").read_text())
    r["metrics"]["mae"]["value"] = "abc"
    (tmp_path / "bad.json").write_text(json.dumps(r))
    refused(capsys, monkeypatch, "compare", finished, tmp_path / "bad.json",
            needles=("bad.json", "metrics.mae.value", "'abc'", "not a number"))


def test_a_random_bytes_checkpoint_is_not_missing(capsys, monkeypatch, base, tmp_path):
    # before: "FPDM checkpoint unavailable: rand.ckpt missing (put it at ...)"
    f = tmp_path / "rand.ckpt"
    f.write_bytes(os.urandom(4096))
    line = refused(capsys, monkeypatch, *base[:2], "fpdm", *base[3:], "--checkpoint", f,
                   needles=(str(f), "not a readable checkpoint"))
    assert "missing" not in line


def test_a_non_utf8_name_in_an_annotation_csv_names_the_file(capsys, monkeypatch, tmp_path):
    from fpdm_bench.data.synth import synthesize_deepfashion

    root = tmp_path / "df"
    synthesize_deepfashion(root, train_identities=1, test_identities=1, poses=2, train_poses=1)
    ann = root / "fasion-resize-annotation-test.csv"
    lines = ann.read_bytes().split(b"\n")
    lines[2] = b"caf\xe9" + lines[2]  # a Latin-1 file name
    ann.write_bytes(b"\n".join(lines))
    # before: UnicodeDecodeError traceback naming no file
    refused(capsys, monkeypatch, "run", "--model", "copy-source", "--dataset", "synthetic", "--data-root", root,
            "--out", tmp_path / "r", "--protocol", "paired", "--no-progress",
            needles=(str(ann), "line 3", "not UTF-8", "0xe9"))


def _metrics(out):
    return {k: v["value"] for k, v in json.loads((out / "results.json").read_text())["metrics"].items()}


@pytest.mark.parametrize("fail_at", [1, 6], ids=["at-start", "mid-run"])
def test_disk_full_is_one_line_and_the_run_resumes(capsys, monkeypatch, base, fixture_root, tmp_path, fail_at):
    # before: OSError: [Errno 28] traceback. A failed write() names no file: the message still does.
    import fpdm_bench.io

    real, calls = os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if len(calls) >= fail_at:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(fpdm_bench.io.os, "fsync", fsync)
    line = refused(capsys, monkeypatch, *base, "--batch-size", "2", needles=("disk full", str(tmp_path / "r")))
    assert "rerun" in line
    monkeypatch.setattr(fpdm_bench.io.os, "fsync", real)
    code, _, err = cli(capsys, monkeypatch, *base, "--batch-size", "2")
    assert code == 0, err
    straight = tmp_path / "straight"
    code, _, err = cli(capsys, monkeypatch, *base[:-1], straight)
    assert code == 0, err
    assert _metrics(tmp_path / "r") == _metrics(straight)


def test_permission_denied_is_one_line(capsys, monkeypatch, base, tmp_path):
    import fpdm_bench.io

    def mkstemp(*a, dir=None, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(dir))

    monkeypatch.setattr(fpdm_bench.io.tempfile, "mkstemp", mkstemp)
    refused(capsys, monkeypatch, *base, needles=("permission denied", str(tmp_path / "r")))


def test_an_unexpected_error_is_one_line_exit_1_and_a_traceback_with_debug(capsys, monkeypatch, base):
    import fpdm_bench.runner

    def boom(*a, **k):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(fpdm_bench.runner, "_open", boom)
    code, out, err = cli(capsys, monkeypatch, *base)
    assert code == 1 and "Traceback" not in err
    assert "internal error: ZeroDivisionError: a bug (rerun with --debug for the traceback)" in err
    with pytest.raises(ZeroDivisionError):
        cli(capsys, monkeypatch, "--debug", *base)


def test_help_documents_the_exit_statuses(capsys, monkeypatch):
    code, out, _ = cli(capsys, monkeypatch, "--help")
    assert code == 0 and "Exit status" in out and "--debug" in out
