"""Write tests/fixtures/fpdm_e2e/ from the official FPDM code: one image generated end to end.

Usage, in a scratch venv with the official pins (see tests/fixtures/fpdm_e2e/README.md)::

    /tmp/fpdm-scratch/bin/python tools/make_fpdm_e2e_golden.py --official /tmp/fpdm-official \\
        --out tests/fixtures/fpdm_e2e [--work /tmp/fpdm-e2e-work]

``--official`` is a checkout of https://github.com/dhlee-work/FPDM; its modules are imported from there
(nothing of it is copied into this repository). This script holds no official code: it builds the
official ``FPDM`` LightningModule (``src/diffusion/model.py``) at a tiny size over tiny stand-ins of
the Hub folders it loads (SD 2.1, CLIP ViT-L/14, DINOv2 with their preprocessor configs), replaces
every weight by a seeded recipe that both environments can recreate (``seeded_state``: so the weights
need not be stored), saves and reloads it as a Lightning checkpoint (``FPDM.load_from_checkpoint``,
as ``C1.test_Diffusion_model.py`` does), and generates one image with the official inference path:
``FPDM.data_load`` (PIL resizes, the CLIP and BiT image processors, the pre-rendered pose JPEG drawn
by ``A1.pose_data_preprocessing.py``'s function) and ``FPDM.denosing_pip`` (its
``FPDM_DiffusionPipeline``: DDPM, 20 steps, guidance 2, one generator seeded with
``seed_number`` 7).

Inputs it reads from ``--out``: ``source.png`` (the source person) and ``target_keypoints.json``
(the target pose, 18 (x, y) points in the source's 256x176 frame, null = missing). It writes there:

- ``golden.npz``: the inputs and outputs of each stage (listed in the fixture README);
- ``golden.json``: versions, the official commit, the tiny configs (so a test can rebuild the
  folders), the weight manifest (key, shape, mean, std of each tensor's recipe) and the state's
  digest, the sampling settings, and checks made here (the processors' arithmetic).

What is not official here, and why: xformers attention (CUDA only) is not enabled (the official
``enable_xformers_memory_efficient_attention`` call is replaced by a no-op; attention then runs
diffusers' default processor), and the metric helpers built in ``FPDM.__init__`` (FID, LPIPS, SSIM
objects, which download Inception / AlexNet weights and are not used to generate) are inert stubs.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import zlib
from pathlib import Path

import numpy as np

SEED = 2412  # the weights' recipe
SAMPLING_SEED = 7  # C1.test_Diffusion_model.py: args.seed_number
STEPS, GUIDANCE = 20, 2.0  # C1: num_inference_steps, guidance_scale

# The tiny build. What the official code hard-codes stays as it is: the pose embedding's 320 output
# channels (so the UNet's first block has 320), the source projection 768 -> 1024 (cross-attention
# width 1024), the fusion width 768 (CLIP projection and combiner), 4 latent channels, CLIP's 224 px.
MODEL_WH = (48, 64)  # model_img_size / input_t_img_size (W, H): latents 6 x 8
SOURCE_WH = (512, 512)  # input_s_img_size, as in C1
ENCODER_WH = (42, 42)  # src_encoder_size: DINOv2 sees 3 x 3 patches of 14, its grid is 4 x 4 (interpolated)
POSE_CANVAS_HW = (1101, 750)  # the DeepFashion image the A1 script draws the pose JPEG on
PARAM = {"offset": 40, "stickwidth": 4, "anno_width": 176, "anno_height": 256}  # DeepFashion (dataset.py)

VAE = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=[8, 8, 8, 8], layers_per_block=1,
           norm_num_groups=4, down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
           scaling_factor=0.18215, sample_size=64)
UNET = dict(sample_size=8, in_channels=4, out_channels=4, block_out_channels=[320], layers_per_block=1,
            down_block_types=["DownBlock2D"], up_block_types=["UpBlock2D"], mid_block_type="UNetMidBlock2DCrossAttn",
            cross_attention_dim=1024, attention_head_dim=[5], use_linear_projection=True, upcast_attention=True,
            norm_num_groups=32)
# SD 2.1's scheduler/scheduler_config.json (the official code reads it with DDPMScheduler)
SCHEDULER = {"_class_name": "DDIMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
             "clip_sample": False, "num_train_timesteps": 1000, "prediction_type": "v_prediction",
             "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None}
CLIP = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=224,
            patch_size=32, projection_dim=768)
DINO = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2, image_size=56, patch_size=14)
# the preprocessor_config.json of openai/clip-vit-large-patch14 and facebook/dinov2-large
CLIP_PROCESSOR = {"crop_size": 224, "do_center_crop": True, "do_normalize": True, "do_resize": True,
                  "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": [0.48145466, 0.4578275, 0.40821073],
                  "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "size": 224}
DINO_PROCESSOR = {"crop_size": {"height": 224, "width": 224}, "do_center_crop": True, "do_convert_rgb": True,
                  "do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": [0.485, 0.456, 0.406],
                  "image_processor_type": "BitImageProcessor", "image_std": [0.229, 0.224, 0.225], "resample": 3,
                  "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": 256}}

#: names under which the official module registers one module twice (same tensors): the recipe seeds
#: them by the first name, so both copies are equal, as in a real checkpoint
TWINS = (("sd_model.unet.", "unet."), ("fusion_model.pose_encoder.", "fusion_model.img_encoder."))


# --- the weights' recipe (also imported by tests/test_fpdm_official_e2e.py; torch only) ------------
def canonical(key: str) -> str:
    for twin, main in TWINS:
        if key.startswith(twin):
            return main + key[len(twin):]
    return key


def recipe(tensor) -> tuple[float, float]:
    """(mean, std) of a tensor's replacement: its default initialisation's statistics, with a spread
    of at least 0.02 so zero- and one-initialised tensors (zero convolutions, norm scales, biases)
    take part; rounded so that the JSON holds them exactly."""
    t = tensor.detach().double()
    mean = float(t.mean()) if t.numel() else 0.0
    std = float(t.std()) if t.numel() > 1 else 0.0
    return float(f"{mean:.6g}"), float(f"{max(std, 0.02):.6g}")


def seeded_tensor(key: str, shape, mean: float, std: float, seed: int = SEED):
    # numpy's generator, not torch.randn: torch's normal fill has a vectorised kernel per CPU
    # capability (AVX2 vs generic give different last bits), numpy's stream is one scalar algorithm
    # (the same bytes from numpy 1.26 in the scratch venv and 2.x here, checked)
    import torch

    g = np.random.default_rng((zlib.crc32(canonical(key).encode()) + seed) % (2 ** 63))
    values = g.standard_normal(tuple(shape), dtype=np.float32) * np.float32(std) + np.float32(mean)
    return torch.from_numpy(np.ascontiguousarray(values))


def seeded_state(manifest: list, seed: int = SEED) -> dict:
    """The state dict of a manifest ``[[key, shape, mean, std], ...]``."""
    return {k: seeded_tensor(k, shape, mean, std, seed) for k, shape, mean, std in manifest}


def state_digest(state: dict) -> str:
    """sha256 over the keys, shapes and float32 bytes of a state dict, in key order."""
    h = hashlib.sha256()
    for k in sorted(state):
        t = state[k].detach().cpu().contiguous()
        h.update(f"{k}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


# --- the official run (scratch venv only) -----------------------------------------------------------
class _Inert:
    """Stands in for the official metric objects (FID, LPIPS, Reconstruction_Metrics)."""

    def __init__(self, *a, **k):
        self.model = self

    def to(self, *a, **k):
        return self


def _write_parts(work: Path) -> dict:
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection, Dinov2Config, Dinov2Model

    torch.manual_seed(SEED)
    sd, clip, dino = work / "sd21", work / "clip", work / "dinov2"
    AutoencoderKL(**VAE).save_pretrained(sd / "vae")
    UNet2DConditionModel(**UNET).save_pretrained(sd / "unet")
    (sd / "scheduler").mkdir(parents=True, exist_ok=True)
    (sd / "scheduler" / "scheduler_config.json").write_text(json.dumps(SCHEDULER, indent=2))
    (sd / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline",
                                                     "scheduler": ["diffusers", "DDIMScheduler"],
                                                     "unet": ["diffusers", "UNet2DConditionModel"],
                                                     "vae": ["diffusers", "AutoencoderKL"]}, indent=2))
    CLIPVisionModelWithProjection(CLIPVisionConfig(**CLIP)).save_pretrained(clip)
    (clip / "preprocessor_config.json").write_text(json.dumps(CLIP_PROCESSOR, indent=2))
    Dinov2Model(Dinov2Config(**DINO)).save_pretrained(dino)
    (dino / "preprocessor_config.json").write_text(json.dumps(DINO_PROCESSOR, indent=2))
    return {"sd21": sd, "clip": clip, "dinov2": dino}


def _save_lightning(module, path: Path) -> None:
    """A Lightning checkpoint of ``module`` as a Trainer writes it (weights, hyper-parameters, versions)."""
    import pytorch_lightning as pl

    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", devices=1)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(str(path))


def _official_args(parts: dict, fusion_ckpt: Path, work: Path):
    from argparse import Namespace

    return Namespace(
        # read by FPDM.__init__ (values of config/c1.fpdm-deepfashion-dsrvd-ab6.yaml unless tiny)
        train_json_path=str(work / "none.json"), test_json_path=str(work / "none.json"),
        data_root_path=str(work / "deepfashion"), pretrained_model_name_or_path=str(parts["sd21"]),
        fusion_image_encoder=True, class_embed_type="mlp", unet_conv_in_kenel=3, fusion_model_path=str(fusion_ckpt),
        init_src_image_encoder=True, src_encoder_type="dino", src_encoder_path=str(parts["dinov2"]),
        fusion_encoder_path=str(parts["clip"]), fusion_encoder_type="clip", patch_proj_in_dim=DINO["hidden_size"],
        proj_drop_rate=0.2, pose_drop_rate=0.2, module_drop_rate=0.2, noise_offset=0.1,
        # read by data_load / denosing_pip (C1.test_Diffusion_model.py, tiny sizes)
        model_img_size=list(MODEL_WH), input_t_img_size=list(MODEL_WH), input_s_img_size=list(SOURCE_WH),
        src_encoder_size=list(ENCODER_WH), seed_number=SAMPLING_SEED, num_images_per_prompt=1,
        guidance_scale=GUIDANCE, num_inference_steps=STEPS, phase="test", batch_size=1,
        lr=1e-4, weight_decay=0.0, scheduler_t_up=5, scheduler_step_size=50, scheduler_gamma=0.1,
        scheduler_eta_max=1e-4, visualize_images=False, calculate_metrics=False, loss_type="mse_loss")


def _pose_jpeg(official_kp_txt: Path, out: Path) -> None:
    """The target's pre-rendered pose image, as A1.pose_data_preprocessing.py writes it (drawn on the
    DeepFashion image's 1101x750 canvas, saved as JPEG quality 100)."""
    from src.fusion.datautil import ProcessingKeypoints

    canvas = np.zeros((*POSE_CANVAS_HW, 3), np.uint8)  # A1 reads the image only for its shape
    ProcessingKeypoints().get_label_tensor(str(official_kp_txt), canvas, PARAM).save(out, format="JPEG", quality=100)


def run_official(official: Path, out: Path, work: Path) -> None:
    import torch
    from PIL import Image

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _scratch import jsonable, numpy_of, torchvision_op_shim

    notes = {"torchvision_shim": torchvision_op_shim()}
    torch.set_num_threads(1)
    sys.path.insert(0, str(official))
    import src.diffusion.model as official_model
    from src.fusion.models import FusionModel

    for name in ("FID", "LPIPS", "Reconstruction_Metrics"):
        setattr(official_model, name, _Inert)
    official_model.FPDM_DiffusionPipeline.enable_xformers_memory_efficient_attention = lambda self, *a, **k: None

    work.mkdir(parents=True, exist_ok=True)
    parts = _write_parts(work)

    # stage 1: a FusionModel over the tiny CLIP, saved as B1 saves it (its weights are replaced below)
    fusion_args = dict(encoder_type="clip", lambda_l1=1e-4, temperature=0.07, img_encoder_path=str(parts["clip"]),
                       img_encoder_update=True, combiner_hidden_dim=CLIP["projection_dim"], lr=1e-5, weight_decay=1e-4)
    from argparse import Namespace

    fusion_ckpt = work / "fusion.ckpt"
    _save_lightning(FusionModel(Namespace(**fusion_args)), fusion_ckpt)

    args = _official_args(parts, fusion_ckpt, work)
    model = official_model.FPDM(args)
    default = model.state_dict()
    manifest = [[k, list(v.shape), *recipe(v)] for k, v in default.items()]
    if any(not v.is_floating_point() for v in default.values()):
        raise SystemExit("a non-float tensor in the state dict: extend the recipe")
    state = seeded_state(manifest)
    model.load_state_dict(state, strict=True)
    # The official inference decodes with the pipeline's own VAE, read from the SD folder, not with the
    # checkpoint's vae.* (equal for the released model: the VAE is frozen). Write the seeded VAE there.
    model.vae.save_pretrained(parts["sd21"] / "vae")
    ckpt = work / "stage2.ckpt"
    _save_lightning(model, ckpt)
    del model

    # as C1.test_Diffusion_model.py loads it
    model = official_model.FPDM.load_from_checkpoint(str(ckpt), src_encoder_size=list(ENCODER_WH))
    model.eval()
    model.hparams.num_images_per_prompt = 1
    model.hparams.guidance_scale = GUIDANCE
    model.hparams.num_inference_steps = STEPS
    got = model.state_dict()
    assert state_digest(got) == state_digest(state), "the reloaded checkpoint is not the seeded state"
    pipe_vae = model.pipe.vae.state_dict()
    assert all(torch.equal(pipe_vae[k], got["vae." + k]) for k in pipe_vae), "pipeline VAE != checkpoint VAE"

    # inputs: the source PNG, the target pose (official file convention: x + 40, -1 = missing)
    kp = json.loads((out / "target_keypoints.json").read_text())
    assert tuple(kp["frame_hw"]) == (PARAM["anno_height"], PARAM["anno_width"])
    txt = work / "target_pose.txt"
    txt.write_text("".join(f"{-1 if x is None else x + PARAM['offset']} {-1 if y is None else y}\n"
                           for x, y in kp["keypoints_xy"]))
    pose_jpg = work / "target_pose.jpg"
    _pose_jpeg(txt, pose_jpg)
    source = out / "source.png"

    rec = {}

    def keep(name):
        return lambda mod, inp, output: rec.setdefault(name, output)

    hooks = [model.src_image_encoder.register_forward_hook(keep("dinov2")),
             model.fusion_model.combiner.register_forward_hook(keep("fusion")),
             model.sd_model.pose_t_proj.register_forward_hook(keep("pose_features"))]
    pipe = model.pipe
    prepare, step, decode = pipe.prepare_latents, pipe.scheduler.step, pipe.vae.decode
    steps = []

    def prepare_hook(*a, **k):
        rec["initial_latents"] = prepare(*a, **k)
        return rec["initial_latents"]

    # the pipeline passes the generator to scheduler.step only if step's signature names it: keep it
    def step_hook(model_output, timestep, sample, generator=None, return_dict=True):
        out_ = step(model_output, timestep, sample, generator=generator, return_dict=return_dict)
        steps.append((int(timestep), model_output, out_[0]))
        return out_

    def decode_hook(z, *a, **k):
        rec["latents"] = z * pipe.vae.config.scaling_factor
        return decode(z, *a, **k)

    pipe.prepare_latents, pipe.scheduler.step, pipe.vae.decode = prepare_hook, step_hook, decode_hook
    with torch.no_grad():
        prep = model.data_load(str(source), str(source), str(pose_jpg))  # t_img: read but unused at inference
        output = model.denosing_pip(prep["target_image"], prep["target_pose"], prep["src_processed_source_image"],
                                    prep["fusion_processed_source_image"], prep["fusion_processed_target_pose"])
    for h in hooks:
        h.remove()
    image = np.asarray(output.images[0].convert("RGB"))
    # the hooks only watch: the same call without them gives the same image
    pipe.prepare_latents, pipe.scheduler.step, pipe.vae.decode = prepare, step, decode
    with torch.no_grad():
        plain = model.denosing_pip(prep["target_image"], prep["target_pose"], prep["src_processed_source_image"],
                                   prep["fusion_processed_source_image"], prep["fusion_processed_target_pose"])
    unhooked_equal = bool(np.array_equal(np.asarray(plain.images[0].convert("RGB")), image))
    assert unhooked_equal, "the recording hooks changed the official run"

    # the 8-bit images the processors were given (data_load's PIL steps, repeated) and their arithmetic
    s512 = Image.open(source).convert("RGB").resize(SOURCE_WH, Image.BICUBIC)
    pose = Image.open(pose_jpg).convert("RGB")
    u8 = {"dinov2_u8": np.asarray(s512.resize(ENCODER_WH, Image.BICUBIC)),
          "clip_source_u8": np.asarray(s512.resize([224, 224], Image.BICUBIC)),
          "clip_pose_u8": np.asarray(pose.resize([224, 224], Image.BICUBIC)),
          "unet_pose_u8": np.asarray(pose.resize(MODEL_WH, Image.BICUBIC))}

    def processed(img, mean, std):  # rescale (uint8 x float64 scale -> float32), then normalise in float32
        x = (img.astype(np.float64) * (1 / 255)).astype(np.float32)
        return ((x - np.array(mean, np.float32)) / np.array(std, np.float32)).transpose(2, 0, 1)

    # stage 1 as the official fusion training reads its images (src/fusion/dataset.py FusionDataset:
    # the CLIP processor on the image as read, shortest edge 224 + centre crop)
    from src.fusion.dataset import FusionDataset

    (work / "img").mkdir(exist_ok=True)
    (work / "pose_img").mkdir(exist_ok=True)
    Image.open(source).save(work / "img" / "source.png")
    Image.open(pose_jpg).save(work / "pose_img" / "source.png")
    fusion_data = FusionDataset([{"source_image": "img/source.png", "target_image": "img/source.png"}],
                                Namespace(**fusion_args, root_path=str(work), img_pose_drop_rate=0.0))
    stage1_item = fusion_data[0]

    checks = {
        "dinov2_input_vs_formula": float(np.abs(processed(u8["dinov2_u8"], DINO_PROCESSOR["image_mean"],
                                                          DINO_PROCESSOR["image_std"])
                                                - numpy_of(prep["src_processed_source_image"][0])).max()),
        "clip_source_vs_formula": float(np.abs(processed(u8["clip_source_u8"], CLIP_PROCESSOR["image_mean"],
                                                         CLIP_PROCESSOR["image_std"])
                                               - numpy_of(prep["fusion_processed_source_image"][0])).max()),
        "clip_pose_vs_formula": float(np.abs(processed(u8["clip_pose_u8"], CLIP_PROCESSOR["image_mean"],
                                                       CLIP_PROCESSOR["image_std"])
                                             - numpy_of(prep["fusion_processed_target_pose"][0])).max()),
        "unet_pose_vs_totensor": float(np.abs(u8["unet_pose_u8"].transpose(2, 0, 1).astype(np.float32) / 255
                                              - numpy_of(prep["target_pose"][0])).max()),
        "image_without_hooks_equal": unhooked_equal,
        "initial_latents_vs_seeded_randn": float((rec["initial_latents"] - torch.randn(
            rec["initial_latents"].shape, generator=torch.Generator().manual_seed(SAMPLING_SEED))).abs().max()),
    }
    arrays = {
        **u8,
        "dinov2_input": numpy_of(prep["src_processed_source_image"]),
        "clip_source_input": numpy_of(prep["fusion_processed_source_image"]),
        "clip_pose_input": numpy_of(prep["fusion_processed_target_pose"]),
        "unet_pose_input": numpy_of(prep["target_pose"]),
        "stage1_source_input": numpy_of(stage1_item["source_img"][None]),
        "dinov2_tokens": numpy_of(rec["dinov2"].last_hidden_state),
        "fusion": numpy_of(rec["fusion"]),
        "pose_features": numpy_of(rec["pose_features"]),
        "initial_latents": numpy_of(rec["initial_latents"]),
        "timesteps": np.array([t for t, _, _ in steps], np.int64),
        "guided_prediction": np.stack([numpy_of(m) for _, m, _ in steps]),
        "step_latents": np.stack([numpy_of(x) for _, _, x in steps]),
        "latents": numpy_of(rec["latents"]),
        "image": image,
    }
    np.savez_compressed(out / "golden.npz", **arrays)

    import diffusers
    import PIL
    import pytorch_lightning
    import transformers

    official_files = ["src/diffusion/model.py", "src/diffusion/dataset.py", "src/diffusion/pipelines/pipeline.py",
                      "src/diffusion/models/unet_2d_condition.py", "src/fusion/models.py", "src/fusion/datautil.py",
                      "C1.test_Diffusion_model.py"]
    meta = {
        "made_by": "tools/make_fpdm_e2e_golden.py --official DIR --out tests/fixtures/fpdm_e2e (scratch venv)",
        "official": {"repo": "https://github.com/dhlee-work/FPDM", "commit": _commit(official),
                     "files_sha256": {f: hashlib.sha256((official / f).read_bytes()).hexdigest() for f in official_files}},
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
                     "diffusers": diffusers.__version__, "pytorch_lightning": pytorch_lightning.__version__,
                     "pillow": PIL.__version__, "numpy": np.__version__, **_versions("cv2", "torchvision")},
        "not_official": ["xformers attention not enabled (CUDA only; the call is a no-op here)",
                         "FID / LPIPS / Reconstruction_Metrics built by FPDM.__init__ replaced by inert stubs"],
        "notes": notes,
        "sizes": {"model_img_size_wh": MODEL_WH, "input_s_img_size_wh": SOURCE_WH, "src_encoder_size_wh": ENCODER_WH,
                  "pose_canvas_hw": POSE_CANVAS_HW, "keypoint_param": PARAM},
        "sampling": {"scheduler": "ddpm", "steps": STEPS, "guidance": GUIDANCE, "seed_number": SAMPLING_SEED,
                     "generator": "one CPU torch.Generator, manual_seed(seed_number): initial latents, then each "
                                  "DDPM step's noise"},
        "configs": {"vae": VAE, "unet": UNET, "scheduler": SCHEDULER, "clip_vision": CLIP, "dinov2": DINO,
                    "clip_processor": CLIP_PROCESSOR, "dinov2_processor": DINO_PROCESSOR},
        "weights": {"seed": SEED, "recipe": "tools/make_fpdm_e2e_golden.py seeded_state (per key: "
                                             "manual_seed(crc32(canonical key) + seed), randn * std + mean)",
                    "twins": TWINS, "digest": state_digest(state), "manifest": manifest},
        "checks": checks,
        "arrays": {k: [str(v.dtype), list(v.shape)] for k, v in arrays.items()},
    }
    (out / "golden.json").write_text(json.dumps(jsonable(meta), indent=1) + "\n")
    print(json.dumps(jsonable({"checks": checks, "digest": meta["weights"]["digest"]}), indent=1))


def _commit(official: Path) -> str | None:
    import subprocess

    if _commit_override:
        return _commit_override
    try:
        return subprocess.run(["git", "-C", str(official), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _versions(*names) -> dict:
    import importlib

    out = {}
    for n in names:
        try:
            out[n] = importlib.import_module(n).__version__
        except ImportError:
            out[n] = None
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--official", required=True, type=Path, help="checkout of github.com/dhlee-work/FPDM")
    ap.add_argument("--out", required=True, type=Path, help="fixture folder (holds source.png, target_keypoints.json)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/fpdm-e2e-work"),
                    help="scratch folder for the tiny Hub stand-ins and the checkpoints (not kept)")
    ap.add_argument("--commit", default=None, help="the official commit, when --official is not a git checkout")
    a = ap.parse_args(argv)
    global _commit_override
    _commit_override = a.commit
    run_official(a.official.resolve(), a.out.resolve(), a.work.resolve())


_commit_override = None

if __name__ == "__main__":
    main()
