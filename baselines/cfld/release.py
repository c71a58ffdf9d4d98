"""CFLD's official checkpoint, as `fpdm-bench weights fetch cfld --out DIR` gets it (registered in the
``fpdm_bench.releases`` entry points; the steps are in ``fpdm_bench/release_fetch.py``).

Where it is (read in github.com/YanzuoLu/CFLD, README.md at 9892b2f and cc4b284, "News", 2024/03/09):
"The checkpoints on DeepFashion dataset" are in Google Drive folder 1s0DcLzBEugRFf20OEmFKiW3tsKoaOOAZ
(the author points there again in issues #42 and #44). The files are the two that
``MODEL.PRETRAINED_PATH`` must hold (``pose_transfer_test.py`` loads ``pytorch_model.bin`` and
``pytorch_model_1.bin``; docs/models/cfld.md); they are looked up by name in the folder, whose other
content is not known here. No size or hash is published.

The release has no VAE: CFLD uses Stable Diffusion 1.5's (README "Download Pre-trained Models":
runwayml/stable-diffusion-v1-5, ``vae/``). runwayml withdrew that repository from the Hugging Face Hub
in 2024; ``stable-diffusion-v1-5/stable-diffusion-v1-5`` is the copy the community maintains under the
same license, and the VAE is fetched from there (``--part vae=REPO_OR_DIR`` picks another). It goes
into ``DIR/vae/``, where the adapter looks for it, so ``--checkpoint DIR`` needs no ``vae=`` argument.
"""
from __future__ import annotations

from pathlib import Path

from fpdm_bench.errors import BenchError
from fpdm_bench.releases import HFPart, Release, ReleaseFile, place, place_part

DRIVE_FOLDER = "1s0DcLzBEugRFf20OEmFKiW3tsKoaOOAZ"
VAE = HFPart("vae", "stable-diffusion-v1-5/stable-diffusion-v1-5",
             ("vae/config.json", "vae/diffusion_pytorch_model.safetensors"),
             official_repo="runwayml/stable-diffusion-v1-5",
             note="the official README's repo was withdrawn from the Hub in 2024; this is its maintained copy")


def convert(files: dict[str, Path], parts: dict[str, Path], out: Path) -> dict:
    """The released layout is what the adapter reads, so nothing is renamed: the two files (and a
    ``config.json`` when the source has one) plus ``vae/``; then the whole folder is loaded as
    ``--model cfld`` will load it (both files strictly, the VAE by diffusers), which refuses a damaged
    or foreign file."""
    from fpdm_bench_baselines.cfld.pipeline import CFLDPipeline

    for name, path in files.items():
        place(path, out / name)
    place_part(parts["vae"], VAE, out)  # vae/config.json, vae/diffusion_pytorch_model.safetensors
    try:
        pipe = CFLDPipeline.from_pretrained(out, vae=None)
    except BenchError:
        raise
    except Exception as e:  # noqa: BLE001  (diffusers / safetensors errors on a damaged VAE file)
        raise BenchError(f"{out / 'vae'}: not a loadable VAE ({type(e).__name__}: {str(e).splitlines()[0][:160]})") from None
    count = {name: sum(p.numel() for p in getattr(pipe, name).parameters()) for name in ("conditioner", "unet", "vae")}
    return {"parameters": count,
            "gen_size": list(pipe.gen_size), "config_json": "config.json" in files}


RELEASE = Release(
    name="cfld", model="cfld",
    summary="CFLD's DeepFashion checkpoint (Google Drive) + SD 1.5 VAE",
    where="github.com/YanzuoLu/CFLD: README.md News 2024/03/09 (Drive folder); issues #42, #44",
    files=(ReleaseFile("pytorch_model.bin", drive_folder=DRIVE_FOLDER, note="condition network"),
           ReleaseFile("pytorch_model_1.bin", drive_folder=DRIVE_FOLDER, note="UNet, model.* keys"),
           ReleaseFile("config.json", drive_folder=DRIVE_FOLDER, required=False,
                       note="not in the official release (absent = the published sizes); a CFLD trained with "
                            "fpdm-bench cfld train has one, so a mirror may serve it")),
    parts=(VAE,),
    convert=convert,
    converter="fpdm_bench_baselines.cfld.pipeline.CFLDPipeline.from_pretrained (strict load of the released layout)",
    run="fpdm-bench run --model cfld --checkpoint {out} --dataset deepfashion --protocol cfld --out runs/cfld",
    notes=("The released checkpoint is the final epoch, not the paper's early-stopped model (docs/models/cfld.md).",),
)
