"""Write a shipped tiny checkpoint's reproduction tolerance from its recipe's training noise
(fpdm_bench/stats/training_noise.py has the rule; docs/training.md, "Reproduction checks", the
trainings behind each shipped file).

The shipped ``bench-paired.json`` is the first training; each ``--training LABEL=RESULTS`` adds a
retrain's paired-protocol results (a run folder or results.json: another seed, another machine). The
output is the YAML `fpdm-bench compare --tolerance-file` reads, with the trainings and the rule kept
beside the tolerances. The ``make train-tiny*`` targets pass it to their `compare --no-ci`.

  python tools/training_noise.py --shipped baselines/pidm/checkpoints/tiny/bench-paired.json \\
      --shipped-label "seed 0, shipped" --training "seed 0, other machine=runs/train-tiny-pidm/tiny-bench" \\
      --training "seed 1=runs/seeds/pidm-s1/tiny-bench" --out baselines/pidm/checkpoints/tiny/reproduce-tolerance.yaml
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from fpdm_bench.errors import BenchError
from fpdm_bench.results import Results
from fpdm_bench.stats.rundata import RunData, check_comparable
from fpdm_bench.stats.training_noise import ALPHA, rule, tolerances


def values(results: Results) -> dict[str, float]:
    return {k: float(results.value(k)) for k in results.shown() if results.value(k) is not None}


def write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise BenchError(f"{path}: cannot write the tolerance file ({e.strerror or e})") from None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shipped", required=True, help="the shipped checkpoint's bench-paired.json")
    ap.add_argument("--shipped-label", default="shipped", help="how the shipped training is named in the file")
    ap.add_argument("--training", action="append", default=[], metavar="LABEL=RESULTS",
                    help="a retrain's results (run folder or results.json; the path holds no =); repeat, at least twice")
    ap.add_argument("--alpha", type=float, default=ALPHA,
                    help=f"chance that a correct retrain fails a metric's check, normal model (default {ALPHA:g})")
    ap.add_argument("--title", default="", help="a comment line on top: which checkpoint, which recipe")
    ap.add_argument("--out", required=True, help="the tolerance file to write")
    a = ap.parse_args(argv)
    try:
        shipped = Results.load(a.shipped)
        trainings = [(a.shipped_label, a.shipped, values(shipped))]
        for item in a.training:
            label, sep, path = item.rpartition("=")
            if not sep or not label.strip():
                raise BenchError(f"--training takes LABEL=RESULTS, got {item!r}")
            r = Results.load(path)
            # compare's own rule (protocol, dataset, pairs, perturbation, ...); a training noise also
            # needs the pairs' hash on both sides, which that rule lets pass when one lacks it
            if r.model != shipped.model:
                raise BenchError(f"{path}: a {r.model} run, not a training of the shipped {shipped.model}")
            if not (r.pairs_sha256 and shipped.pairs_sha256):
                raise BenchError(f"{path}: no pairs_sha256 here or in {a.shipped}, so not provably the same test pairs")
            try:
                check_comparable(RunData(shipped), RunData(r))
            except BenchError as e:
                raise BenchError(f"{path}: {e}") from None
            trainings.append((label.strip(), path, values(r)))
        directions = {k: shipped.higher_is_better(k) for k in trainings[0][2]}
        stats = tolerances(trainings[0][2], [t[2] for t in trainings], directions, a.alpha)
        write(Path(a.out), document(stats, trainings, a.alpha, a.title))
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for k, s in stats.items():
        print(f"{k:<12} sd {s['sd']:.4g} over {s['n']} trainings  range [{s['min']:.4g}, {s['max']:.4g}]  "
              f"bound {s['bound']:.4g}  tolerance {s['tolerance']:.4g}")
    print(f"wrote {a.out}")
    return 0


def document(stats: dict, trainings: list, alpha: float, title: str) -> str:
    doc = {
        "tolerance": {k: s["tolerance"] for k, s in stats.items()},
        "rule": rule(alpha),
        "spread": {k: {f: (float(f"{v:.6g}") if isinstance(v, float) else v) for f, v in s.items() if f != "tolerance"}
                   for k, s in stats.items()},
        "trainings": [{"label": label, "results": str(path), **{k: float(f"{v:.6g}") for k, v in vals.items()}}
                      for label, path, vals in trainings],
    }
    head = (f"# {title}\n" if title else "") + (
        "# Reproduction tolerance (absolute, per metric) for `compare --no-ci` of a retrain against the shipped\n"
        "# bench-paired.json; written by tools/training_noise.py from the trainings listed below.\n")
    return head + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


if __name__ == "__main__":
    sys.exit(main())
