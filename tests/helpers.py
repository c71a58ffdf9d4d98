"""Helpers the tests share (not a test module): stand-in networks, test models, micro FPDM configs."""
import pytest
import torch
import torch.nn as nn

from fpdm_bench.metrics.base import metric_class
from fpdm_bench.models import ModelAdapter


class TinyFeatures(nn.Module):
    """A fixed random feature network (16-d) standing in for Inception where only plumbing is tested."""

    dims = 16
    weights_sha256 = "tiny-features-v1"

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(3, 16, 3, stride=2)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g))
            self.conv.bias.zero_()

    @torch.no_grad()
    def forward(self, x):
        return torch.relu(self.conv(x.float())).mean((2, 3))


class NoisyTarget(ModelAdapter):
    """The target plus Gaussian noise of standard deviation ``noise`` (per-pair generators): more noise
    is a worse model, another seed the same model. Registered as ``noisy-target`` by the tests that use it."""

    name = "noisy-target"
    needs_target = True

    def __init__(self, device="cpu", dtype=torch.float32, noise: float = 0.1):
        super().__init__(device, dtype)
        self.noise = float(noise)

    def generate(self, batch, generators):
        noise = torch.stack([torch.randn(batch["target"].shape[1:], generator=g) for g in generators])
        return (batch["target"] + self.noise * noise).clamp(0, 1)


def invoke_entry(args, capsys, monkeypatch):
    """``fpdm-bench ARGS`` through the console entry point (its error boundary gives the exit status):
    (exit code, stdout, stderr); an exception escaping the boundary (a user would see a traceback) fails."""
    import sys

    from fpdm_bench.cli import entry

    monkeypatch.setattr(sys, "argv", ["fpdm-bench", *args])
    try:
        entry()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException as e:  # noqa: BLE001
        pytest.fail(f"traceback for {args}: {type(e).__name__}: {e}")
    out, err = capsys.readouterr()
    return code, out, err


class NoisyCopy(ModelAdapter):
    """Source image plus noise drawn from each sample's own generator (tests per-sample seeding)."""

    name = "noisy-copy"

    def generate(self, batch, generators):
        noise = torch.stack([torch.rand(batch["source"].shape[1:], generator=g) for g in generators])
        return (0.7 * batch["source"] + 0.3 * noise).clamp(0, 1)


# Micro versions of the tiny FPDM config (32x24 images), built in seconds.
STAGE1_MICRO = ["stage1.vision.image_size=32", "stage1.vision.patch_size=8", "stage1.vision.hidden_size=32",
                "stage1.vision.intermediate_size=64", "stage1.vision.num_hidden_layers=1",
                "stage1.vision.num_attention_heads=2", "stage1.vision.projection_dim=32",
                "stage1.combiner.projection_dim=32", "stage1.combiner.hidden_dim=32"]
STAGE2_MICRO = ["stage2.resolution=[32,24]", "stage2.prior=none", "stage2.vae.config={patch: 4, latent_channels: 4}",
                "stage2.unet.config.in_channels=4", "stage2.unet.config.out_channels=4",
                "stage2.unet.config.block_out_channels=[16,32,32]", "stage2.pose_embed.channels=[16,32,64]",
                "stage2.unet.config.cross_attention_dim=32", "stage2.unet.config.attention_head_dim=2",
                "stage2.source_encoder.config.hidden_size=32", "stage2.source_encoder.config.num_hidden_layers=1",
                "stage2.source_encoder.config.num_attention_heads=2", "stage2.source_encoder.image_size=[32,32]",
                "stage2.source_encoder.config.image_size=32", "stage2.source_encoder.config.patch_size=8",
                "stage2.source_proj.hidden_dim=32", "stage2.fusion_proj.hidden_dim=32", "train.batch_size=4",
                "train.checkpoint_every=2", "train.warmup_steps=0", "train.ema_decay=0.9", "train.cache=true"]
# The same with the random-init AutoencoderKL the tiny recipe used before patch-PCA (fitted for train.vae_steps)
# and a frozen source encoder: the paths the paper config's pretrained towers take.
STAGE2_MICRO_KL = ["stage2.vae={kind: tiny, config: {block_out_channels: [8, 16, 16], latent_channels: 4, "
                   "norm_num_groups: 4, down_block_types: [DownEncoderBlock2D, DownEncoderBlock2D, DownEncoderBlock2D], "
                   "up_block_types: [UpDecoderBlock2D, UpDecoderBlock2D, UpDecoderBlock2D], layers_per_block: 1, "
                   "mid_block_add_attention: false}}", "stage2.source_encoder.trainable=false", "train.vae_steps=2"]
FUSION_DIM = 32


def micro_config(*extra):
    from fpdm_bench_reference.config import load_config

    return load_config("stage2", "tiny", STAGE2_MICRO + list(extra))


def save_micro_stage1(path, seed=0):
    from fpdm_bench_reference.config import load_config
    from fpdm_bench_reference.stage1.model import build_model as build_stage1

    torch.manual_seed(seed)
    return build_stage1(load_config("stage1", "tiny", STAGE1_MICRO)).eval().save_pretrained(path)


def cfld_tiny_folder(path, with_vae: bool = True):
    """A CFLD checkpoint folder in the released layout made of the tiny official build
    (tests/fixtures/cfld): both .bin files, a config.json for the tiny sizes, optionally vae/."""
    import json
    import shutil
    from pathlib import Path

    from fpdm_bench_baselines.cfld.model import CFLDConfig

    fix = Path(__file__).parent / "fixtures" / "cfld"
    m = json.loads((fix / "manifest.json").read_text())
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for name in ("pytorch_model.bin", "pytorch_model_1.bin"):
        shutil.copy(fix / name, path / name)
    if with_vae:
        shutil.copytree(fix / "vae_tiny", path / "vae")
    (path / "config.json").write_text(json.dumps({
        "cfld": CFLDConfig.from_official(m["config_tiny"]).to_dict(),
        "unet": json.loads((fix / "unet_tiny" / "config.json").read_text()),
        "gen_size": m["config_tiny"]["INPUT"]["GT"]["IMG_SIZE"]}))
    return path




def assert_same(a, b):  # two results.json dicts
    """Per-sample metrics bit-identical (same images, per-image arithmetic). FID/KID fold the same
    features in the same (dataset) order, but the features are extracted per batch, and a
    multi-threaded convolution may sum in another order when other images share the batch: equal to
    1e-6 relative (measured: 5e-9 for the tiny FPDM at batch 8 vs chunks of 16)."""
    entries = a["metrics"]
    a, b = ({k: v["value"] for k, v in r["metrics"].items()} for r in (a, b))
    assert a.keys() == b.keys()
    for k in a:
        if getattr(metric_class(k, entries[k]), "kind", None) == "set" and a[k] is not None:  # folds features
            assert b[k] == pytest.approx(a[k], rel=1e-6), k
        else:
            assert b[k] == a[k], k


SLOW_RUN = """
import sys, time
sys.path.insert(0, {tests!r})
import conftest  # registers the fixture dataset
from helpers import NoisyCopy
from fpdm_bench.models import MODELS
from fpdm_bench.runner import RunConfig, run

class Slow(NoisyCopy):
    def generate(self, batch, generators):
        time.sleep({sleep})
        return super().generate(batch, generators)

MODELS.register("slow-noisy-copy", Slow)
run(RunConfig(model="slow-noisy-copy", dataset="fixture", data_root={root!r}, out={out!r}, batch_size=1,
              progress=False, **{kwargs!r}), log=lambda m: None)
"""


def slow_run_script(root, out, sleep: float = 0.3, **kwargs) -> str:
    """Python source of a run of a slow NoisyCopy ("slow-noisy-copy", ``sleep`` s per pair) on the
    fixture set, for tests that kill or race a run in a subprocess; ``kwargs`` go to RunConfig."""
    from pathlib import Path

    return SLOW_RUN.format(tests=str(Path(__file__).parent), root=str(root), out=str(out), sleep=sleep, kwargs=kwargs)


class LoopbackHandler:
    """Knobs and log of :func:`loopback_server` (the class its request handler reads)."""

    root = None  # the served folder: URL/<path> is root/<path>
    seen: list = []  # (path, Range header) of each request
    wrong = False  # serve other bytes of the same length (reversed)
    truncate_after = None  # send only this many bytes of the body, then close
    honour_range = True


def loopback_server(root):
    """An HTTP server on 127.0.0.1 serving the folder ``root`` (Range honoured): a context manager
    yielding its knobs (a LoopbackHandler subclass of its own, with ``url``). It stands in for the
    hosts of weight files and checkpoints; nothing leaves the machine."""
    import contextlib
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    knobs = type("Knobs", (LoopbackHandler,), {"root": root, "seen": []})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            knobs.seen.append((self.path, self.headers.get("Range")))
            f = knobs.root / self.path.lstrip("/")
            if not f.is_file():
                self.send_error(404)
                return
            data = f.read_bytes()[::-1] if knobs.wrong else f.read_bytes()
            start, rng = 0, self.headers.get("Range")
            if rng and knobs.honour_range:
                start = int(rng.removeprefix("bytes=").rstrip("-"))
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body if knobs.truncate_after is None else body[: knobs.truncate_after])
            self.close_connection = True

        def log_message(self, *args):
            pass

    @contextlib.contextmanager
    def serving():
        srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        knobs.url = f"http://127.0.0.1:{srv.server_address[1]}"
        try:
            yield knobs
        finally:
            srv.shutdown()
            srv.server_close()

    return serving()


def closed_port_url() -> str:
    """http://127.0.0.1:<a port nothing listens on>: a host that is gone (connections are refused)."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


def warp_inputs(n, seed=0, size=(40, 28)):
    """``n`` random source images at ``size`` and two sets of 18 keypoints inside the middle of the
    frame (so a warp moves real parts): (source, source keypoints, target keypoints)."""
    g = torch.Generator().manual_seed(seed)
    src = torch.rand(n, 3, *size, generator=g)
    scale, offset = torch.tensor([size[1] * 0.6, size[0] * 0.6]), torch.tensor([size[1] * 0.2, size[0] * 0.2])
    return src, torch.rand(n, 18, 2, generator=g) * scale + offset, torch.rand(n, 18, 2, generator=g) * scale + offset
