"""A comparison rendered as text (terminal, CI log), Markdown (pull-request comment, job summary) or JSON."""
from __future__ import annotations

import json
import math

from fpdm_bench.stats import verdict as V
from fpdm_bench.stats.comparison import Comparison, Row

ARROW = {True: "↑", False: "↓", None: ""}


def _num(x, fmt=".5g") -> str:
    if x is None:
        return "—"
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return format(x, fmt)


def _delta(x) -> str:
    return "—" if x is None else _num(x, "+.4g")


def _ci(ci) -> str:
    return "—" if not ci else f"[{_num(ci[0], '+.3g')}, {_num(ci[1], '+.3g')}]"


def _verdict(r: Row) -> str:
    return r.verdict + (" (exact)" if r.exact and r.verdict == V.SAME else "")


def headline(c: Comparison, exact: bool = False) -> str:
    failed = c.failures(exact)
    counts = {v: sum(r.verdict == v for r in c.rows if r.gating) for v in (V.BETTER, V.SAME, V.WORSE)}
    tail = f"{counts[V.BETTER]} better, {counts[V.SAME]} no change, {counts[V.WORSE]} worse"
    if failed:
        worse = [r.metric for r in failed if r.verdict == V.WORSE]
        differ = [r.metric for r in failed if r.verdict != V.WORSE]
        what = "; ".join(x for x in (f"worse: {', '.join(worse)}" if worse else "",
                                     f"not bit-identical (--exact): {', '.join(differ)}" if differ else "") if x)
        return f"FAIL — {what} ({tail})"
    return f"OK — no regression ({tail})"


def _runs(c: Comparison, md: bool = False) -> list[str]:
    out = []
    for name, run in (("base", c.base), ("new", c.new)):
        r = run.results
        out.append(f"**{name}** `{run.label}` ({r.model}, {r.n} pairs)" if md else
                   f"{name}: {run.label} ({r.model}, {r.n} pairs)")
    ctx = f"protocol {c.base.results.protocol}, dataset {c.base.results.dataset}"
    if c.base.results.perturbation:
        ctx += f", inputs perturbed: {c.base.results.perturbation}"
    if c.compared_pairs is not None:
        ctx += f"; {c.compared_pairs} pairs scored by both"
    out.append(ctx)
    if c.changed:
        out.append("changed: " + "; ".join(f"{k} {v[0]!r} → {v[1]!r}" for k, v in c.changed.items()))
    return out


def _methods(c: Comparison) -> list[str]:
    by: dict[str, list[str]] = {}
    for r in c.rows:
        by.setdefault(r.method, []).append(r.metric + (f" ({r.seconds:.1f} s)" if r.seconds is not None and r.seconds >= 0.05
                                                       else ""))
    return [f"{', '.join(ms)}: {m}" for m, ms in by.items()]


def _tol(r: Row) -> str:
    return "—" if r.tolerance is None else _num(r.tolerance, ".3g")


def text(c: Comparison, exact: bool = False, with_headline: bool = True) -> str:
    lines = _runs(c) + [""]
    head = ["metric", "base", "new", "delta", "95% CI of delta", "tolerance", "verdict"]
    body = [[f"{r.metric} {ARROW[r.higher_is_better]}".strip(), _num(r.base), _num(r.new), _delta(r.delta), _ci(r.ci95),
             _tol(r), _verdict(r)] for r in c.rows]
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    align = ["<", ">", ">", ">", "<", ">", "<"]
    for row in [head] + body:
        lines.append("  ".join(f"{v:{a}{w}}" for v, a, w in zip(row, align, widths)).rstrip())
    lines += ["", "CI of the difference:"] + [f"  {m}" for m in _methods(c)]
    if c.notes:
        lines += ["notes:"] + [f"  - {n}" for n in c.notes]
    if with_headline:
        lines.append(headline(c, exact))
    return "\n".join(lines)


def markdown(c: Comparison, exact: bool = False) -> str:
    failed = bool(c.failures(exact))
    lines = [f"### fpdm-bench compare: {'**FAIL**' if failed else '**OK**'} — {headline(c, exact).split(' — ', 1)[1]}",
             "", "  \n".join(_runs(c, md=True)), "",
             "| metric | base | new | Δ | 95 % CI of Δ | tolerance | verdict |",
             "|---|---:|---:|---:|---|---:|---|"]
    for r in c.rows:
        v = _verdict(r)
        v = f"**{v}**" if r.verdict in (V.WORSE, V.BETTER) and r.gating else v
        lines.append(f"| {r.metric} {ARROW[r.higher_is_better]} | {_num(r.base)} | {_num(r.new)} | {_delta(r.delta)} | "
                     f"{_ci(r.ci95)} | {_tol(r)} | {v} |")
    lines += ["", "<details><summary>how the CIs were computed; notes</summary>", ""]
    lines += [f"- {m}" for m in _methods(c)]
    lines += [f"- {n}" for n in c.notes]
    lines += ["- verdict: WORSE/better = the 95 % CI of Δ excludes 0 on that side *and* |Δ| exceeds the tolerance; "
              "otherwise no (detectable) change", "", "</details>"]
    return "\n".join(lines) + "\n"


def as_json(c: Comparison, exact: bool = False) -> str:
    d = c.to_dict()
    d["headline"] = headline(c, exact)
    d["failed"] = [r.metric for r in c.failures(exact)]
    return json.dumps(d, indent=2, default=str, allow_nan=True)
