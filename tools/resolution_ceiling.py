"""How much do the tiny FPDM's resolution and VAE cost? Writes the test targets as a model at that
resolution would at best return them, for `fpdm-bench score`.

    python tools/resolution_ceiling.py --out DIR [--resolution 64x44] [--vae CHECKPOINT/stage2]
    fpdm-bench score --dataset synthetic --generated DIR --protocol standard

Each target image is squeezed to the resolution (antialiased bicubic) and brought back to the
dataset's size the way the fpdm adapter does; with ``--vae`` it also goes through that stage-2
checkpoint's VAE (encode, decode) at that resolution. The scores are ceilings: no model generating
at that resolution (through that VAE) can do better on the same pairs.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--dataset", default="synthetic")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--resolution", default="64x44", help="HxW the model generates at")
    ap.add_argument("--vae", default=None, help="a stage-2 checkpoint folder whose VAE the images go through")
    args = ap.parse_args()
    res = tuple(int(v) for v in args.resolution.lower().split("x"))
    ds = open_dataset(args.dataset, args.data_root)
    vae = None
    if args.vae:
        from reference_impl.stage2.model import Stage2Model

        vae = Stage2Model.from_pretrained(args.vae)
        if tuple(vae.resolution) != res:
            raise SystemExit(f"{args.vae} generates at {vae.resolution}, not {res}")
    args.out.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(ds.pairs), 16):
        recs = ds.pairs[start:start + 16]
        x = torch.stack([ds.load_image(r.target) for r in recs])
        small = F.interpolate(x, size=res, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
        if vae is not None:
            with torch.no_grad():
                small = vae.decode_latents(vae.encode_latents(small)).clamp(0, 1)
        back = F.interpolate(small, size=x.shape[-2:], mode="bicubic", antialias=True, align_corners=False)
        for r, arr in zip(recs, to_uint8(back.clamp(0, 1))):
            atomic_write_bytes(args.out / f"{r.pair_id}.png", png_bytes(arr))
    print(f"{args.out}: {len(ds.pairs)} targets at {res[0]}x{res[1]}{' through the VAE' if vae else ''}")


if __name__ == "__main__":
    main()
