"""The published configurations of FPDM, PIDM, CFLD and PoCoLD, with random weights, end to end on
this machine: one ``fpdm-bench profile`` per model (its own process, so each peak RSS is its own),
then one table: parameters, ms per denoising step, ms per image at the measured steps and at the
published step count (extrapolated), peak memory. ``make bench-published`` runs it.

    python tools/bench_published.py [--out runs/published] [--models fpdm,pidm] [--steps 2] [--device cpu]

The per-image latency at the published step count is **extrapolated**, not measured: the measured
per-image time plus (published steps - measured steps) x the measured time of one denoising step
(``profile``'s step ms: denoiser time / sampler iterations), i.e. everything outside the sampler loop
(encoders, pose drawing, VAE decoder) is counted once, as it runs once. The table says so.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: model -> the protocol whose evaluation size its paper reports (the dataset is loaded at that size)
PROTOCOLS = {"fpdm": "fpdm", "pidm": "pidm", "cfld": "cfld", "pocold": "pocold"}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return f"{torch.cuda.get_device_name(0)} ({os.cpu_count()} CPU cores)"
    return f"{cpu_name()}, {os.cpu_count()} cores"


def published_steps(report: dict) -> int | None:
    return (report.get("model_info") or {}).get("published_steps")


def row(report: dict) -> dict:
    r = report["rows"][0]
    info = report.get("model_info") or {}
    step = r.get("denoising_step_seconds")
    per_img = r["seconds_per_image"]["median"]
    pub = published_steps(report)
    mem = r["memory"]
    extrap = per_img + (pub - r["steps"]) * step / r["batch_size"] if (pub and step and r["steps"]) else None
    return {"model": report["config"]["model"], "protocol": report["config"]["protocol"],
            "resolution": info.get("resolution"), "parameters": info.get("parameters"),
            "steps_measured": r["steps"], "nfe_measured": r.get("nfe"), "batch_size": r["batch_size"],
            "step_ms": step * 1000 if step else None, "image_ms_measured": per_img * 1000,
            "published_steps": pub, "image_ms_published_extrapolated": extrap * 1000 if extrap else None,
            "load_s": r.get("load_seconds"),
            "peak_bytes": mem.get("peak_bytes"), "process_maxrss_bytes": mem.get("process_maxrss_bytes"),
            "memory_kind": mem.get("kind"), "random_weights": bool(report.get("random_weights"))}


def markdown(rows: list[dict], meta: dict) -> str:
    gib = lambda b: "-" if b is None else f"{b / (1 << 30):.2f}"  # noqa: E731
    ms = lambda v: "-" if v is None else (f"{v:,.0f}" if v >= 100 else f"{v:.1f}")  # noqa: E731
    cuda = meta["device"].startswith("cuda")
    mem_head = "peak CUDA alloc GiB" if cuda else "peak RSS GiB (process, incl. load)"
    lines = [f"Published configurations, random weights (`--model-arg init=random`), on {meta['machine']}, "
             f"{meta['date']}, torch threads {meta['torch_threads']}, batch 1, {meta['steps']} sampler steps measured, "
             f"{meta['repeats']} timed call(s) after {meta['warmup']} warm-up:", "",
             f"| model | resolution | parameters | protocol (eval size) | ms / step | ms / image at {meta['steps']} steps "
             f"(measured) | published steps | ms / image at published steps (**extrapolated**) | {mem_head} | "
             f"load s |", "|" + "---|" * 10]
    for r in rows:
        res = "x".join(map(str, r["resolution"])) if r["resolution"] else "-"
        mem = r["peak_bytes"] if cuda else r["process_maxrss_bytes"]
        lines.append(f"| {r['model']} | {res} | {r['parameters']:,} | {r['protocol']} | {ms(r['step_ms'])} | "
                     f"{ms(r['image_ms_measured'])} | {r['published_steps'] or '-'} | "
                     f"{ms(r['image_ms_published_extrapolated'])} | {gib(mem)} | {ms(r['load_s'])} |")
    lines += ["", "ms / step: one denoising step (denoiser time / sampler iterations, guidance branches included). "
              "Extrapolated: measured ms/image + (published - measured steps) x ms/step. Load: building the "
              "published configuration with seeded random weights."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "published")
    ap.add_argument("--models", default=",".join(PROTOCOLS))
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--dataset", default="synthetic")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    exe = [sys.executable, "-m", "fpdm_bench.cli"]
    rows = []
    for model in args.models.split(","):
        if model not in PROTOCOLS:
            print(f"unknown model {model!r} (expected one of {', '.join(PROTOCOLS)})", file=sys.stderr)
            return 2
        out = args.out / f"{model}.json"
        cmd = exe + ["profile", "--model", model, "--model-arg", "init=random", "--steps", str(args.steps),
                     "--batch-sizes", "1", "--repeats", str(args.repeats), "--warmup", str(args.warmup),
                     "--dataset", args.dataset, "--protocol", PROTOCOLS[model], "--no-metrics",
                     "--device", args.device, "--dtype", args.dtype, "--out", str(out)]
        print(f"[{model}] {' '.join(cmd[3:])}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=ROOT)
        print(f"[{model}] done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        rows.append(row(json.loads(out.read_text())))
    first = json.loads((args.out / f"{rows[0]['model']}.json").read_text())
    meta = {"machine": machine(args.device), "device": args.device, "date": time.strftime("%Y-%m-%d"),
            "torch_threads": first["timing"]["torch_threads"], "steps": args.steps, "repeats": args.repeats,
            "warmup": args.warmup, "git_commit": first.get("git_commit")}
    (args.out / "published.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    table = markdown(rows, meta)
    (args.out / "published.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
