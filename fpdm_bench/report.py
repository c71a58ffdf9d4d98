"""Metric tables from results.json files (text, Markdown or CSV)."""
from __future__ import annotations

from fpdm_bench.results import Results, direction, metric_names


def load_results(path) -> Results:
    return Results.load(path)


def _cell(entry: dict | None) -> str:
    if not entry:
        return "-"
    if entry.get("value") is None:
        return "n/a"
    v = entry["value"]
    ci = entry.get("ci95")
    digits = 4 if abs(v) < 10 else 2
    return f"{v:.{digits}f} ±{(ci[1] - ci[0]) / 2:.{digits}f}" if ci else f"{v:.{digits}f}"


def _arrow(up: bool | None) -> str:
    return {True: "↑", False: "↓", None: "?"}[up]


def format_table(results, fmt: str = "text") -> str:
    results = [Results.of(r) for r in results]
    names = metric_names(results)
    head = ["model", "dataset", "protocol", "n"] + [f"{m} {_arrow(direction(results, m))}" for m in names]
    rows = [[r.label, r.dataset, r.protocol, str(r.n)] + [_cell(r.metrics.get(m)) for m in names] for r in results]
    notes = sorted({f"{m}: {e['unavailable']}" for r in results for m, e in r.metrics.items()
                    if isinstance(e, dict) and e.get("unavailable")})
    notes += sorted({f"{r.label}: {r.data.get('note') or 'random weights, no metric scored'}"
                     for r in results if r.random_weights})
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(head)
        w.writerows(rows)
        return buf.getvalue()
    if fmt == "markdown":
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
    else:
        widths = [max(len(x) for x in col) for col in zip(head, *rows)]
        fmt_row = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths))  # noqa: E731
        lines = [fmt_row(head), "  ".join("-" * w for w in widths)] + [fmt_row(r) for r in rows]
    lines += [""] + [f"note: {n}" for n in notes] if notes else []
    if names:
        lines.append("± = half-width of the bootstrap 95 % CI of the mean")
    return "\n".join(lines)
