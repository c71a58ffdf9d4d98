"""The CLI contract, table-driven over the commands' options (issue 25): whatever a user passes
(out of range, wrong type, a missing path, unicode), `fpdm-bench` answers without a traceback, with
exit status 0, 1 or 2, and exits 0 from a command that writes a run folder only when that folder is
complete and consistent (results.json, one jsonl line and one PNG per scored pair).

Most cases run in-process through ``entry()`` (the console script's error boundary) on the tiny
fixture dataset with the cheap floors; a few run as ``python -m fpdm_bench.cli`` subprocesses, which
is what a user's shell sees.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import invoke_entry

MISSING = "/nonexistent/fpdm-bench-contract"
UNICODE = "dätä-ñ-😀"

# (command, option or positional slot, values): every value is tried alone on top of the command's
# working base arguments (the option given twice: click takes the last).
TABLE = [
    ("run", "--limit", ["-1", "0", "x", "1.5", UNICODE]),
    ("run", "--batch-size", ["0", "-3", "x"]),
    ("run", "--steps", ["0", "x"]),
    ("run", "--workers", ["-1", "x"]),
    ("run", "--seed", ["x", "-1"]),
    ("run", "--guidance", ["x"]),
    ("run", "--device", ["cuda", "tpu9", UNICODE]),
    ("run", "--dtype", ["float8"]),
    ("run", "--shard", ["a", "0/0", "2/1", "-1/2"]),
    ("run", "--size", ["0x0", "abc", "-5x10", UNICODE]),
    ("run", "--data-root", [MISSING, f"{MISSING}/{UNICODE}"]),
    ("run", "--dataset", ["nope", UNICODE]),
    ("run", "--model", ["nope", UNICODE]),
    ("run", "--protocol", ["nope"]),
    ("run", "--split", ["nope"]),
    ("run", "--perturb", ["pose.jitter:9", "nope:1", "pose.jitter", f"{UNICODE}:1"]),
    ("run", "--checkpoint", [MISSING, "@random-file"]),
    ("run", "--reference-folder", [MISSING]),
    ("run", "--weights", ["noeq", f"fid={MISSING}"]),
    ("run", "--model-arg", ["noeq", "=1"]),
    ("run", "--config", [MISSING, "@config-unknown-key", "@config-list", "@config-not-utf8", "@config-not-mapping"]),
    ("run", "--out", ["@a-file", f"@tmp/{UNICODE}/run"]),
    ("score", "--limit", ["-1", "0", "x"]),
    ("score", "--batch-size", ["0", "x"]),
    ("score", "--generated", [MISSING, "@empty-dir"]),
    ("score", "--data-root", [MISSING]),
    ("score", "--dataset", ["nope"]),
    ("score", "--size", ["0x0", "abc"]),
    ("score", "--out", ["@a-file"]),
    ("score", "--protocol", ["nope"]),
    ("score", "--device", ["tpu9"]),
    ("score", "--weights", ["noeq"]),
    ("profile", "--batch-sizes", ["0", "x", "-1", UNICODE]),
    ("profile", "--steps", ["0", "x"]),
    ("profile", "--repeats", ["0", "x"]),
    ("profile", "--warmup", ["-1"]),
    ("profile", "--device", ["tpu9", "cuda"]),
    ("profile", "--model", ["nope"]),
    ("profile", "--data-root", [MISSING]),
    ("profile", "--out", ["@empty-dir"]),
    ("profile", "--protocol", ["nope"]),
    ("compare", "BASELINE", [MISSING, "@empty-json", "@string-metric", "@not-json", "@not-utf8", f"{MISSING}/{UNICODE}"]),
    ("compare", "CANDIDATE", ["@empty-json", "@string-metric", "@list-json"]),
    ("compare", "--resamples", ["1", "x"]),
    ("compare", "--set-replicates", ["0"]),
    ("compare", "--rtol", ["x"]),
    ("compare", "--tolerance", ["bad", "mae=abc", f"{UNICODE}=1"]),
    ("compare", "--tolerance-file", [MISSING, "@not-json"]),
    ("compare", "--format", ["nope"]),
    ("sweep", "--severities", ["9", "x", ",", "-1"]),
    ("sweep", "--limit", ["-1", "0"]),
    ("sweep", "--batch-size", ["0"]),
    ("sweep", "--workers", ["-1"]),
    ("sweep", "--perturb", ["nope", UNICODE]),
    ("sweep", "--model", ["nope", ","]),
    ("sweep", "--data-root", [MISSING]),
    ("sweep", "--device", ["tpu9"]),
    ("sweep", "--out", ["@a-file"]),
    ("report", "RUN", [MISSING, "@empty-json", "@string-metric", f"{MISSING}/{UNICODE}"]),
    ("report", "--rows", ["0", "-1", "x"]),
    ("report", "--k", ["0"]),
    ("report", "--cell-height", ["1", "x"]),
    ("report", "--format", ["nope"]),
    ("report", "--stage1", [MISSING]),
    ("report", "--seed", ["x"]),
    ("report", "--out", ["@a-file"]),
    ("report", "--pairs", ["nope"]),
    ("report", "--videos", ["-1", "x"]),
    ("report", "--video-fps", ["0", "-2", "x"]),
    ("grid", "--rows", ["0", "-1", "x"]),
    ("grid", "--pairs", ["nope", UNICODE]),
    ("grid", "RUN", [MISSING, "@a-file"]),
    ("grid", "--out", ["@a-file", f"@tmp/{UNICODE}.png"]),
    ("grid", "--label", ["noeq"]),
    ("merge", "RUN", [MISSING, "@empty-dir", "@a-file"]),
    ("data synth", "--out", ["@finished"]),
    ("data synth", "--size", ["0x0", "abc"]),
    ("data synth", "--poses", ["1", "x"]),
    ("data synth", "--train-identities", ["0"]),
    ("data synth", "--kind", ["nope"]),
    ("data check", "--data-root", [MISSING, "@a-file", UNICODE]),
    ("data check", "--dataset", ["nope"]),
    ("data check", "--split", ["nope"]),
    ("models", "EXTRA", ["x", "--nope", UNICODE]),
    ("datasets", "EXTRA", ["x", "--nope"]),
    ("protocols", "EXTRA", ["--nope", UNICODE]),
    ("perturbations", "EXTRA", ["x"]),
    ("weights", "EXTRA", ["--nope"]),
]
CASES = [(cmd, opt, v) for cmd, opt, values in TABLE for v in values]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The fixture dataset, a finished run on it, and the damaged inputs the table names with '@'."""
    from conftest import make_fixture

    from fpdm_bench.runner import RunConfig, run

    d = tmp_path_factory.mktemp("contract")
    root = make_fixture(d / "fixture")
    finished = d / "finished"
    run(RunConfig(model="copy-source", dataset="fixture", data_root=str(root), out=str(finished), limit=4,
                  protocol="paired", progress=False, workers=0), log=lambda m: None)
    r = json.loads((finished / "results.json").read_text())
    r["metrics"]["mae"]["value"] = "abc"
    files = {"empty-json": "{}", "list-json": "[1, 2]", "string-metric": json.dumps(r), "not-json": "not json {",
             "a-file": "x", "config-unknown-key": "batchsize: 4\n", "config-list": "batch_size: [1, 2]\n",
             "config-not-mapping": "- 1\n- 2\n"}
    at = {"finished": str(finished), "random-file": str(d / "random.bin"), "not-utf8": str(d / "not-utf8.json"),
          "config-not-utf8": str(d / "not-utf8.yaml"), "empty-dir": str(d / "empty-dir")}
    for name, text in files.items():
        (d / name).write_text(text)
        at[name] = str(d / name)
    (d / "random.bin").write_bytes(os.urandom(2048))
    (d / "not-utf8.json").write_bytes(b'{"metrics": {"caf\xe9": 1}}')
    (d / "not-utf8.yaml").write_bytes(b"model: caf\xe9\n")
    (d / "empty-dir").mkdir()
    return {"root": str(root), "finished": str(finished), "at": at}


def base_args(cmd: str, env, tmp: Path) -> list[str]:
    """Arguments under which the command works; the table's value is added to these."""
    root, done = env["root"], env["finished"]
    return {
        "run": ["--model", "copy-source", "--dataset", "fixture", "--data-root", root, "--protocol", "paired",
                "--limit", "2", "--workers", "0", "--no-progress", "--out", str(tmp / "run")],
        "score": ["--dataset", "fixture", "--data-root", root, "--generated", f"{done}/samples", "--protocol",
                  "paired", "--limit", "4"],
        "profile": ["--model", "copy-source", "--dataset", "fixture", "--data-root", root, "--batch-sizes", "1",
                    "--repeats", "1", "--warmup", "0", "--no-metrics"],
        "compare": [],
        "sweep": ["--model", "keypoint-warp", "--dataset", "fixture", "--data-root", root, "--perturb", "pose.jitter",
                  "--severities", "0", "--limit", "2", "--protocol", "paired", "--workers", "0", "--no-progress",
                  "--out", str(tmp / "sweep")],
        "report": [],
        "grid": ["--out", str(tmp / "grid.png"), "--rows", "2"],
        "merge": [],
        "data synth": ["--out", str(tmp / "synth"), "--train-identities", "1", "--test-identities", "1", "--poses", "2"],
        "data check": ["--dataset", "fixture", "--data-root", root],
    }.get(cmd, [])


def argv(cmd, opt, value, env, tmp: Path) -> list[str]:
    if value.startswith("@tmp/"):
        value = str(tmp / value[5:])
    elif value.startswith("@"):
        value = env["at"][value[1:]]
    args = [*cmd.split(), *base_args(cmd, env, tmp)]
    done = env["finished"]
    if cmd == "compare":
        pair = {"BASELINE": [value, done], "CANDIDATE": [done, value]}.get(opt, [done, done])
        return args + pair + ([] if opt in ("BASELINE", "CANDIDATE") else [opt, value])
    if cmd in ("report", "grid"):
        runs = [value] if opt == "RUN" else [done]
        extra = [] if opt == "RUN" else [opt, value]
        if cmd == "report" and opt in ("--pairs", "--rows", "--k", "--cell-height", "--stage1", "--videos", "--video-fps"):
            extra += ["--out", str(tmp / "report")]
        return args + runs + extra
    if opt in ("RUN", "EXTRA"):
        return args + [value]
    return args + [opt, value]


def check_run_folder(folder: Path, n: int | None = None) -> None:
    """Complete and consistent: results.json, and its n = jsonl lines = PNGs, one per line (= the
    --limit asked for, where given: a run that scores other pairs than asked is a wrong result)."""
    res = json.loads((folder / "results.json").read_text())
    lines = [json.loads(x) for f in folder.glob("samples*.jsonl") for x in f.read_text().splitlines() if x.strip()]
    pngs = {p.stem for p in (folder / "samples").glob("*.png")}
    assert res["n"] == len(lines) == len(pngs), (res["n"], len(lines), len(pngs))
    assert {r["pair_id"] for r in lines} == pngs
    assert n is None or res["n"] == n, (res["n"], n)


def invoke(args, capsys, monkeypatch):
    code, out, err = invoke_entry(args, capsys, monkeypatch)
    return code, out + err


@pytest.mark.parametrize("cmd,opt,value", CASES, ids=[f"{c}{o}={v}" for c, o, v in CASES])
def test_contract(cmd, opt, value, env, tmp_path, capsys, monkeypatch):
    args = argv(cmd, opt, value, env, tmp_path)
    code, output = invoke(args, capsys, monkeypatch)
    assert "Traceback" not in output, output
    assert code in (0, 1, 2), (code, output)
    if code != 0:
        assert output.strip(), "a failure says why"
    if cmd == "run":
        out = Path(args[-1]) if opt == "--out" else tmp_path / "run"
        if code == 0:
            limit = args[len(args) - 1 - args[::-1].index("--limit") + 1]  # the last --limit given wins
            check_run_folder(out, int(limit))
        else:
            assert not (out / "results.json").exists()
    if cmd == "sweep" and code == 0:
        cells = [f.parent for f in (tmp_path / "sweep").rglob("config.json")]
        assert cells and (tmp_path / "sweep" / "sweep.json").is_file()
        for cell in cells:
            check_run_folder(cell)


@pytest.mark.parametrize("args,code,needle", [
    (["run", "--model", "copy-source", "--limit", "-1", "--out", "@tmp/run"], 2, "--limit"),
    (["compare", MISSING, MISSING], 2, "does not exist"),
    (["report", MISSING], 2, "does not exist"),
    (["models", "--nope"], 2, "No such option"),
    (["--debug", "protocols", UNICODE], 2, "unknown protocol"),
])
def test_contract_in_a_subprocess(args, code, needle, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONIOENCODING": "utf-8"}
    args = [str(tmp_path / a[5:]) if a.startswith("@tmp/") else a for a in args]
    p = subprocess.run([sys.executable, "-m", "fpdm_bench.cli", *args], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=120)
    assert "Traceback" not in p.stdout + p.stderr, p.stderr
    assert p.returncode == code, p.stderr
    assert needle in p.stderr, p.stderr


def test_contract_size():
    """What the table covers (reported in the closing note of issue 25)."""
    commands = {c for c, _, _ in TABLE}
    options = {(c, o) for c, o, _ in TABLE}
    assert len(commands) >= 14 and len(options) >= 83 and len(CASES) >= 161, (len(commands), len(options), len(CASES))
