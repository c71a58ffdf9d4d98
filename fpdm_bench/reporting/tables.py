"""The metric tables of a report: Markdown, LaTeX (booktabs), HTML and CSV from one table model.

One table per (dataset, split, protocol, perturbation) among the runs. Rows: the models in the
order given, then the floors (by default the models whose adapter says ``floor = True``) below a
rule. Columns: n, then every metric some run has a value for (display order and titles declared by
the metric classes, ``Metric.order`` and ``Metric.title``), each headed by its direction from the
metric registry (↑ higher is better, ↓ lower). A cell is the value
± the half-width of its results.json 95 % interval; the precision is per column (4 decimals when
every value is below 10, else 2). **Bold**: the best model of the column; the floors are not
ranked (the oracle is the ceiling of every paired metric). ``*`` on the best value: its lead over
the second model is significant, by the statistics the metric class declares (``Metric.resample``):
a seeded paired bootstrap of the per-sample differences (the two runs' samples.jsonl, same pairs),
a joint bootstrap of the stored features (FID/KID), else the two results.json intervals; the test
behind every mark is in significance.csv.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from pathlib import Path

from fpdm_bench.io import write_csv
from fpdm_bench.reporting._common import Artefact, slug
from fpdm_bench.results import Results, metric_names

SIG_MARK = "*"
SEED = 0  # of the significance bootstraps


def title(key: str, latex: bool = False) -> str:
    """The column title of result ``key`` as its metric class declares it (``Metric.title``,
    ``key_titles``), plain or LaTeX; a key no class titles is shown as it is."""
    from fpdm_bench.metrics.base import key_title

    plain, tex = key_title(key)
    return (tex or _tex(plain)) if latex else plain


@dataclass
class Row:
    label: str
    results: Results
    floor: bool
    run_dir: Path | None = None
    _samples: dict | None = None
    given_label: bool = False  # the label came from --label (kept as given, never suffixed)

    def per_sample(self) -> dict[str, dict] | None:
        """pair_id -> per-sample metrics from the run's samples*.jsonl (None without a run directory)."""
        if self._samples is None and self.run_dir is not None and any(self.run_dir.glob("samples*.jsonl")):
            from fpdm_bench.rundir import read_records

            self._samples = {p: r.get("metrics", {}) for p, r in read_records(self.run_dir).items()}
        return self._samples


@dataclass
class Column:
    key: str
    up: bool | None
    digits: int
    best: set[int] = field(default_factory=set)  # row indices
    marked: set[int] = field(default_factory=set)
    sig: dict | None = None

    @property
    def arrow(self) -> str:
        return {True: "↑", False: "↓", None: ""}[self.up]

    @property
    def latex_arrow(self) -> str:
        return {True: r" $\uparrow$", False: r" $\downarrow$", None: ""}[self.up]


@dataclass
class Table:
    rows: list[Row]
    columns: list[Column]
    dataset: str
    split: str
    n_pairs: object
    pairs_sha256: str | None
    protocol: str
    protocol_description: str
    perturbation: str | None
    hidden: dict[str, str]  # metric key -> why no run has a value
    number: int = 1
    tested: bool = True  # the significance tests ran (the report always runs them)

    # --- text parts shared by the renderers ---------------------------------------------------
    def where(self) -> str:
        pert = f", inputs perturbed by {self.perturbation}" if self.perturbation else ""
        sha = f", pairs sha256 {self.pairs_sha256[:12]}…" if self.pairs_sha256 else ""
        return f"dataset {self.dataset} ({self.split} split, {self.n_pairs} pairs{sha}){pert}; protocol {self.protocol}"

    def notes(self) -> list[str]:
        any_floor = any(r.floor for r in self.rows)
        any_model = any(not r.floor for r in self.rows)
        out = [f"Dataset: {self.dataset}, {self.split} split, {self.n_pairs} pairs"
               + (f" (pairs sha256 {self.pairs_sha256[:12]}…)" if self.pairs_sha256 else "")
               + (f"; inputs perturbed by {self.perturbation}" if self.perturbation else "") + ".",
               f"Protocol: {self.protocol}" + (f" ({self.protocol_description})" if self.protocol_description else "")
               + ".",
               "± = half-width of the 95 % CI of results.json; ↑ higher is better, ↓ lower is better "
               "(the metric registry's direction)."]
        if any_model:
            out.append("Bold: the best model per column" + (" (the floors below the rule are not ranked)"
                                                            if any_floor else "") + ". "
                       f"{SIG_MARK}: its lead over the second-best model is significant at 95 %, by "
                       f"`fpdm-bench compare`'s statistics (paired metrics: a paired bootstrap of the "
                       f"per-sample differences; FID/KID: a joint bootstrap on the stored features, or the two "
                       f"results.json CIs for runs without them; "
                       f"seed {SEED}); no mark: the top two are not distinguishable "
                       "(significance.csv has every test and its method).")
        if self.hidden:
            out.append("Not shown (no value in any run): "
                       + "; ".join(f"{k} ({why})" for k, why in self.hidden.items()) + ".")
        return out


# --- building -----------------------------------------------------------------------------------


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _column_digits(values) -> int:
    finite = [abs(v) for v in values if _finite(v)]
    return 4 if not finite or max(finite) < 10 else 2


def group_key(r: Results) -> tuple:
    return (r.dataset, str(r.data.get("dataset", {}).get("split", r.data.get("config", {}).get("split", "?"))),
            r.protocol, r.perturbation or "", r.pairs_sha256 or "")


def build_table(rows: list[Row], seed: int = SEED, test: bool = True) -> Table:
    """The table model of runs on the same pairs under the same protocol (see the module doc).
    ``test=False`` leaves the significance tests out (no mark; they bootstrap, which a quick look at the
    numbers does not need)."""
    results = [r.results for r in rows]
    keys = metric_names(results)
    hidden = {}
    shown = []
    for k in keys:
        if any(r.value(k) is not None for r in results):
            shown.append(k)
        else:
            why = next((r.metrics[k].get("unavailable") for r in results
                        if isinstance(r.metrics.get(k), dict) and r.metrics[k].get("unavailable")), "no value")
            hidden[k] = str(why).split(":")[0]
    columns = []
    ranked = [i for i, r in enumerate(rows) if not r.floor] or []
    for k in shown:
        up = next((r.higher_is_better(k) for r in results if k in r.metrics), None)
        col = Column(k, up, _column_digits([r.value(k) for r in results]))
        cand = [i for i in ranked if _finite(results[i].value(k))]
        if up is not None and cand:
            sign = 1 if up else -1
            order = sorted(cand, key=lambda i: -sign * results[i].value(k))
            top = results[order[0]].value(k)
            col.best = {i for i in cand if results[i].value(k) == top}
            if test and len(order) >= 2 and len(col.best) == 1:
                col.sig = significance(rows[order[0]], rows[order[1]], k, seed)
                if col.sig.get("significant"):
                    col.marked = {order[0]}
        columns.append(col)
    first = results[0]
    proto = first.data.get("protocol", {})
    return Table(rows=rows, columns=columns, dataset=first.dataset, split=group_key(first)[1],
                 n_pairs=first.data.get("dataset", {}).get("n_pairs_run", first.n), pairs_sha256=first.pairs_sha256,
                 protocol=first.protocol,
                 protocol_description=str(proto.get("description", "")) if isinstance(proto, dict) else "",
                 perturbation=first.perturbation, hidden=hidden, tested=test)


def build_tables(groups: list[list[Row]], seed: int = SEED, test: bool = True) -> list[Table]:
    """One table per group of rows (``fpdm_bench.reporting.run_groups``), numbered from 1 as the
    report numbers them."""
    tables = []
    for n, rows in enumerate(groups, 1):
        table = build_table(rows, seed, test)
        table.number = n
        tables.append(table)
    return tables


def significance(best: Row, second: Row, key: str, seed: int = SEED) -> dict:
    """The test behind a column's mark: best vs second on ``key`` (difference = best - second), by
    the same statistics as `fpdm-bench compare` (fpdm_bench.stats): a paired bootstrap of the
    per-sample differences, a joint bootstrap on the stored features for FID/KID, else the two
    results.json CIs. Significant: the 95 % interval of the difference excludes 0."""
    from fpdm_bench.errors import BenchError
    from fpdm_bench.stats.comparison import Options, compare_runs

    out = {"metric": key, "best": best.label, "second": second.label}
    from fpdm_bench.metrics.base import metric_class

    na, nb = ((r.results.metrics.get(key) or {}).get("n") for r in (best, second))
    cls = metric_class(key, best.results.metrics.get(key))
    if cls is not None and cls.depends_on_n and na != nb:
        return {**out, "significant": None, "method": f"not tested: n differs ({na} vs {nb}); FID/KID depend on n"}
    try:
        cmp = compare_runs(second.run_dir or second.results, best.run_dir or best.results,
                           Options(seed=seed, fid_infinity=False), metrics=[key])
    except BenchError as e:
        return {**out, "significant": None, "method": f"not tested: {e}"}
    row = next((r for r in cmp.rows if r.metric == key), None)
    if row is None or row.ci95 is None:
        return {**out, "significant": None, "method": "not tested: " + ("; ".join(cmp.notes) or "no interval")}
    lo, hi = row.ci95
    return {**out, "diff": row.delta, "ci95": [lo, hi], "n": row.n[0], "significant": bool(lo > 0 or hi < 0),
            "method": row.method}


# --- rendering ----------------------------------------------------------------------------------


def _num(v, digits: int, latex: bool = False) -> str:
    if v is None:
        return "--" if latex else "n/a"
    v = float(v)
    if math.isinf(v):
        return (r"\infty" if v > 0 else r"-\infty") if latex else ("inf" if v > 0 else "-inf")
    if math.isnan(v):
        return "nan"
    return f"{v:.{digits}f}"


def _half(entry: dict | None):
    ci = (entry or {}).get("ci95")
    if not ci or ci[0] is None or ci[1] is None:
        return None
    return (ci[1] - ci[0]) / 2


def cell_parts(table: Table, i: int, col: Column) -> tuple[str, str | None, bool, bool]:
    """(value text, half-width text or None, bold, marked) of row i, column col."""
    r = table.rows[i].results
    entry = r.metrics.get(col.key)
    v = r.value(col.key)
    half = _half(entry) if v is not None and _finite(v) else None
    if half == 0:
        half = None  # a degenerate interval (oracle's SSIM of 1 on every pair): the value alone
    return (_num(v, col.digits), None if half is None else f"{half:.{col.digits}f}", i in col.best, i in col.marked)


def to_markdown(table: Table) -> str:
    head = ["model", "n"] + [f"{title(c.key)} {c.arrow}".strip() for c in table.columns]
    lines = [f"**Table {table.number}.** Metrics on {table.where()}.", "",
             "| " + " | ".join(head) + " |", "|:---|---:|" + "---:|" * len(table.columns)]

    def row(i):
        cells = []
        for c in table.columns:
            v, h, bold, mark = cell_parts(table, i, c)
            text = (f"**{v}**" if bold else v) + ("\\" + SIG_MARK if mark else "")
            cells.append(text + (f" ±{h}" if h is not None else ""))
        label = table.rows[i].label
        return "| " + " | ".join([label, str(table.rows[i].results.n)] + cells) + " |"

    models = [i for i, r in enumerate(table.rows) if not r.floor]
    floors = [i for i, r in enumerate(table.rows) if r.floor]
    lines += [row(i) for i in models]
    if models and floors:
        lines.append("| *floors* |" + " |" * (len(head) - 1))
    lines += [row(i) for i in floors]
    lines += [""] + table.notes()
    return "\n".join(lines) + "\n"


def _tex(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"),
                 ("_", r"\_"), ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\^{}")):
        text = text.replace(a, b)
    return text.replace("σ", r"$\sigma$").replace("…", r"\ldots{}").replace("±", r"$\pm$").replace(
        "↑", r"$\uparrow$").replace("↓", r"$\downarrow$")


def to_latex(table: Table) -> str:
    ncol = 2 + len(table.columns)
    head = ["Model", "$n$"] + [title(c.key, latex=True) + c.latex_arrow for c in table.columns]
    lines = [r"% fpdm-bench report; needs \usepackage{booktabs}",
             r"\begin{table}[t]", r"\centering", r"\small", r"\setlength{\tabcolsep}{4pt}",
             r"\begin{tabular}{l" + "r" * (ncol - 1) + "}", r"\toprule", " & ".join(head) + r" \\", r"\midrule"]

    def row(i):
        cells = []
        for c in table.columns:
            v, h, bold, mark = cell_parts(table, i, c)
            tv = _num(table.rows[i].results.value(c.key), c.digits, latex=True)
            if tv == "--":
                cells.append("--")
                continue
            tv = rf"\mathbf{{{tv}}}" if bold else tv
            tv += "^{" + SIG_MARK + "}" if mark else ""
            cells.append(f"${tv}" + (rf" \pm {h}$" if h is not None else "$"))
        label = _tex(table.rows[i].label)
        label = rf"\textit{{{label}}}" if table.rows[i].floor else label
        return " & ".join([label, str(table.rows[i].results.n)] + cells) + r" \\"

    models = [i for i, r in enumerate(table.rows) if not r.floor]
    floors = [i for i, r in enumerate(table.rows) if r.floor]
    lines += [row(i) for i in models]
    if models and floors:
        lines.append(r"\midrule")
    lines += [row(i) for i in floors]
    lines += [r"\bottomrule", r"\end{tabular}",
              r"\caption{" + _tex(" ".join(table.notes())) + "}",
              rf"\label{{tab:fpdm-bench-{slug(table.dataset)}-{slug(table.protocol)}-{table.number}}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_html(table: Table) -> str:
    e = html.escape
    head = "".join(f"<th>{e(t)}</th>" for t in ["model", "n"] + [
        f"{title(c.key)} {c.arrow}".strip() for c in table.columns])
    body = []

    def row(i, cls=""):
        cells = []
        for c in table.columns:
            v, h, bold, mark = cell_parts(table, i, c)
            t = f"<b>{e(v)}</b>" if bold else e(v)
            t += f"<sup>{SIG_MARK}</sup>" if mark else ""
            t += f' <span class="ci">±{e(h)}</span>' if h is not None else ""
            cells.append(f"<td>{t}</td>")
        return (f'<tr{cls}><td class="label">{e(table.rows[i].label)}</td><td>{e(str(table.rows[i].results.n))}</td>'
                + "".join(cells) + "</tr>")

    models = [i for i, r in enumerate(table.rows) if not r.floor]
    floors = [i for i, r in enumerate(table.rows) if r.floor]
    body += [row(i) for i in models]
    body += [row(i, ' class="floor first"' if k == 0 and models else ' class="floor"') for k, i in enumerate(floors)]
    notes = "".join(f"<li>{e(n)}</li>" for n in table.notes())
    return (f'<table class="metrics"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
            f'<ul class="notes">{notes}</ul>')


#: The long format of the tables, one row per (run, metric): the DataFrame of ``fpdm_bench.api.load_runs``.
#: A table's CSV is these rows of one ``table`` pivoted on ``metric`` (``csv_rows``); ``dataset``,
#: ``split``, ``protocol`` and ``perturbation`` are what the table names under it, ``higher_is_better``
#: its column's arrow.
RUN_COLUMNS = ["table", "dataset", "split", "protocol", "perturbation", "model", "role", "n", "metric",
               "higher_is_better", "value", "ci95_low", "ci95_high", "best", "significant", "run"]


def _run_fields(table: Table, i: int) -> dict:
    r = table.rows[i]
    return {"model": r.label, "role": "floor" if r.floor else "model", "n": r.results.n}


def long_rows(table: Table) -> list[dict]:
    """The table as rows of ``RUN_COLUMNS``, in the table's order (runs, then metrics): ``best`` 1 for
    the bold cells, ``significant`` 1 for the marked ones (None when the tests were left out)."""
    where = {"table": table.number, "dataset": table.dataset, "split": table.split, "protocol": table.protocol,
             "perturbation": table.perturbation}
    out = []
    for i, r in enumerate(table.rows):
        for c in table.columns:
            entry = r.results.metrics.get(c.key) or {}
            ci = entry.get("ci95") or [None, None]
            out.append({**where, **_run_fields(table, i), "metric": c.key, "higher_is_better": c.up,
                        "value": entry.get("value"),
                        "ci95_low": ci[0], "ci95_high": ci[1], "best": int(i in c.best),
                        "significant": int(i in c.marked) if table.tested else None,
                        "run": str(r.results.path) if r.results.path else None})
    return out


def csv_rows(table: Table) -> tuple[list[dict], list[str]]:
    """The table's CSV: ``long_rows`` pivoted, one row per run: model, role, n, then per metric its
    value, ci95_low, ci95_high, best and significant."""
    cols = ["model", "role", "n"]
    for c in table.columns:
        cols += [c.key, f"{c.key}_ci95_low", f"{c.key}_ci95_high", f"{c.key}_best", f"{c.key}_significant"]
    long, k = long_rows(table), len(table.columns)
    rows = []
    for i in range(len(table.rows)):
        row = _run_fields(table, i)
        for d in long[i * k:(i + 1) * k]:
            m = d["metric"]
            row.update({m: d["value"], f"{m}_ci95_low": d["ci95_low"], f"{m}_ci95_high": d["ci95_high"],
                        f"{m}_best": d["best"], f"{m}_significant": d["significant"]})
        rows.append(row)
    return rows, cols


SIG_COLUMNS = ["table", "metric", "best", "second", "diff", "ci95_low", "ci95_high", "n", "significant", "method"]


def write_tables(groups: list[list[Row]], out: Path, seed: int = SEED, log=print) -> list[Artefact]:
    """One Markdown, LaTeX and CSV file per group of rows under ``out`` (the report's tables/ folder),
    plus significance.csv; returns the artefacts (paths relative to ``out``'s parent)."""
    out.mkdir(parents=True, exist_ok=True)
    arts, sig_rows = [], []
    for table in build_tables(groups, seed):
        n, rows = table.number, table.rows
        stem = f"table{n}-{slug(table.dataset)}-{slug(table.protocol)}" + (
            f"-{slug(table.perturbation)}" if table.perturbation else "")
        (out / f"{stem}.md").write_text(to_markdown(table))
        (out / f"{stem}.tex").write_text(to_latex(table))
        data, cols = csv_rows(table)
        write_csv(out / f"{stem}.csv", data, cols)
        for c in table.columns:
            if c.sig:
                s = c.sig
                ci = s.get("ci95") or [None, None]
                sig_rows.append({"table": n, "metric": c.key, "best": s["best"], "second": s["second"],
                                 "diff": s.get("diff"), "ci95_low": ci[0], "ci95_high": ci[1], "n": s.get("n"),
                                 "significant": s.get("significant"), "method": s.get("method")})
        base = out.name
        arts.append(Artefact("tables", stem, f"Table {n}: {table.dataset} · {table.protocol}"
                             + (f" · {table.perturbation}" if table.perturbation else ""),
                             caption=" ".join(table.notes()),
                             files={"md": f"{base}/{stem}.md", "tex": f"{base}/{stem}.tex", "csv": f"{base}/{stem}.csv"},
                             html=to_html(table),
                             meta={"runs": [str(r.results.path) if r.results.path else None for r in rows],
                                   "labels": [r.label for r in rows]}))
        log(f"table {n}: {len(rows)} runs x {len(table.columns)} metrics ({table.dataset}, {table.protocol})")
    if sig_rows:
        write_csv(out / "significance.csv", sig_rows, SIG_COLUMNS)
        for a in arts:
            a.files["significance"] = f"{out.name}/significance.csv"
    return arts
