"""Write the golden fixture of a shipped tiny FPDM checkpoint from a finished run (as diffusers'
``expected_slice``): the first 4 pairs of RUN/samples.jsonl (seed, per-sample paired metrics) and a
4x4 patch of each PNG at the image centre. tests/test_tiny_fpdm_golden.py compares a fresh run with it.

    fpdm-bench run --model fpdm --dataset synthetic --out RUN --protocol paired --limit 4 --batch-size 4
    python tools/make_tiny_fpdm_golden.py RUN tests/fixtures/tiny_fpdm_golden.json

The fixture is a regression record of what the checkpoint produced when it was shipped, not a
correctness oracle: the numbers come from the code under test.
"""
from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    rows = [json.loads(x) for x in (args.run / "samples.jsonl").read_text().splitlines() if x.strip()][:4]
    config = json.loads((args.run / "config.json").read_text())["config"]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    pairs = []
    for r in rows:
        img = np.asarray(Image.open(args.run / "samples" / f"{r['pair_id']}.png"))
        y, x = img.shape[0] // 2, img.shape[1] // 2
        pairs.append({"pair_id": r["pair_id"], "seed": r["seed"], "metrics": r["metrics"], "patch_yx": [y, x],
                      "patch": img[y:y + 4, x:x + 4].tolist()})
    made_by = (f"tools/make_tiny_fpdm_golden.py at commit {commit or '?'} (working tree) from `fpdm-bench run --model fpdm "
               f"--dataset {config.get('dataset')} --protocol {config.get('protocol')} --limit {config.get('limit')} "
               f"--batch-size {config.get('batch_size')}` (shipped checkpoint, seed {config.get('seed')})")
    args.out.write_text(json.dumps({"made_by": made_by, "dataset": config.get("dataset"), "pairs": pairs}, indent=1) + "\n")
    print(f"wrote {args.out} ({len(pairs)} pairs)")


if __name__ == "__main__":
    main()
