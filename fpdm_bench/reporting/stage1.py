"""The stage-1 similarity-ranking figure, from an evaluation written by `fpdm-bench eval stage1`
(the reference FPDM's fusion-embedding ablation: for every test pair the candidate images are ranked
by cosine similarity to the fusion, source or pose query embedding).

With the per-query ranks (``stage1_ranks.csv`` beside ``stage1_eval.json``, written by the current
evaluation): left, the cumulative top-k accuracy of each query kind (log k); right, histograms of
the cosine similarity to the true target (shared bins). An evaluation without that file (written by
an older version) gives what its summary allows: top-1 and top-5 accuracy per query kind as bars.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from fpdm_bench.data.base import read_json
from fpdm_bench.errors import DataError
from fpdm_bench.io import read_csv, write_csv
from fpdm_bench.reporting._common import WIDTH_2COL, Artefact, new_figure, save_figure, style

QUERY_COLOURS = {"fusion": "#d62728", "source": "#1f77b4", "pose": "#7f7f7f"}
CURVE_COLUMNS = ["query", "k", "top_k_accuracy"]
HIST_COLUMNS = ["query", "bin_low", "bin_high", "count"]
SUMMARY_COLUMNS = ["query", "top1", "top5", "mean_rank", "median_rank", "mean_cosine_to_target"]


def resolve(path) -> Path:
    path = Path(path)
    f = path / "stage1_eval.json" if path.is_dir() else path
    if not f.is_file():
        raise DataError(path, "no stage1_eval.json here (written by `fpdm-bench eval stage1 --out DIR`)")
    return f


def load(path) -> tuple[dict, list[dict] | None]:
    f = resolve(path)
    summary = read_json(f, "stage-1 evaluation")
    if not isinstance(summary, dict) or "queries" not in summary:
        raise DataError(f, "no 'queries': not a stage-1 evaluation")
    ranks_file = f.parent / "stage1_ranks.csv"
    ranks = None
    if ranks_file.is_file():
        ranks = [{"pair_id": r["pair_id"], "query": r["query"], "rank": int(r["rank"]), "cosine": float(r["cosine"])}
                 for r in read_csv(ranks_file)]
    return summary, ranks


def figure_data(summary: dict, ranks: list[dict] | None, bins: int = 30) -> dict[str, list[dict]]:
    queries = list(summary["queries"])
    if ranks is None:
        return {"summary": [{"query": q, **{k: summary["queries"][q].get(k) for k in SUMMARY_COLUMNS[1:]}}
                            for q in queries]}
    n_cand = int(summary["n_candidates"])
    curves, hist = [], []
    per = {q: np.array([r["rank"] for r in ranks if r["query"] == q]) for q in queries}
    sims = {q: np.array([r["cosine"] for r in ranks if r["query"] == q]) for q in queries}
    for q in queries:
        for k in range(1, n_cand + 1):
            curves.append({"query": q, "k": k, "top_k_accuracy": float(np.mean(per[q] <= k))})
    allv = np.concatenate([sims[q] for q in queries])
    edges = np.linspace(float(allv.min()), float(allv.max()) + 1e-6, bins + 1)
    for q in queries:
        counts, _ = np.histogram(sims[q], bins=edges)
        hist += [{"query": q, "bin_low": float(lo), "bin_high": float(hi), "count": int(c)}
                 for lo, hi, c in zip(edges[:-1], edges[1:], counts)]
    return {"curves": curves, "hist": hist}


def build_figure(data: dict[str, list[dict]], summary: dict):
    with style():
        if "summary" in data:
            fig = new_figure(WIDTH_2COL / 2 + 0.3, 2.4)
            ax = fig.subplots()
            rows = data["summary"]
            x = np.arange(len(rows))
            ax.bar(x - 0.2, [r["top1"] for r in rows], 0.4, label="top-1", color="#4c72b0")
            ax.bar(x + 0.2, [r["top5"] for r in rows], 0.4, label="top-5", color="#dd8452")
            ax.set_xticks(x)
            ax.set_xticklabels([r["query"] for r in rows])
            ax.axhline(1 / summary["n_candidates"], color="black", linestyle=":", linewidth=0.8, label="chance (top-1)")
            ax.set_ylabel("retrieval accuracy of the true target")
            ax.set_ylim(0, 1)
            ax.legend()
            return fig
        fig = new_figure(WIDTH_2COL, 2.5)
        ax1, ax2 = fig.subplots(1, 2)
        queries = list(dict.fromkeys(r["query"] for r in data["curves"]))
        for q in queries:
            pts = [r for r in data["curves"] if r["query"] == q]
            ax1.plot([r["k"] for r in pts], [r["top_k_accuracy"] for r in pts], label=q,
                     color=QUERY_COLOURS.get(q), linewidth=1.2)
            hb = [r for r in data["hist"] if r["query"] == q]
            ax2.stairs([r["count"] for r in hb], [hb[0]["bin_low"]] + [r["bin_high"] for r in hb], fill=True, alpha=0.45,
                       color=QUERY_COLOURS.get(q), label=q)
        ax1.set_xscale("log")
        from matplotlib.ticker import FuncFormatter

        ax1.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax1.axhline(1 / summary["n_candidates"], color="black", linestyle=":", linewidth=0.7)
        ax1.set_xlabel("k (rank of the true target)")
        ax1.set_ylabel("top-k accuracy")
        ax1.set_title(f"retrieval of the true target among {summary['n_candidates']} images")
        ax1.legend()
        ax2.set_xlabel("cosine similarity to the true target")
        ax2.set_ylabel("queries")
        ax2.set_title("similarity of the query to the target embedding")
        ax2.legend()
    return fig


def write_stage1(path, root: Path, log=print) -> list[Artefact]:
    out = Path(root) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    summary, ranks = load(path)
    data = figure_data(summary, ranks)
    files, size = save_figure(build_figure(data, summary), out, "stage1-ranking")
    if "summary" in data:
        files["csv"] = write_csv(out / "stage1-ranking.csv", data["summary"], SUMMARY_COLUMNS)
    else:
        files["csv"] = write_csv(out / "stage1-ranking-topk.csv", data["curves"], CURVE_COLUMNS)
        files["csv_hist"] = write_csv(out / "stage1-ranking-hist.csv", data["hist"], HIST_COLUMNS)
    ds = summary.get("dataset", {})
    table = [{"query": q, **{k: summary["queries"][q].get(k) for k in SUMMARY_COLUMNS[1:]}} for q in summary["queries"]]
    files["summary_csv"] = write_csv(out / "stage1-summary.csv", table, SUMMARY_COLUMNS)
    caption = (f"Stage-1 fusion embedding: for each of the {summary.get('n_queries')} test pairs of "
               f"{ds.get('name', '?')}:{ds.get('split', '?')}, the {summary.get('n_candidates')} candidate images "
               f"({summary.get('candidate_set', 'unique targets')}) ranked by cosine similarity to the fusion "
               "(source image + target pose), source-only or pose-only query embedding. "
               + ("Left: cumulative top-k accuracy; right: similarity to the true target."
                  if ranks is not None else "Top-1/top-5 accuracy from stage1_eval.json (no stage1_ranks.csv: "
                                            "rerun `fpdm-bench eval stage1` for the full figure).")
               + f" Combiner gate mean {summary.get('gate_mean', float('nan')):.3f}.")
    log(f"stage-1 figure from {resolve(path)}" + ("" if ranks is not None else " (summary only)"))
    return [Artefact("stage1", "stage1-ranking", "Stage-1 similarity ranking", caption,
                     {k: f"figures/{v}" for k, v in files.items()}, size, meta={"summary": table,
                                                                                 "source": str(resolve(path))})]
