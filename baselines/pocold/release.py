"""The parts a PoCoLD pipeline folder needs beside its trained networks, as `fpdm-bench weights fetch
pocold-parts --out DIR` gets them (registered in the ``fpdm_bench.releases`` entry points; the steps
are in ``fpdm_bench/release_fetch.py``).

PoCoLD's authors released code but no weights (github.com/BrandonHanx/PoCoLD at c5c7bb7, its one
commit, has no README and no weight link; docs/models/pocold.md). What its ``train.py`` takes from
the Hub and saves into the pipeline folder (docs/models/pocold.md, issue-14 table):

- ``vae/``: ``AutoencoderKL.from_pretrained("stabilityai/sd-vae-ft-mse")``, frozen (``train.py:402-419``);
- ``scheduler/``: SD 1.5's ``scheduler_config.json`` (PNDM; ``--pretrained_model_name_or_path``,
  ``run.sh``: runwayml/stable-diffusion-v1-5, withdrawn from the Hub in 2024, so it is fetched from
  the community-maintained copy ``stable-diffusion-v1-5/stable-diffusion-v1-5``).

The result is that half of a pipeline folder; the other half (``unet/``, ``rie/``,
``channel_mapper/``) comes from a PoCoLD trained with the official ``train.py``.
"""
from __future__ import annotations

import json
from pathlib import Path

from fpdm_bench.errors import BenchError
from fpdm_bench.releases import HFPart, Release, place_part

VAE = HFPart("vae", "stabilityai/sd-vae-ft-mse", ("config.json", "diffusion_pytorch_model.safetensors"),
             note="train.py:402-419 (frozen VAE)")
SCHEDULER = HFPart("scheduler", "stable-diffusion-v1-5/stable-diffusion-v1-5", ("scheduler/scheduler_config.json",),
                   official_repo="runwayml/stable-diffusion-v1-5",
                   note="SD 1.5's PNDM config (train.py:1039-1046); the official repo was withdrawn in 2024")


def convert(files: dict[str, Path], parts: dict[str, Path], out: Path) -> dict:
    """``DIR/vae/`` and ``DIR/scheduler/`` as the official pipeline folder holds them, each loaded as
    ``--model pocold`` will load it (a damaged file is refused)."""
    from diffusers import PNDMScheduler

    from fpdm_bench.modeling.patch_pca import load_autoencoder

    place_part(parts["vae"], VAE, out / "vae")
    place_part(parts["scheduler"], SCHEDULER, out)
    try:
        vae = load_autoencoder(out / "vae")
    except Exception as e:  # noqa: BLE001  (diffusers / safetensors errors on a damaged file)
        raise BenchError(f"{out / 'vae'}: not a loadable VAE ({type(e).__name__}: {str(e).splitlines()[0][:160]})") from None
    sched = out / "scheduler" / "scheduler_config.json"
    try:
        cfg = json.loads(sched.read_text())
        if cfg.get("_class_name") != "PNDMScheduler":
            raise ValueError(f"_class_name {cfg.get('_class_name')!r}, not PNDMScheduler")
        PNDMScheduler.from_config({k: v for k, v in cfg.items() if not k.startswith("_")})
    except (ValueError, TypeError) as e:  # JSONDecodeError is a ValueError
        raise BenchError(f"{sched}: not SD 1.5's PNDM scheduler config ({e})") from None
    return {"vae_parameters": sum(p.numel() for p in vae.parameters()), "scheduler": "PNDMScheduler",
            "still_needed": ["unet/", "rie/", "channel_mapper/"]}


RELEASE = Release(
    name="pocold-parts", model="pocold",
    summary="PoCoLD's VAE + PNDM config (no weights were released)",
    where="github.com/BrandonHanx/PoCoLD@c5c7bb7 train.py:402-419,1039-1046 and run.sh (no weight link anywhere)",
    files=(),
    parts=(VAE, SCHEDULER),
    convert=convert,
    converter="diffusers AutoencoderKL / PNDMScheduler loads (fpdm_bench.modeling.patch_pca.load_autoencoder)",
    run="put unet/, rie/ and channel_mapper/ of a PoCoLD trained with the official train.py into {out}, then: "
        "fpdm-bench run --model pocold --checkpoint {out} --dataset deepfashion --protocol pocold --out runs/pocold",
)
