"""Stage-1 ablation: does the fusion embedding find the target image better than its inputs?

For every test pair, three query embeddings are ranked against the candidate set by cosine
similarity:

- fusion: the Combiner output for (source image, target pose);
- source: the tower embedding of the source image alone;
- pose:   the tower embedding of the target skeleton image alone.

Candidates = the unique target images of the split (tower embeddings), minus the query's own
source image (it is never the answer, and a source query would find itself trivially). The true
target's rank is the number of candidates at least as similar as it (ties count against). Reported per query
kind: top-1 and top-5 accuracy, mean and median rank, mean cosine similarity to the true target.

Outputs in out_dir: ``stage1_eval.json``, ``stage1_eval.md`` (table), ``stage1_ranking.png``
(left: cumulative top-k accuracy curves; right: histograms of the cosine similarity to the true
target, the picture of the paper's similarity-ranking figure) and ``stage1_ranks.csv`` (per pair and
query kind: the true target's rank and cosine similarity, what `fpdm-bench report --stage1` draws
the figure from).
"""
from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import torch
import torch.nn.functional as F

from fpdm_bench.io import atomic_write_text, write_csv
from fpdm_bench_reference.stage1.model import FusionModel

QUERIES = ("fusion", "source", "pose")


@torch.no_grad()
def compute_embeddings(model: FusionModel, dataset, batch_size: int = 32) -> dict:
    """Normalised embeddings: per pair fusion/source/pose [N, D], candidates [M, D], and names."""
    device = next(model.parameters()).device
    model.eval()
    size = tuple(dataset.size)
    candidates = sorted({r.target for r in dataset.pairs})
    cand_index = {n: i for i, n in enumerate(candidates)}
    image_names = sorted(set(candidates) | {r.source for r in dataset.pairs})

    img_emb: dict[str, torch.Tensor] = {}
    for i in range(0, len(image_names), batch_size):
        names = image_names[i:i + batch_size]
        x = torch.stack([dataset.load_image(n) for n in names]).to(device)
        for n, e in zip(names, model.embed_images(x).cpu()):
            img_emb[n] = e

    pose_emb: dict[str, torch.Tensor] = {}
    for i in range(0, len(candidates), batch_size):
        names = candidates[i:i + batch_size]
        kp = torch.stack([torch.from_numpy(dataset.keypoints(n)) for n in names]).to(device)
        for n, e in zip(names, model.embed_pose(kp, size).cpu()):
            pose_emb[n] = e

    src = torch.stack([img_emb[r.source] for r in dataset.pairs])
    pose = torch.stack([pose_emb[r.target] for r in dataset.pairs])
    fusion, gates = [], []
    for i in range(0, len(src), batch_size):
        f, g = model.fuse_embeddings(src[i:i + batch_size].to(device), pose[i:i + batch_size].to(device), return_gate=True)
        fusion.append(f.cpu())
        gates.append(g.cpu())
    return {
        "fusion": F.normalize(torch.cat(fusion), dim=-1),
        "source": F.normalize(src, dim=-1),
        "pose": F.normalize(pose, dim=-1),
        "gate": torch.cat(gates).squeeze(-1),
        "candidates": F.normalize(torch.stack([img_emb[n] for n in candidates]), dim=-1),
        "candidate_names": candidates,
        "target_index": torch.tensor([cand_index[r.target] for r in dataset.pairs]),
        "source_index": torch.tensor([cand_index.get(r.source, -1) for r in dataset.pairs]),
    }


def ranks_of_targets(queries: torch.Tensor, candidates: torch.Tensor, target_index: torch.Tensor,
                     exclude_index: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rank (1 = best; ties count against) of each query's true candidate, and its cosine similarity.

    queries [N, D] and candidates [M, D] must be L2-normalised. exclude_index [N] (or -1) removes
    one candidate per query from the competition (its own source image).
    """
    sim = queries @ candidates.T  # [N, M]
    rows = torch.arange(len(queries))
    true = sim[rows, target_index]
    # ties count against the query (the true target itself is one of the >=), so a degenerate
    # model with identical embeddings ranks every target last, not first
    at_least = sim >= true[:, None]
    if exclude_index is not None:
        ok = (exclude_index >= 0) & (exclude_index != target_index)
        at_least[rows[ok], exclude_index[ok]] = False
    return at_least.sum(1).numpy(), true.numpy()


def summarise(ranks: np.ndarray, sims: np.ndarray) -> dict:
    return {"top1": float(np.mean(ranks <= 1)), "top5": float(np.mean(ranks <= 5)),
            "mean_rank": float(np.mean(ranks)), "median_rank": float(np.median(ranks)),
            "mean_cosine_to_target": float(np.mean(sims))}


def _markdown(results: dict) -> str:
    lines = [f"Stage-1 retrieval of the true target among {results['n_candidates']} candidate images "
             f"({results['n_queries']} queries, {results['dataset']['name']}:{results['dataset']['split']})", "",
             "| query | top-1 | top-5 | mean rank | median rank | cos(query, target) |",
             "|---|---:|---:|---:|---:|---:|"]
    for q in QUERIES:
        r = results["queries"][q]
        lines.append(f"| {q} | {r['top1']:.3f} | {r['top5']:.3f} | {r['mean_rank']:.2f} | {r['median_rank']:.1f} | "
                     f"{r['mean_cosine_to_target']:.3f} |")
    lines += ["", f"Combiner gate (weight of the pose embedding): mean {results['gate_mean']:.3f}, "
                  f"std {results['gate_std']:.3f}.", ""]
    return "\n".join(lines)


def _figure(path: Path, ranks: dict, sims: dict, n_candidates: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ks = np.arange(1, n_candidates + 1)
    all_sims = np.concatenate([sims[q] for q in QUERIES])
    bins = np.linspace(float(all_sims.min()), float(all_sims.max()) + 1e-6, 31)  # shared bins
    for q in QUERIES:
        ax1.plot(ks, [np.mean(ranks[q] <= k) for k in ks], label=q)
        ax2.hist(sims[q], bins=bins, alpha=0.55, label=q)
    ax1.set_xscale("log")
    ax1.set_xlabel("k (rank of the true target)")
    ax1.set_ylabel("top-k accuracy")
    ax1.set_title("retrieval of the true target")
    ax1.grid(alpha=0.3)
    ax1.legend()
    ax2.set_xlabel("cosine similarity to the true target")
    ax2.set_ylabel("queries")
    ax2.set_title("similarity to the target embedding")
    ax2.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def evaluate_stage1(model: FusionModel, dataset, out_dir: str | Path, batch_size: int = 32) -> dict:
    """Rank every candidate target by cosine similarity to the fusion / source / pose embeddings.

    Writes stage1_eval.json, stage1_eval.md, stage1_ranking.png and stage1_ranks.csv to out_dir;
    returns the results.
    """
    out_dir = Path(out_dir)
    emb = compute_embeddings(model, dataset, batch_size=batch_size)
    ranks, sims = {}, {}
    for q in QUERIES:
        ranks[q], sims[q] = ranks_of_targets(emb[q], emb["candidates"], emb["target_index"], emb["source_index"])
    n_cand = len(emb["candidate_names"])
    describe = dataset.describe() if hasattr(dataset, "describe") else {"name": "?", "split": "?"}
    results = {
        "dataset": describe,
        "n_queries": len(dataset.pairs),
        "n_candidates": n_cand,
        "candidate_set": "unique target images of the split, excluding the query's own source image",
        "queries": {q: summarise(ranks[q], sims[q]) for q in QUERIES},
        "gate_mean": float(emb["gate"].mean()),
        "gate_std": float(emb["gate"].std()) if len(emb["gate"]) > 1 else 0.0,
        "model": {"parameters": sum(p.numel() for p in model.parameters()), "embed_dim": model.embed_dim,
                  "image_size": model.image_size},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "stage1_eval.json", json.dumps(results, indent=2) + "\n")
    atomic_write_text(out_dir / "stage1_eval.md", _markdown(results))
    ids = [r.pair_id for r in dataset.pairs]
    write_csv(out_dir / "stage1_ranks.csv", [{"pair_id": p, "query": q, "rank": int(r), "cosine": float(c)}
                                             for q in QUERIES for p, r, c in zip(ids, ranks[q], sims[q])],
              ["pair_id", "query", "rank", "cosine"])
    _figure(out_dir / "stage1_ranking.png", ranks, sims, n_cand)
    return results


@click.command("stage1")
@click.option("--checkpoint", required=True, type=click.Path(exists=True, file_okay=False),
              help="directory written by train stage1 (config.json + model.safetensors)")
@click.option("--dataset", default="synthetic", show_default=True)
@click.option("--data-root", default=None)
@click.option("--split", default="test", show_default=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
@click.option("--device", default="cpu", show_default=True)
@click.option("--batch-size", default=32, show_default=True, type=int)
def eval_stage1_command(checkpoint, dataset, data_root, split, out_dir, device, batch_size):
    """Stage-1 ablation: top-1/top-5 retrieval of the target by fusion vs source vs pose embeddings."""
    from fpdm_bench.data import open_dataset

    model = FusionModel.from_pretrained(checkpoint, device=device)
    ds = open_dataset(dataset, root=data_root, split=split)
    results = evaluate_stage1(model, ds, out_dir, batch_size=batch_size)
    click.echo(_markdown(results))
