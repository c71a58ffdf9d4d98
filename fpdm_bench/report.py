"""Metric tables from results.json files."""
from __future__ import annotations

import json
from pathlib import Path

from fpdm_bench.errors import DataError

# Display order and direction; metrics not listed here follow alphabetically.
ORDER = ["fid", "kid", "lpips", "ssim", "ssim_256", "ssim_gauss", "psnr", "mae", "pckh", "pckh_target", "pose_dist",
         "pose_detected"]
LOWER_IS_BETTER = {"fid", "kid", "lpips", "mae", "pose_dist"}


def load_results(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise DataError(path, "no results.json here (has the run finished? see `fpdm-bench merge`)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(path, f"not valid JSON ({e})") from None


# Kept in results.json, left out of tables: counts behind the pose metrics.
HIDDEN = {"pose_n", "pose_n_target"}


def _metric_names(results: list[dict]) -> list[str]:
    names = {m for r in results for m in r.get("metrics", {})} - HIDDEN
    return [m for m in ORDER if m in names] + sorted(names - set(ORDER))


def _cell(entry: dict | None) -> str:
    if not entry:
        return "-"
    if entry.get("value") is None:
        return "n/a"
    v = entry["value"]
    ci = entry.get("ci95")
    digits = 4 if abs(v) < 10 else 2
    return f"{v:.{digits}f} ±{(ci[1] - ci[0]) / 2:.{digits}f}" if ci else f"{v:.{digits}f}"


def format_table(results: list[dict], fmt: str = "text") -> str:
    names = _metric_names(results)
    head = ["model", "dataset", "protocol", "n"] + [f"{m} {'↓' if m in LOWER_IS_BETTER else '↑'}" for m in names]
    rows = []
    for r in results:
        proto = r.get("protocol", {})
        rows.append([
            str(r.get("model", {}).get("name") or r.get("config", {}).get("model", "?")),
            str(r.get("dataset", {}).get("name", "?")),
            str(proto.get("name", proto.get("protocol", "?")) if isinstance(proto, dict) else proto),
            str(r.get("n", "?")),
        ] + [_cell(r.get("metrics", {}).get(m)) for m in names])
    notes = sorted({f"{m}: {e['unavailable']}" for r in results for m, e in r.get("metrics", {}).items()
                    if isinstance(e, dict) and e.get("unavailable")})
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
    lines.append("± = half-width of the bootstrap 95 % CI of the mean")
    return "\n".join(lines)
