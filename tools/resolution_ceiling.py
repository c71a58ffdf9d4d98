"""How much do the tiny FPDM's resolution and VAE cost? Writes the test targets as a model at that
resolution would at best return them, for `fpdm-bench score`.

    python tools/resolution_ceiling.py --out DIR [--resolution 64x44] [--vae CHECKPOINT/stage2]
                                       [--prior keypoint-warp]
    fpdm-bench score --dataset synthetic --generated DIR --protocol standard

Each target image is squeezed to the resolution (antialiased bicubic) and brought back to the
dataset's size the way the fpdm adapter does; with ``--vae`` it also goes through that stage-2
checkpoint's VAE (encode, decode) at that resolution. With a prior (``--prior``, or the ``--vae``
checkpoint's own ``stage2.prior``) what is squeezed is the residual of the target over the prior,
and the result is prior + residual, as such a model outputs (with no residual threshold). The
scores are ceilings: no model
generating at that resolution (through that VAE, over that prior) can do better on the same pairs.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import fpdm_bench  # noqa: E402,F401  (torchvision shim first)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from fpdm_bench.data import open_dataset  # noqa: E402
from fpdm_bench.images import png_bytes, to_uint8  # noqa: E402
from fpdm_bench.io import atomic_write_bytes  # noqa: E402
from fpdm_bench_reference.stage2.prior import PRIORS, prior_images  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--dataset", default="synthetic")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--resolution", default="64x44", help="HxW the model generates at")
    ap.add_argument("--vae", default=None, help="a stage-2 checkpoint folder whose VAE the images go through")
    ap.add_argument("--prior", default=None, choices=[p for p in PRIORS if p != "none"], help="keypoint-warp: squeeze the residual over it (default: the "
                                                   "--vae checkpoint's prior, else none)")
    args = ap.parse_args()
    res = tuple(int(v) for v in args.resolution.lower().split("x"))
    ds = open_dataset(args.dataset, args.data_root)
    vae = None
    if args.vae:
        from fpdm_bench_reference.stage2.model import Stage2Model

        vae = Stage2Model.from_pretrained(args.vae)
        if tuple(vae.resolution) != res:
            raise SystemExit(f"{args.vae} generates at {vae.resolution}, not {res}")
        if args.prior not in (None, vae.prior):
            raise SystemExit(f"{args.vae} has prior {vae.prior!r}, not {args.prior!r}")
    prior_kind = vae.prior if vae is not None else (args.prior or "none")
    args.out.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(ds.pairs), 16):
        recs = ds.pairs[start:start + 16]
        x = torch.stack([ds.load_image(r.target) for r in recs])
        if prior_kind != "none":
            kp = lambda names: torch.stack([torch.from_numpy(ds.keypoints(n)) for n in names])  # noqa: E731
            prior = prior_images(prior_kind, torch.stack([ds.load_image(r.source) for r in recs]),
                                 kp([r.source for r in recs]), kp([r.target for r in recs]))
            if vae is not None:
                with torch.no_grad():
                    back = vae.decode_latents(vae.encode_latents(x, sample=False, prior=prior), prior)
            else:
                small = F.interpolate(x - prior, size=res, mode="bicubic", antialias=True, align_corners=False)
                back = prior + F.interpolate(small, size=x.shape[-2:], mode="bicubic", align_corners=False)
        else:
            small = F.interpolate(x, size=res, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
            if vae is not None:
                with torch.no_grad():
                    small = vae.decode_latents(vae.encode_latents(small)).clamp(0, 1)
            back = F.interpolate(small, size=x.shape[-2:], mode="bicubic", antialias=True, align_corners=False)
        for r, arr in zip(recs, to_uint8(back.clamp(0, 1))):
            atomic_write_bytes(args.out / f"{r.pair_id}.png", png_bytes(arr))
    print(f"{args.out}: {len(ds.pairs)} targets at {res[0]}x{res[1]}{' through the VAE' if vae else ''}"
          f"{f' over the {prior_kind} prior' if prior_kind != 'none' else ''}")


if __name__ == "__main__":
    main()
