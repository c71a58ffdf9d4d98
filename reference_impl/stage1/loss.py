"""Stage-1 objective: InfoNCE between target-image embeddings and fusion embeddings, plus a small L1.

As in the official training step (``combiner_fusion_info_nce_loss`` with ``conbiner_self_learning``):

- rows = target-image embeddings, columns = fusion embeddings, cosine similarity / temperature;
  the positive of row i is column i, every other column is a negative (cross-entropy per row).
- "source-enhanced" batch: the source embeddings are appended both as extra rows and as extra
  columns, so the batch is 2B x 2B. Source row i's positive is source column i; and, the point of
  it, each target row now also sees its own source as a negative, which keeps the fusion from
  collapsing onto the source.
- L1 = mean |source - fusion| over the (extended) batch, weighted 1e-4.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce_loss(target: torch.Tensor, fusion: torch.Tensor, source: torch.Tensor | None = None,
                  temperature: float = 0.07, l1_weight: float = 1e-4, source_enhanced: bool = True) -> tuple[torch.Tensor, dict]:
    """Loss (scalar tensor) and float stats {'loss', 'nce', 'l1', 'acc_top1'} for [B, D] embeddings.

    source is needed for the L1 term and the source-enhanced extension; pass None to use neither.
    """
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    if source is not None and source_enhanced:
        target = torch.cat([target, source], 0)
        fusion = torch.cat([fusion, source], 0)
        source = torch.cat([source, source], 0)
    logits = F.normalize(target, dim=-1) @ F.normalize(fusion, dim=-1).T / temperature
    labels = torch.arange(logits.shape[0], device=logits.device)
    nce = F.cross_entropy(logits, labels)
    l1 = (source - fusion).abs().mean() if source is not None else logits.new_zeros(())
    loss = nce + l1_weight * l1
    with torch.no_grad():
        acc = (logits.argmax(dim=1) == labels).float().mean()
    stats = {"loss": float(loss.detach()), "nce": float(nce.detach()), "l1": float(l1.detach()), "acc_top1": float(acc)}
    return loss, stats
