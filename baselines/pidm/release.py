"""PIDM's official checkpoint, as `fpdm-bench weights fetch pidm --out DIR` gets it (registered in the
``fpdm_bench.releases`` entry points; the steps are in ``fpdm_bench/release_fetch.py``).

Where it is (read in github.com/ankanbhunia/PIDM): README.md, section "Inference", links the
pretrained model as Google Drive file 1WkV5Pn-_fBdiZlvVHHx_S97YESBkx4lD, to be placed in
``checkpoints/``; PIDM_demo.ipynb fetches the same id with ``gdown`` and moves the result to
``checkpoints/last.pt``, the path predict.py loads. No size or hash is published.
"""
from __future__ import annotations

from pathlib import Path

from fpdm_bench.releases import Release, ReleaseFile


def convert(files: dict[str, Path], parts: dict[str, Path], out: Path) -> dict:
    """``fpdm-bench pidm convert`` (the used ``ema`` weights as safetensors; last.pt is read with the
    restricted unpickler and loaded strictly, so a damaged or foreign file stops here)."""
    from fpdm_bench_baselines.pidm.convert import convert as convert_last_pt

    meta = convert_last_pt(files["last.pt"], out, weights="ema")
    return {"weights": "ema", "unused_official_keys_dropped": meta["converted_from"]["unused_official_keys_dropped"]}


RELEASE = Release(
    name="pidm", model="pidm",
    summary="PIDM's DeepFashion last.pt (Google Drive)",
    where="github.com/ankanbhunia/PIDM: README.md (Inference) and PIDM_demo.ipynb (gdown <id> -> checkpoints/last.pt)",
    files=(ReleaseFile("last.pt", drive_id="1WkV5Pn-_fBdiZlvVHHx_S97YESBkx4lD",
                       note="README.md 'Download the pretrained model'; saved as last.pt by PIDM_demo.ipynb"),),
    parts=(),
    convert=convert,
    converter="fpdm_bench_baselines.pidm.convert.convert (fpdm-bench pidm convert; ema weights)",
    run="fpdm-bench run --model pidm --checkpoint {out} --dataset deepfashion --protocol pidm --out runs/pidm",
)
