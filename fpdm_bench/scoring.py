"""Scoring in the same pass as generation.

The runner calls, per batch, ``paired(generated, batch)`` (per-image metrics against the target,
returned per sample so they go to samples.jsonl) and ``update_set(generated)`` (distribution
metrics such as FID, fed the generated images only). At the end ``finalize(records)`` turns the
per-sample values (in dataset order) into means with bootstrap CIs and adds the set-level metrics.

Images given to the scorer are the uint8-quantised images that are written to samples/, so scores
from a resumed run (which re-reads finished samples from disk) equal an uninterrupted run's.
"""
from __future__ import annotations

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from fpdm_bench.metrics.bootstrap import mean_ci95

HIGHER_IS_BETTER = {"ssim": True, "psnr": True, "mae": False}


class Scorer:
    def __init__(self, protocol: str = "standard", device: str | torch.device = "cpu", dataset=None):
        self.protocol = protocol
        self.device = torch.device(device)
        self.dataset = dataset

    def paired(self, generated: torch.Tensor, batch: dict) -> list[dict[str, float]]:
        gen = generated.to(self.device, torch.float32)
        tgt = batch["target"].to(self.device, torch.float32)
        ssim = structural_similarity_index_measure(gen, tgt, data_range=1.0, reduction="none")
        psnr = peak_signal_noise_ratio(gen, tgt, data_range=1.0, reduction="none", dim=(1, 2, 3))
        mae = (gen - tgt).abs().mean(dim=(1, 2, 3))
        return [
            {"ssim": float(s), "psnr": float(p), "mae": float(m)}
            for s, p, m in zip(ssim.tolist(), psnr.tolist(), mae.tolist())
        ]

    def update_set(self, generated: torch.Tensor) -> None:
        """Feed generated images to the distribution metrics (FID/KID)."""

    def needs_set_pass(self) -> bool:
        """Whether any distribution metric is active (so a resumed run must re-read samples/)."""
        return False

    def finalize(self, records: list[dict]) -> dict:
        out = {}
        for name in HIGHER_IS_BETTER:
            vals = [r["metrics"][name] for r in records if name in r.get("metrics", {})]
            if vals:
                mean, ci = mean_ci95(vals)
                out[name] = {"value": mean, "ci95": ci, "n": len(vals)}
        return out

    def describe(self) -> dict:
        return {"protocol": self.protocol}
