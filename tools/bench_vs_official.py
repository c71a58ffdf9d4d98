"""Time one denoising step of each official model (PIDM, CFLD, PoCoLD) against our port, interleaved.

This script contains no official code. For each model it starts two worker processes that stay up
for the whole comparison:

* the **official** worker runs in the scratch venv of that repository (the versions of
  ``tests/fixtures/NAME/README.md``), puts the scratch checkout (``--NAME-official DIR``) on
  ``sys.path``, builds the official denoiser with a fixed seed (all-zero / all-one parameters
  re-initialised as in the fixture scripts, std 0.02, so every layer takes part), draws the inputs
  and writes both (``weights.pt``, ``inputs.pt``) into a work folder;
* the **port** worker runs in the project venv, builds our port at the same configuration and
  loads exactly those weights (strictly; PIDM through its official key map) and inputs.

The driver (this script without ``--worker``, run with the project venv) then asks for one
untimed warm-up step from each (their outputs are compared: max |official - port|), and then for
N timed steps, alternating official, port, official, port, ... Each worker times its step itself
(``time.process_time`` = CPU time of the process, and ``time.perf_counter`` = wall), with
``torch.set_num_threads(1)`` and OMP/MKL at one thread. Ratios are port / official per repeat
(each port step against the official step just before it); the summary gives their median and
min-max.

"One denoising step" is what each official sampler does per timestep, guidance included, minus the
scheduler update:

* PIDM (``diffusion.py ddim_steps``): ``forward_with_cond_scale(cat([x_t, pose]), t, cond,
  cond_scale=2)`` = two forwards (prob 1 and prob 0) at batch B on the precomputed encoder
  features; port: ``fpdm_bench_baselines.pidm.diffusion.guided`` (two calls on the CPU) on the network as the
  adapter runs it (``PIDMUNet.for_inference``: channels-last on the CPU).
* CFLD (``pose_transfer_test.py``, ``uc_down_full``): one UNet call at batch 3B with
  ``copy.deepcopy`` of the residual lists, then the two-scale combination (2, 2); port:
  ``fpdm_bench_baselines.cfld.sampler.guided_eps``. The condition network (Swin etc.) runs once per image
  and is not timed.
* PoCoLD (``src/pipeline.py``, ``cat_ref`` with ``cfg_decay``): two ChannelMapper calls and three
  UNet calls at batch B (null, cat, all; the reference encoder runs once before the loop);
  port: ``fpdm_bench_baselines.pocold.pipeline.guided_eps`` (null and cat in one batch of 2B).

Usage (see docs/speed-vs-official.md for the scratch venvs)::

    cd /work/main
    HF_HUB_OFFLINE=1 .venv/bin/python tools/bench_vs_official.py --repeats 5 \\
        --out /tmp/speed_vs_official.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("pidm", "cfld", "pocold")
SCRATCH = Path("/tmp/scratch")

# Spatial sizes per model: the published network always; "published" feeds it the published
# resolution, "medium" a smaller one (same weights and structure, fewer positions).
#   PIDM: image H x W (the published config builds attention for image_size 256 either way)
#   CFLD: latent h x w (published 512 x 512 images -> 64 x 64 latents)
#   PoCoLD: latent h x w (published 512 x 384 -> 64 x 48)
SIZES = {
    "pidm": {"published": (256, 256), "medium": (128, 128)},
    "cfld": {"published": (64, 64), "medium": (32, 32)},
    "pocold": {"published": (64, 48), "medium": (32, 24)},
}
# what the default ``--size auto`` runs: the published resolution where one step fits this 2-core CPU
# in a few seconds; CFLD's SD 1.5 UNet at 64 x 64 takes ~30 s of CPU per step, so it runs at medium.
AUTO = {"pidm": "published", "cfld": "medium", "pocold": "published"}
REINIT_STD = 0.02
BATCH = 1


# =============================================================================================
# workers
# =============================================================================================
def _versions(*names):
    import importlib

    out = {"python": sys.version.split()[0]}
    for n in names:
        try:
            out[n] = importlib.import_module(n).__version__
        except Exception:  # noqa: BLE001 - only for the record
            pass
    return out


def _official_start(official: Path):
    sys.path.insert(0, str(ROOT / "tools"))
    from _scratch import torchvision_op_shim

    torchvision_op_shim()
    sys.path.insert(0, str(official))
    os.chdir(official)


def _reinit(module, seed):
    import torch

    sys.path.insert(0, str(ROOT / "tools"))
    from _scratch import reinit

    return reinit(module.named_parameters(), torch.Generator().manual_seed(seed), REINIT_STD)


# --- PIDM ------------------------------------------------------------------------------------
def pidm_official(work: Path, hw):
    import torch
    from config.diffconfig import get_model_conf

    torch.manual_seed(0)
    model = get_model_conf().make_model().eval()
    _reinit(model, 1)
    g = torch.Generator().manual_seed(2)
    h, w = hw
    inp = {"src": torch.rand(BATCH, 3, h, w, generator=g) * 2 - 1, "pose": torch.rand(BATCH, 20, h, w, generator=g),
           "x_t": torch.randn(BATCH, 3, h, w, generator=g), "t": torch.full((BATCH,), 500.0)}
    torch.save(model.state_dict(), work / "weights.pt")
    torch.save(inp, work / "inputs.pt")
    with torch.no_grad():
        cond = [model.encode(inp["src"])["cond"], model.encode(torch.zeros_like(inp["src"]))["cond"]]

    def step():
        return model.forward_with_cond_scale(x=torch.cat([inp["x_t"], inp["pose"]], 1), t=inp["t"], cond=cond,
                                             cond_scale=2)[0]

    return step, {"config": "config.diffconfig.get_model_conf() (published)", "versions": _versions("torch")}


def pidm_port(work: Path, hw):
    import torch
    from fpdm_bench_baselines.pidm.checkpoint import load_state
    from fpdm_bench_baselines.pidm.diffusion import guided
    from fpdm_bench_baselines.pidm.network import PIDMConfig, PIDMUNet

    manifest = json.loads((ROOT / "tests/fixtures/pidm/manifest.json").read_text())["published_config"]
    keys = ("image_size", "in_channels", "model_channels", "out_channels", "num_res_blocks", "embed_channels",
            "attention_resolutions", "channel_mult", "dropout", "num_heads")
    model = PIDMUNet(PIDMConfig(**{k: manifest[k] for k in keys}))
    load_state(model, torch.load(work / "weights.pt", mmap=True), "bench")
    model = model.for_inference("cpu", torch.float32)  # as the adapter runs it
    inp = torch.load(work / "inputs.pt")
    with torch.no_grad():
        feats, null = model.encode(inp["src"]), model.encode(torch.zeros_like(inp["src"]))

    def step():
        return guided(model, inp["x_t"], inp["pose"], inp["t"], feats, null, 2.0)

    return step, {"versions": _versions("torch", "diffusers")}


# --- CFLD ------------------------------------------------------------------------------------
# up-block cross-attention index -> (channels, downscale of the latent)
CFLD_APPEARANCE = {k: (1280, 4) if k < 6 else (640, 2) if k < 9 else (320, 1) for k in range(3, 12)}
CFLD_POSE = ((320, 1), (640, 2), (1280, 4))


def cfld_official(work: Path, hw):
    import copy

    import torch

    import models.unet as unet_mod
    from defaults import pose_transfer_C

    config = json.loads(Path("pretrained_models/unet/config.json").read_text())
    cls = unet_mod.ResidualUNet2DConditionModel
    cls.from_pretrained = classmethod(lambda klass, *a, **k: klass.from_config(config))  # SD 1.5 config, random
    torch.manual_seed(0)
    unet = unet_mod.UNet(pose_transfer_C.clone()).eval()  # official constructor: freezing, processors
    del cls.from_pretrained
    _reinit(unet, 1)
    g = torch.Generator().manual_seed(2)
    h, w = hw
    inp = {"latents": torch.randn(BATCH, 4, h, w, generator=g),
           "null": torch.randn(BATCH, 16, 768, generator=g), "text": torch.randn(BATCH, 16, 768, generator=g),
           "pose": [torch.randn(BATCH, c, h // s, w // s, generator=g) * 0.5 for c, s in CFLD_POSE],
           "appearance": {k: torch.randn(BATCH, (h // s) * (w // s), c, generator=g) * 0.5
                          for k, (c, s) in CFLD_APPEARANCE.items()},
           "t": torch.tensor(981)}
    torch.save(unet.state_dict(), work / "weights.pt")
    torch.save(inp, work / "inputs.pt")
    # pose_transfer_test.py, uc_down_full: prepared once per batch
    c_new = torch.cat([inp["null"], inp["null"], inp["text"]])
    down = [torch.cat([torch.zeros_like(s), s, s]) for s in inp["pose"]]
    up = {f"block_{k}_cross_attn_q": torch.cat([torch.zeros_like(v), torch.zeros_like(v), v])
          for k, v in inp["appearance"].items()}
    lat = inp["latents"]

    def step():
        inputs = torch.cat([lat, lat, lat], dim=0)  # DDPM scale_model_input is the identity
        pred = unet(sample=inputs, timestep=inp["t"], encoder_hidden_states=c_new,
                    down_block_additional_residuals=copy.deepcopy(down),
                    up_block_additional_residuals=copy.deepcopy(up))
        uc, dn, full = pred.chunk(3)
        return uc + 2.0 * (dn - uc) + 2.0 * (full - dn)

    procs = sorted({type(m.processor).__name__ for m in unet.modules() if hasattr(m, "processor")})
    return step, {"config": "pretrained_models/unet/config.json (SD 1.5) through the official UNet(cfg)",
                  "processors": procs, "versions": _versions("torch", "diffusers")}


def cfld_port(work: Path, hw):
    import torch
    from fpdm_bench_baselines.cfld.sampler import guided_eps
    from fpdm_bench_baselines.cfld.unet import CFLDUNet

    unet = CFLDUNet()
    res = unet.load_state_dict(torch.load(work / "weights.pt", mmap=True), strict=True)
    assert not res.missing_keys and not res.unexpected_keys, res
    unet.eval()
    inp = torch.load(work / "inputs.pt")

    def step():
        return guided_eps(unet, inp["latents"], inp["t"], inp["null"], inp["text"], inp["pose"], inp["appearance"],
                          2.0, 2.0)

    return step, {"versions": _versions("torch", "diffusers")}


# --- PoCoLD ----------------------------------------------------------------------------------
POCOLD_UNET = {"in_channels": 8, "sample_size": 64, "use_constraint_penalty": True, "attn_heads_nums": 8}


def _guidance(t, scale=5.0, end=3.0):
    return max(scale * int(t) / 1000, end)


def pocold_official(work: Path, hw):
    import torch
    from src.model import ChannelMapper, MultiScaleReferenceImageEncoder, UNet2DDoubleAttentionConditionModel

    torch.manual_seed(0)
    unet = UNet2DDoubleAttentionConditionModel(**POCOLD_UNET).eval()
    torch.manual_seed(1)
    rie = MultiScaleReferenceImageEncoder().eval()
    torch.manual_seed(2)
    cm = ChannelMapper(in_channels=25, out_channels=4, concat=True).eval()
    for i, m in enumerate((unet, rie, cm)):
        _reinit(m, 3 + i)
    g = torch.Generator().manual_seed(6)
    h, w = hw
    part = torch.randint(0, 25, (BATCH, h, w), generator=g)
    inp = {"latents": torch.randn(BATCH, 4, h, w, generator=g), "ref_latents": torch.randn(BATCH, 4, h, w, generator=g),
           "cat": torch.nn.functional.one_hot(part, 25).permute(0, 3, 1, 2).float(), "t": torch.tensor(981)}
    torch.save({"unet": unet.state_dict(), "rie": rie.state_dict(), "cm": cm.state_dict(),
                "unet_config": dict(unet.config), "rie_config": dict(rie.config)}, work / "weights.pt")
    torch.save(inp, work / "inputs.pt")
    with torch.no_grad():
        refs = rie(inp["ref_latents"])  # once, before the loop (use_time_emb False)
    lat, cat, t = inp["latents"], inp["cat"], inp["t"]

    def step():  # src/pipeline.py cfg_type "cat_ref", cfg_decay, end_cfg 3 (inference.py)
        x = cm(lat, cat)
        x_uncond = cm(lat, cat * 0.0)
        null = unet(x_uncond, t, encoder_hidden_states=None, constraint_maps=None).sample
        catp = unet(x, t, encoder_hidden_states=None, constraint_maps=None).sample
        full = unet(x, t, encoder_hidden_states=refs, constraint_maps=None).sample
        s = t.cpu().numpy() / 1000
        return null + max(5.0 * s, 3.0) * (full - catp) + max(5.0 * s, 3.0) * (catp - null)

    return step, {"config": f"UNet2DDoubleAttentionConditionModel(**{POCOLD_UNET}) (train.py + run.sh)",
                  "versions": _versions("torch", "diffusers")}


def pocold_port(work: Path, hw):
    import torch
    from fpdm_bench_baselines.pocold.network import (ChannelMapper, DoubleAttentionUNet, ReferenceEncoder,
                                                     ReferenceEncoderConfig, UNetConfig)
    from fpdm_bench_baselines.pocold.pipeline import guidance_weight, guided_eps

    sd = torch.load(work / "weights.pt", mmap=True, weights_only=False)
    unet = DoubleAttentionUNet(UNetConfig.from_json(sd["unet_config"]))
    rie = ReferenceEncoder(ReferenceEncoderConfig.from_json(sd["rie_config"]))
    cm = ChannelMapper(25, 4, True, True)
    for m, k in ((unet, "unet"), (rie, "rie"), (cm, "cm")):
        m.load_state_dict(sd[k], strict=True)
        m.eval()
    inp = torch.load(work / "inputs.pt")
    with torch.no_grad():
        refs = rie(inp["ref_latents"])
    w = guidance_weight(int(inp["t"]), 5.0, 3.0, True)

    def step():
        return guided_eps(unet, cm, inp["latents"], inp["t"], inp["cat"], refs, w)

    return step, {"versions": _versions("torch", "diffusers")}


BUILDERS = {("pidm", "official"): pidm_official, ("pidm", "port"): pidm_port,
            ("cfld", "official"): cfld_official, ("cfld", "port"): cfld_port,
            ("pocold", "official"): pocold_official, ("pocold", "port"): pocold_port}


def worker(args) -> int:
    # the protocol goes over the original stdout; anything the libraries print goes to stderr
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    import torch

    torch.set_num_threads(1)
    work = Path(args.work)
    if args.worker == "official":
        _official_start(Path(args.official).resolve())
    else:
        sys.path.insert(0, str(ROOT))
    t0 = time.perf_counter()
    with torch.no_grad():
        step, info = BUILDERS[(args.model, args.worker)](work, tuple(args.hw))
    info.update(build_s=round(time.perf_counter() - t0, 1), threads=torch.get_num_threads())
    proto.write(json.dumps({"ready": True, **info}) + "\n")
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "quit":
            break
        c0, w0 = time.process_time(), time.perf_counter()
        with torch.no_grad():
            out = step()
        c1, w1 = time.process_time(), time.perf_counter()
        if cmd.get("save"):
            torch.save(out.detach().float().contiguous(), work / f"out_{args.worker}.pt")
        proto.write(json.dumps({"cpu_s": c1 - c0, "wall_s": w1 - w0}) + "\n")
    return 0


# =============================================================================================
# driver
# =============================================================================================
class Worker:
    def __init__(self, python, model, side, official, work: Path, hw):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
               "PYTHONHASHSEED": "0", "TOKENIZERS_PARALLELISM": "false"}
        if side == "port":
            env["PYTHONPATH"] = str(ROOT)
        cmd = [str(python), str(Path(__file__).resolve()), "--worker", side, "--model", model, "--work", str(work),
               "--hw", *map(str, hw)]
        if official:
            cmd += ["--official", str(official)]
        self.log = open(work / f"{side}.log", "w")
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                  env=env, cwd=str(ROOT))
        self.info = self._read()

    def _read(self):
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.p.args[3:7]} died; see {self.log.name}")
        return json.loads(line)

    def step(self, save=False):
        self.p.stdin.write(json.dumps({"op": "step", "save": save}) + "\n")
        self.p.stdin.flush()
        return self._read()

    def close(self):
        try:
            self.p.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.p.stdin.flush()
            self.p.wait(60)
        finally:
            self.log.close()


def _spread(xs):
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def compare(model, args) -> dict:
    import torch

    size = AUTO[model] if args.size == "auto" else args.size
    hw = SIZES[model][size]
    python = getattr(args, f"{model}_python")
    official = getattr(args, f"{model}_official")
    work = Path(tempfile.mkdtemp(prefix=f"bench_{model}_", dir=args.tmp))
    print(f"[{model}] {size} {hw}: building official ({python}) ...", flush=True)
    off = Worker(python, model, "official", official, work, hw)
    print(f"[{model}] official ready in {off.info['build_s']} s; building port ...", flush=True)
    port = Worker(sys.executable, model, "port", None, work, hw)
    print(f"[{model}] port ready in {port.info['build_s']} s", flush=True)
    try:
        warm = {"official": off.step(save=True), "port": port.step(save=True)}
        a, b = torch.load(work / "out_official.pt"), torch.load(work / "out_port.pt")
        agree = {"shape": list(a.shape), "max_abs_diff": (a - b).abs().max().item(),
                 "max_abs_official": a.abs().max().item(), "std_official": a.std().item()}
        print(f"[{model}] outputs: max|diff| {agree['max_abs_diff']:.3g} (max|out| {agree['max_abs_official']:.3g})",
              flush=True)
        runs = []
        for i in range(args.repeats):
            o, p = off.step(), port.step()
            runs.append({"official": o, "port": p})
            print(f"[{model}] repeat {i + 1}/{args.repeats}: official {o['cpu_s'] * 1e3:.0f} ms cpu "
                  f"({o['wall_s'] * 1e3:.0f} wall), port {p['cpu_s'] * 1e3:.0f} ms cpu ({p['wall_s'] * 1e3:.0f} wall), "
                  f"ratio {p['cpu_s'] / o['cpu_s']:.3f}", flush=True)
    finally:
        off.close()
        port.close()
    res = {"size": size, "hw": list(hw), "batch": BATCH, "official_info": off.info, "port_info": port.info,
           "warmup": warm, "agreement": agree, "runs": runs}
    for kind in ("cpu_s", "wall_s"):
        res[kind] = {
            "official_ms": _spread([r["official"][kind] * 1e3 for r in runs]),
            "port_ms": _spread([r["port"][kind] * 1e3 for r in runs]),
            "ratio_port_over_official": _spread([r["port"][kind] / r["official"][kind] for r in runs]),
        }
    if not args.keep:
        for f in work.iterdir():
            f.unlink()
        work.rmdir()
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--worker", choices=("official", "port"), help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--hw", type=int, nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--official", help=argparse.SUPPRESS)
    ap.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    ap.add_argument("--size", choices=("auto", "published", "medium"), default="auto",
                    help="input resolution fed to the published networks (see SIZES; auto: AUTO)")
    ap.add_argument("--repeats", type=int, default=5, help="timed interleaved repeats per model (after a warm-up)")
    ap.add_argument("--out", type=Path, help="JSON file to write")
    ap.add_argument("--tmp", default=None, help="where the work folders (weights, inputs, outputs) go")
    ap.add_argument("--keep", action="store_true", help="keep the work folders")
    for m in MODELS:
        ap.add_argument(f"--{m}-python", default=str(SCRATCH / f"{m}-venv/bin/python"))
        ap.add_argument(f"--{m}-official", default=str(SCRATCH / m))
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args)

    import platform

    report = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": _cpu_model(), "nproc": os.cpu_count(),
              "platform": platform.platform(), "repeats": args.repeats, "size": args.size, "threads": 1,
              "command": " ".join([Path(sys.executable).name, *sys.argv]), "models": {}}
    for model in args.models:
        report["models"][model] = compare(model, args)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=1) + "\n")
    print("\nmodel   official ms (cpu)   port ms (cpu)   ratio port/official cpu: median [min-max]   wall ratio")
    for model, r in report["models"].items():
        c, wl = r["cpu_s"], r["wall_s"]
        print(f"{model:7s} {c['official_ms']['median']:12.0f} {c['port_ms']['median']:15.0f}        "
              f"{c['ratio_port_over_official']['median']:.3f} [{c['ratio_port_over_official']['min']:.3f}-"
              f"{c['ratio_port_over_official']['max']:.3f}]            {wl['ratio_port_over_official']['median']:.3f}  "
              f"(max|diff| {r['agreement']['max_abs_diff']:.2g})")
    return 0


def _cpu_model() -> str:
    import platform

    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except Exception:  # noqa: BLE001 - only for the record
        return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
