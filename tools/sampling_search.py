"""The sampling search every like-for-like checkpoint gets (issue 29; docs/training.md, "The
like-for-like sets"): the search the tiny FPDM got (docs/models/fpdm.md, "Sampling at temperature
0"), the same grid for every model, on the first N pairs of the *training* split (never the test
split), under the paired protocol; the setting of lowest MAE is kept.

The grid, in each model's own terms (``STEPS`` below; every other setting is the checkpoint's):

  paper        the method's published sampler, temperature 1 (a sample of the model)
  det-t0       a deterministic sampler (DDIM, eta 0; PoCoLD's PNDM is one already) from the mean
               (temperature 0), the published guidance
  det-t0.5-g1  the deterministic sampler, temperature 0.5, no guidance (scale 1)
  det-t0-g1    the deterministic sampler, temperature 0, no guidance
  tau-0.025, tau-0.05   with ``--prior``: the best of the four with the residual soft-thresholded
               at tau (the four above use tau = 0)

Writes OUT/<setting>/ (ordinary run directories: rerunning resumes or reads them), OUT/search.json
(every setting's arguments and paired metrics, the chosen one), OUT/search.md and OUT/chosen.args
(the chosen setting as ``--model-arg K=V`` lines, which ``make bench-like-for-like`` passes to the
test run).

  python tools/sampling_search.py --model cfld --checkpoint runs/like-for-like/prior/cfld \\
      --dataset synthetic --out runs/like-for-like/prior/search/cfld --prior [--limit 32]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

#: per model: the published sampler, the deterministic one, "no guidance"
STEPS = {
    "fpdm": {"paper": {"scheduler": "ddpm", "guidance": 2.0}, "det": {"scheduler": "ddim"},
             "g1": {"guidance": 1.0}},
    "pidm": {"paper": {"scheduler": "ddpm", "guidance": 2.0}, "det": {"scheduler": "ddim"},
             "g1": {"guidance": 1.0}},
    "cfld": {"paper": {"scheduler": "ddpm", "guidance": 2.0, "pose_guidance": 2.0}, "det": {"scheduler": "ddim"},
             "g1": {"guidance": 1.0, "pose_guidance": 1.0}},
    "pocold": {"paper": {"guidance": 5.0, "end_guidance": 3.0}, "det": {},
               "g1": {"guidance": 1.0, "end_guidance": 1.0}},
}
TAUS = (0.025, 0.05)
CRITERION = "mae"  # lower is better; what the tiny FPDM's threshold was chosen by


def grid(model: str, prior: bool) -> dict[str, dict]:
    s = STEPS[model]
    tau = {"residual_threshold": 0.0} if prior else {}
    return {
        "paper": {**s["paper"], "temperature": 1.0, **tau},
        "det-t0": {**s["paper"], **s["det"], "temperature": 0.0, **tau},
        "det-t0.5-g1": {**s["paper"], **s["det"], **s["g1"], "temperature": 0.5, **tau},
        "det-t0-g1": {**s["paper"], **s["det"], **s["g1"], "temperature": 0.0, **tau},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, choices=sorted(STEPS))
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--limit", type=int, default=32, help="the first N training pairs (default 32)")
    ap.add_argument("--prior", action="store_true", help="the checkpoint has a warp prior: also search tau")
    a = ap.parse_args(argv)

    from fpdm_bench import api
    from fpdm_bench.errors import BenchError

    def one(name: str, args: dict) -> dict:
        res = api.run(a.model, a.dataset, a.out / name, checkpoint=a.checkpoint, split="train", limit=a.limit,
                      protocol="paired", model_args=args, progress=False, log=None)
        metrics = {k: v["value"] for k, v in res["metrics"].items() if isinstance(v, dict) and "value" in v}
        row = {"setting": name, "args": args, "metrics": metrics}
        print(f"{a.model} {name:12s} " + "  ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items())), flush=True)
        return row

    try:
        rows = [one(name, args) for name, args in grid(a.model, a.prior).items()]
        best = min(rows, key=lambda r: r["metrics"][CRITERION])
        if a.prior:
            rows += [one(f"tau-{t}", {**best["args"], "residual_threshold": t}) for t in TAUS]
            best = min(rows, key=lambda r: r["metrics"][CRITERION])
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    summary = {"model": a.model, "checkpoint": a.checkpoint, "dataset": a.dataset, "split": "train",
               "pairs": a.limit, "protocol": "paired", "criterion": f"lowest {CRITERION}", "rows": rows,
               "chosen": best["setting"], "chosen_args": best["args"]}
    (a.out / "search.json").write_text(json.dumps(summary, indent=2) + "\n")
    cols = sorted(rows[0]["metrics"])
    md = [f"| setting | arguments | {' | '.join(cols)} |", "|---|---|" + "---|" * len(cols)]
    for r in rows:
        mark = " **(chosen)**" if r is best else ""
        args = ", ".join(f"{k}={v}" for k, v in r["args"].items())
        md.append(f"| {r['setting']}{mark} | {args} | " + " | ".join(f"{r['metrics'][c]:.4f}" for c in cols) + " |")
    (a.out / "search.md").write_text("\n".join(md) + "\n")
    (a.out / "chosen.args").write_text("".join(f"--model-arg {k}={v}\n" for k, v in best["args"].items()))
    print(f"{a.model}: chosen {best['setting']} ({CRITERION} {best['metrics'][CRITERION]:.4f}) -> {a.out / 'chosen.args'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
