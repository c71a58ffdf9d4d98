"""Scoring under a named protocol, in the same pass as generation (or over folders of images).

The runner calls, per batch, ``paired(generated, batch)`` (per-image metrics against the target,
returned per sample so they go to samples.jsonl) and ``update_set(generated)`` (distribution
metrics: FID/KID, fed the generated images only). At the end ``finalize(records)`` turns the
per-sample values (in dataset order) into means with bootstrap CIs and adds the set-level metrics
against the reference statistics of ``dataset.reference_images(split)`` (cached, see refstats).

Images given to the scorer are the uint8-quantised images that are written to samples/, so scores
from a resumed run (which re-reads finished samples from disk) equal an uninterrupted run's. Inception
features are computed in fixed chunks of images counted from the start (not per caller batch), so
FID/KID do not depend on the batch size either.

A metric whose weights are missing is reported as ``{"value": None, "unavailable": "<why>"}``.
"""
from __future__ import annotations

import torch

from fpdm_bench.errors import BenchError, WeightsMissing
from fpdm_bench.metrics.base import summarize
from fpdm_bench.protocols import get_protocol
from fpdm_bench.protocols.apply import prepare

HIGHER_IS_BETTER = {"ssim": True, "ssim_256": True, "ssim_gauss": True, "psnr": True, "mae": False,
                    "lpips": False, "fid": False, "kid": False}
FEATURE_CHUNK = 16  # images per Inception call, aligned on the running image count


class Scorer:
    """One protocol's metrics over one set of generated images.

    ``dataset`` gives the reference images and the default eval size; ``reference_paths`` and
    ``size`` replace them for folder scoring. ``extractor`` / ``lpips_model`` replace the networks
    (tests); ``weights`` maps weight names (see fpdm_bench.weights) to explicit file paths.
    """

    def __init__(self, protocol="standard", device="cpu", dataset=None, *, reference_paths=None,
                 size=None, extractor=None, lpips_model=None, weights=None, cache=None, log=None):
        from fpdm_bench.metrics.mae import MAE
        from fpdm_bench.metrics.psnr import PSNR
        from fpdm_bench.metrics.ssim import SSIM

        self.protocol = get_protocol(protocol)
        self.device = torch.device(device)
        self.dataset = dataset
        self.reference_paths = reference_paths
        self.cache = cache
        self.log = log
        self.weights = dict(weights or {})
        p = self.protocol
        self.size = tuple(p.eval_size or size or (dataset.size if dataset is not None else ()) or ()) or None
        self.unavailable: dict[str, str] = {}
        self.paired_metrics = []
        for name in p.metrics:
            if name in p.ssim_variants or name.startswith("ssim"):
                self.paired_metrics.append(SSIM(p.ssim_variants.get(name, "uniform51"), name))
        for name in p.ssim_variants:  # variants named only in ssim_variants
            if name not in p.metrics:
                self.paired_metrics.append(SSIM(p.ssim_variants[name], name))
        if "psnr" in p.metrics:
            self.paired_metrics.append(PSNR())
        if "mae" in p.metrics:
            self.paired_metrics.append(MAE(p.mae_variant))
        if "lpips" in p.metrics:
            self._setup_lpips(lpips_model)
        self.pose = None
        if "pose" in p.metrics:
            self._setup_pose()
        self.extractor = None
        self.fid = self.kid = None
        if "fid" in p.metrics or "kid" in p.metrics:
            self._setup_set_metrics(extractor)
        self._buffer: list[tuple[str, torch.Tensor]] = []
        self._seen = 0
        self._ssim_window: dict[str, int] = {}
        self._reference_info: dict | None = None

    # --- set-up -------------------------------------------------------------------------------
    def _setup_lpips(self, model) -> None:
        from fpdm_bench.metrics import lpips as lp

        try:
            model = model or lp.build(self.protocol.lpips_net, self.weights.get(lp.NETS[self.protocol.lpips_net]),
                                      self.device)
        except WeightsMissing as e:
            self.unavailable["lpips"] = str(e)
            return
        self.paired_metrics.append(lp.LPIPS(model, self.protocol.lpips_net))

    def _setup_pose(self) -> None:
        try:
            from fpdm_bench.metrics.pose import PoseFidelity
        except ImportError as e:
            self.unavailable["pose"] = f"pose metric unavailable: {e}"
            return
        ok, reason = PoseFidelity.available()
        if ok:
            self.pose = PoseFidelity()
        else:
            self.unavailable["pose"] = reason

    def _setup_set_metrics(self, extractor) -> None:
        from fpdm_bench.metrics import inception
        from fpdm_bench.metrics.fid import FID
        from fpdm_bench.metrics.kid import KID

        p = self.protocol
        try:
            self.extractor = extractor or inception.build(p.fid_backbone, self.weights.get(p.fid_backbone), self.device)
        except WeightsMissing as e:
            for name in ("fid", "kid"):
                if name in p.metrics:
                    self.unavailable[name] = str(e)
            return
        if "fid" in p.metrics:
            self.fid = FID(dims=self._feature_dim(), replicates=p.fid_replicates, chunk=p.fid_drop_remainder or 64,
                           drop_remainder=bool(p.fid_drop_remainder))
        if "kid" in p.metrics:
            self.kid = KID(subsets=p.kid_subsets, subset_size=p.kid_subset_size)

    def _feature_dim(self) -> int:
        return int(getattr(self.extractor, "dims", 2048))

    # --- per batch ----------------------------------------------------------------------------
    def _eval_size(self, images: torch.Tensor, target: torch.Tensor | None = None) -> tuple[int, int]:
        if self.size:
            return self.size
        return tuple((target if target is not None else images).shape[-2:])

    def paired(self, generated: torch.Tensor, batch: dict) -> list[dict[str, float]]:
        """Per-sample paired metrics of generated [B,3,H,W] vs batch["target"], at the eval size."""
        tgt_raw = batch["target"]
        size = self._eval_size(generated, tgt_raw)
        gen = prepare(generated, self.protocol, size, generated=True)
        tgt = prepare(tgt_raw, self.protocol, size, generated=False)
        out = [dict() for _ in range(len(gen))]
        for m in self.paired_metrics:
            if hasattr(m, "variant") and m.name.startswith("ssim"):
                from fpdm_bench.metrics.ssim import effective_window, window_size

                win = effective_window(m.variant, size)
                if win != window_size(m.variant):
                    self._ssim_window[m.name] = win
            for d, v in zip(out, m.update(gen, tgt)):
                d[m.name] = v
        if self.pose is not None:
            for d, v in zip(out, self.pose.per_sample(generated, batch["target_kp"])):
                d.update(v)
        return out

    def update_set(self, generated: torch.Tensor, ids: list[str] | None = None) -> None:
        """Feed generated images to the distribution metrics (FID/KID)."""
        if self.extractor is None or (self.fid is None and self.kid is None):
            return
        gen = prepare(generated, self.protocol, self._eval_size(generated), generated=True)
        for i, im in enumerate(gen):
            self._buffer.append((ids[i] if ids else str(self._seen), im))
            self._seen += 1
        while len(self._buffer) >= FEATURE_CHUNK:
            self._extract(self._buffer[:FEATURE_CHUNK])
            self._buffer = self._buffer[FEATURE_CHUNK:]

    def _extract(self, items) -> None:
        if not items:
            return
        imgs = torch.stack([im for _, im in items]).to(self.device)
        feats = self.extractor(imgs).double().cpu().numpy()
        if self.fid is not None:
            self.fid.update(feats, [i for i, _ in items])
        if self.kid is not None:
            self.kid.update(feats)

    def needs_set_pass(self) -> bool:
        """Whether any distribution metric is active (so a resumed run must re-read samples/)."""
        return self.extractor is not None and (self.fid is not None or self.kid is not None)

    # --- end ----------------------------------------------------------------------------------
    def finalize(self, records: list[dict]) -> dict:
        """Means + bootstrap CIs of the per-sample metrics in ``records`` (dataset order) and the
        set-level metrics; unavailable metrics carry the reason instead of a value."""
        out: dict[str, dict] = {}
        names = [m.name for m in self.paired_metrics]
        if self.pose is not None:
            names += sorted({k for r in records for k in r.get("metrics", {}) if k not in names
                             and k not in HIGHER_IS_BETTER})
        for name in names:
            vals = [r["metrics"][name] for r in records if name in r.get("metrics", {})]
            if not vals:
                continue
            dropped = 0
            if name == "lpips" and self.protocol.lpips_drop_remainder:
                dropped = len(vals) % self.protocol.lpips_drop_remainder
                vals = vals[: len(vals) - dropped]
            out[name] = summarize(vals)
            if dropped:
                out[name]["dropped"] = dropped
        if self.needs_set_pass():
            self._extract(self._buffer)
            self._buffer = []
            out.update(self._set_metrics())
        for name, reason in self.unavailable.items():
            out[name] = {"value": None, "unavailable": reason}
        return out

    def _reference_paths(self):
        if self.reference_paths is not None:
            return list(self.reference_paths), "given"
        if self.dataset is None:
            raise BenchError("FID/KID need reference images: give a dataset or reference_paths")
        split = self.protocol.fid_reference_split or self.dataset.fid_reference_split
        return list(self.dataset.reference_images(split)), split

    def _set_metrics(self) -> dict:
        from fpdm_bench.refstats import reference_stats

        paths, split = self._reference_paths()
        ref = reference_stats(paths, self.protocol, self.extractor, self.size, cache=self.cache, log=self.log)
        self._reference_info = {"split": split, "n_files": len(paths), "n_used": ref.n, "dropped": ref.dropped,
                                "cache_key": ref.key, "from_cache": ref.from_cache}
        out = {}
        if self.fid is not None:
            self.fid.finish()
            out["fid"] = self.fid.compute(ref.mu, ref.sigma, ref.factor)
        if self.kid is not None:
            if self.fid is not None and self.fid.dropped:  # same images as FID when a remainder is dropped
                self.kid.drop_last(self.fid.dropped)
            out["kid"] = self.kid.compute(ref.kid_features)
        return out

    def describe(self) -> dict:
        """The full protocol record plus what this run actually used (for results.json)."""
        d = {"name": self.protocol.name, "protocol": self.protocol.name, **self.protocol.to_dict(),
             "eval_size_used": list(self.size) if self.size else "native (target size)"}
        if self.extractor is not None and hasattr(self.extractor, "describe"):
            d["fid_network"] = self.extractor.describe()
        lp = next((m for m in self.paired_metrics if m.name == "lpips"), None)
        if lp is not None:
            d["lpips_weights"] = getattr(lp.model, "weights_file", None)
        if self._ssim_window:
            d["ssim_window_clipped"] = {k: f"{v} (images smaller than the window)" for k, v in self._ssim_window.items()}
        if self._reference_info:
            d["reference"] = self._reference_info
        if self.unavailable:
            d["unavailable"] = dict(self.unavailable)
        return d

