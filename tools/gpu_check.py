"""Every GPU path of fpdm-bench on the published configurations (random weights), in one script.

For each model (fpdm, pidm, cfld, pocold at their published sizes, ``--model-arg init=random``):

1. ``fpdm-bench run`` on 2 pairs x 2 sampler steps in float32, float16 and bfloat16 through the runner
   (its output check is on: a NaN/Inf image or values outside [0, 1] fail the run); the float16 /
   bfloat16 images against the float32 ones (8-bit levels: max and mean absolute difference);
2. ``fpdm-bench profile`` at batch 1 and 8: ms per denoising step, ms per image and
   ``torch.cuda.max_memory_allocated``;
3. ``torchrun --nproc_per_node 1`` of one model: the process group (NCCL on a GPU), the gather and
   rank 0's results.json (which records the backend).

Writes ``OUT/gpu_check.json`` and ``OUT/gpu_check.md`` and prints the table. A step that fails is
recorded with its error and the script goes on; the exit status is 1 if any step failed.

    python tools/gpu_check.py --out runs/gpu-check                  # on a GPU machine
    python tools/gpu_check.py --device cpu --models pidm --dtypes float32 --batch-sizes 1 --out /tmp/gc

``make gpu-check`` runs it through ``tools/gpu_check.sh``, which first installs what a GPU machine
without a package index lacks (the wheels carried in ``.whl/``, made by ``make gpu-wheels``).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PROTOCOLS = {"fpdm": "fpdm", "pidm": "pidm", "cfld": "cfld", "pocold": "pocold"}


def _run(model, dtype, args, out: Path) -> dict:
    from fpdm_bench.runner import RunConfig, run

    cfg = RunConfig(model=model, dataset=args.dataset, out=str(out), limit=args.pairs, batch_size=args.pairs,
                    device=args.device, dtype=dtype, protocol=PROTOCOLS[model], workers=0, progress=False,
                    model_args={"init": "random", "steps": args.steps})
    t0 = time.perf_counter()
    res = run(cfg, log=lambda m: print(f"  {m}", file=sys.stderr))
    return {"ok": res is not None, "seconds": time.perf_counter() - t0, "dtype_ran": res["model"].get("dtype"),
            "n": res["n"], "random_weights": res.get("random_weights"), "metrics": res.get("metrics")}


def _images(folder: Path) -> dict[str, np.ndarray]:
    from PIL import Image

    return {p.stem: np.asarray(Image.open(p).convert("RGB"), dtype=np.int16) for p in sorted(folder.glob("*.png"))}


def _difference(ref: Path, other: Path) -> dict:
    a, b = _images(ref / "samples"), _images(other / "samples")
    if not a or set(a) != set(b):
        return {"error": f"sample sets differ ({len(a)} vs {len(b)} images)"}
    d = np.concatenate([np.abs(a[k] - b[k]).ravel() for k in a])
    return {"max_levels": int(d.max()), "mean_levels": float(d.mean()), "images": len(a)}


def _profile(model, dtype, args) -> dict:
    from fpdm_bench.profile import ProfileConfig, profile

    cfg = ProfileConfig(model=model, dataset=args.dataset, model_args={"init": "random"}, steps=[args.steps],
                        batch_sizes=[int(b) for b in args.batch_sizes.split(",")], dtype=dtype, device=args.device,
                        repeats=args.repeats, warmup=1, protocol=PROTOCOLS[model], metric_pass=False)
    rep = profile(cfg, log=lambda m: print(f"  {m}", file=sys.stderr))
    rows = []
    for r in rep["rows"]:
        m = r["memory"]
        rows.append({"batch_size": r["batch_size"], "steps": r["steps"],
                     "step_ms": (r.get("denoising_step_seconds") or 0) * 1000,
                     "image_ms": r["seconds_per_image"]["median"] * 1000,
                     "max_memory_allocated_bytes": m.get("peak_bytes"), "memory_kind": m.get("kind"),
                     "process_maxrss_bytes": m.get("process_maxrss_bytes")})
    return {"rows": rows, "parameters": (rep.get("model_info") or {}).get("parameters"),
            "resolution": (rep.get("model_info") or {}).get("resolution")}


def _torchrun(model, args, out: Path) -> dict:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1", "-m", "fpdm_bench.cli", "run",
           "--model", model, "--model-arg", "init=random", "--steps", str(args.steps), "--limit", str(args.pairs),
           "--batch-size", str(args.pairs), "--dataset", args.dataset, "--device", args.device, "--protocol",
           PROTOCOLS[model], "--workers", "0", "--no-progress", "--out", str(out)]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    res = out / "results.json"
    if p.returncode != 0 or not res.is_file():
        return {"ok": False, "returncode": p.returncode, "stderr_tail": p.stderr[-2000:]}
    return {"ok": True, "seconds": time.perf_counter() - t0, "distributed": json.loads(res.read_text()).get("distributed")}


def _step(record: dict, key: str, fn, *a):
    print(f"[{key}]", file=sys.stderr, flush=True)
    try:
        record[key] = fn(*a)
    except Exception as e:  # noqa: BLE001 — record and go on: one broken path must not hide the others
        record[key] = {"ok": False, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-3000:]}
    return record[key]


def _num(v) -> str:
    return "-" if v is None else f"{v:.1f}"


def markdown(report: dict) -> str:
    env = report["environment"]
    lines = [f"GPU check on {env['device_name']} (torch {env['torch']}, CUDA {env['cuda']}), {report['date']}; "
             f"published configurations with random weights; {report['args']['pairs']} pairs x "
             f"{report['args']['steps']} steps.", "",
             "| model | parameters | dtype | run | fp16/bf16 vs fp32 (max / mean 8-bit levels) | batch | ms / step | "
             "ms / image | peak memory GiB (CUDA: max_memory_allocated; CPU: RSS) |", "|" + "---|" * 9]
    for model, r in report["models"].items():
        params = (r.get("profile_float32") or {}).get("parameters")
        for dtype in report["args"]["dtypes"]:
            run = r.get(f"run_{dtype}", {})
            diff = r.get(f"diff_{dtype}") or {}
            dtxt = ("-" if dtype == "float32" else
                    f"{diff['max_levels']} / {diff['mean_levels']:.2f}" if "max_levels" in diff else diff.get("error", "-"))
            status = "ok" if run.get("ok") else f"FAILED: {run.get('error', '?')[:80]}"
            prof = r.get(f"profile_{dtype}") or {}
            rows = prof.get("rows") or [{}]
            for k, pr in enumerate(rows):
                mem = pr.get("max_memory_allocated_bytes")
                lines.append(f"| {model if k == 0 else ''} | {f'{params:,}' if params and k == 0 else ''} | "
                             f"{dtype if k == 0 else ''} | {status if k == 0 else ''} | {dtxt if k == 0 else ''} | "
                             f"{pr.get('batch_size', '-')} | {_num(pr.get('step_ms'))} | {_num(pr.get('image_ms'))} | "
                             f"{'-' if mem is None else f'{mem / (1 << 30):.2f}'} |")
    tr = report.get("torchrun") or {}
    lines += ["", f"torchrun --nproc_per_node 1 ({report['args']['torchrun_model']}): "
              + (f"ok, {tr.get('distributed')}" if tr.get("ok") else f"FAILED: {tr.get('error') or tr.get('stderr_tail', '')[-300:]}")]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "gpu-check")
    ap.add_argument("--models", default=",".join(PROTOCOLS))
    ap.add_argument("--dtypes", default="float32,float16,bfloat16")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dataset", default="synthetic")
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--batch-sizes", default="1,8")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--profile-dtypes", default="float32,float16", help="dtypes profiled (each costs a model load)")
    ap.add_argument("--torchrun-model", default="pidm", help="model run under torchrun (none: skip)")
    args = ap.parse_args(argv)
    args.dtypes = args.dtypes.split(",")
    import torch

    import fpdm_bench  # noqa: F401 — the torchvision shim, before diffusers/transformers

    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        print("gpu_check: --device cuda but torch sees no CUDA device", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "args": {**vars(args), "out": str(args.out)},
              "environment": {"torch": torch.__version__, "cuda": torch.version.cuda,
                              "device_name": torch.cuda.get_device_name(0) if cuda else "cpu",
                              "cpu_count": os.cpu_count()}, "models": {}}
    t_start = time.perf_counter()
    for model in args.models.split(","):
        r = report["models"][model] = {}
        for dtype in args.dtypes:
            _step(r, f"run_{dtype}", _run, model, dtype, args, args.out / "runs" / f"{model}-{dtype}")
        for dtype in args.dtypes[1:]:
            if r[f"run_{dtype}"].get("ok") and r[f"run_{args.dtypes[0]}"].get("ok"):
                r[f"diff_{dtype}"] = _difference(args.out / "runs" / f"{model}-{args.dtypes[0]}",
                                                 args.out / "runs" / f"{model}-{dtype}")
        for dtype in args.profile_dtypes.split(","):
            if dtype in args.dtypes:
                _step(r, f"profile_{dtype}", _profile, model, dtype, args)
        if cuda:
            torch.cuda.empty_cache()
        (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    if args.torchrun_model != "none":
        _step(report, "torchrun", _torchrun, args.torchrun_model, args, args.out / "runs" / "torchrun")
    report["seconds"] = time.perf_counter() - t_start
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    table = markdown(report)
    (args.out / "gpu_check.md").write_text(table)
    print(table)
    failed = [k for m in report["models"].values() for k, v in m.items() if isinstance(v, dict) and v.get("ok") is False]
    failed += ["torchrun"] if (report.get("torchrun") or {}).get("ok") is False else []
    print(f"gpu_check: {'FAILED: ' + ', '.join(failed) if failed else 'every step ran'} "
          f"({report['seconds']:.0f} s)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
