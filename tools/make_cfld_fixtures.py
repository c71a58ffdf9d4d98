"""Produce the CFLD reference fixtures by running the *official* CFLD code (not our port).

This script contains no official code. It puts a checkout of the official repository
(YanzuoLu/CFLD, commit f2ea2a7) on ``sys.path``, imports its modules, builds them at the published
size (with empty weights, for key manifests) and at a tiny size (seeded, for golden arrays), and
writes what the port's tests compare against.

It must be run with a *scratch* venv that can import the official code (torch 2.13 CPU,
diffusers 0.19.3, transformers 4.35.0, accelerate 0.23.0, huggingface_hub 0.17.3, timm 0.9.7,
yacs, einops, numpy<2, opencv-python-headless 4.7.0.72, pandas 2.0.3, lpips, scikit-image,
scipy; see ``tests/fixtures/cfld/README.md``), never with the project's venv. The scratch copy
of the official code has xformers replaced by ``scaled_dot_product_attention`` (4 lines, listed in
the README)::

    cd /work/main
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1 /tmp/scratch/cfld-venv/bin/python \\
        tools/make_cfld_fixtures.py --official /tmp/scratch/cfld --out tests/fixtures/cfld

It prints a JSON of observations (loading checks, scheduler timesteps, branch differences) to
stdout.

What it writes into ``--out``:

``manifest.json``
    state-dict key -> shape, grouped by released file (``pytorch_model.bin``: ``build_model``;
    ``pytorch_model_1.bin``: the ``UNet`` wrapper), for the published configuration (built with
    empty weights) and for the tiny one; the persistent buffers among them; the configurations;
    the parameters the official code trains; the parameters that get no gradient in an
    inference-style forward; the resolved sampler configuration.
``golden_tiny.npz``
    seeded inputs and the official outputs of every piece (backbone, decoder, appearance encoder,
    pose encoder, one three-branch UNet call, the guided prediction, the first three sampler
    steps with their noise, and the official ``sample()`` end to end: 50 steps + VAE decode).
``pose_golden.npz``
    ``PisTestDeepFashion.build_pose_img`` on fixed keypoint sets (skeleton as uint8, heatmaps as
    float32).
``pytorch_model.bin`` / ``pytorch_model_1.bin``
    the tiny weights written by ``accelerate.Accelerator.save_state`` exactly as the official
    training writes its checkpoints.
``unet_tiny/config.json``, ``vae_tiny/``
    the tiny UNet configuration (a diffusers config file, like ``pretrained_models/unet``) and the
    tiny VAE (config + safetensors) used by ``sample()``.
"""
from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

from _scratch import jsonable, numpy_of as _np, reinit as _reinit, shapes as _shapes, start, zip_info

# ---------------------------------------------------------------------------------------------
# The tiny configuration, as yacs options on top of the official defaults (the same form as the
# command-line opts of the official scripts). Every structural feature is kept: 4 Swin stages with
# shifted windows in stages 1-2 only (window >= resolution in stages 3-4, as at 256x256 with window
# 16), 9 appearance-encoder entries for up-block attention indices 11..3, 3 pose levels, a decoder
# of cross-attention-first blocks, and a UNet with SD 1.5's block types and 2 layers per block.
# The published latent is 1/4 of the source/pose size (256 -> 64); the tiny one keeps that ratio
# (64 -> 16).
TINY_OPTS = {
    "INPUT.GT.IMG_SIZE": [128, 128],
    "INPUT.COND.IMG_SIZE": [64, 64],
    "INPUT.POSE.IMG_SIZE": [64, 64],
    "MODEL.COND_STAGE_CONFIG.PRETRAINED_PATH": "",
    "MODEL.COND_STAGE_CONFIG.EMBED_DIM": 4,
    "MODEL.COND_STAGE_CONFIG.DEPTHS": [2, 2, 2, 1],
    "MODEL.COND_STAGE_CONFIG.NUM_HEADS": [1, 2, 2, 4],
    "MODEL.COND_STAGE_CONFIG.WINDOW_SIZE": 4,
    "MODEL.APPEARANCE_GUIDANCE_CONFIG.INNER_DIMS": [4, 4, 4, 8, 8, 8, 16, 16, 16],
    "MODEL.APPEARANCE_GUIDANCE_CONFIG.CTX_DIMS": [32, 32, 32, 32, 32, 32, 32, 32, 32],
    "MODEL.APPEARANCE_GUIDANCE_CONFIG.EMBED_DIMS": [4, 4, 4, 4, 4, 4, 8, 8, 8],
    "MODEL.APPEARANCE_GUIDANCE_CONFIG.HEADS": [1, 1, 1, 1, 1, 1, 2, 2, 2],
    "MODEL.APPEARANCE_GUIDANCE_CONFIG.DEPTH": 2,
    "MODEL.POSE_GUIDANCE_CONFIG.IN_CHANNELS": 32,
    "MODEL.POSE_GUIDANCE_CONFIG.CHANNELS": [32, 32, 32],
    "MODEL.DECODER_CONFIG.N_CTX": 4,
    "MODEL.DECODER_CONFIG.CTX_DIM": 16,
    "MODEL.DECODER_CONFIG.DEPTH": 2,
    "MODEL.DECODER_CONFIG.HEADS": 2,
}
# The tiny UNet: SD 1.5's config.json (shipped in the official repo) with these keys changed.
# 32 channels is the floor: the official PoseEncoder builds diffusers ResnetBlock2D with the default
# 32 groups, and its channels must equal the UNet's first three block widths. time_embedding_dim
# (SD 1.5 leaves it unset: 4 x 320) is set to 32 only to keep the fixture folder under 6 MB; it
# changes shapes, not keys.
TINY_UNET = {
    "block_out_channels": [32, 32, 32, 32],
    "norm_num_groups": 8,
    "attention_head_dim": 2,
    "cross_attention_dim": 16,
    "time_embedding_dim": 32,
    "sample_size": 16,
}
# The tiny VAE for the official sample() (decode only): SD 1.5's VAE config with these keys.
TINY_VAE = {
    "block_out_channels": [4, 4, 4, 4], "norm_num_groups": 2, "layers_per_block": 1, "sample_size": 128,
}

SEED_MODEL = 0  # torch.manual_seed before build_model(tiny cfg) (official default init)
SEED_UNET = 1  # torch.manual_seed before building the tiny UNet's initial weights
SEED_VAE = 2  # torch.manual_seed before building the tiny VAE
SEED_REINIT = 3  # generator for re-initialising all-zero / all-one parameters
REINIT_STD = 0.1
SEED_INPUTS = 4  # generator for every input tensor
SEED_SAMPLE = 5  # torch.manual_seed right before the official sample() (its DDPM noise)
BATCH = 2
UNUSED_T = 981  # timestep of the unused-parameter probe




def _buffers(module) -> list:
    names = {n for n, _ in module.named_buffers()}
    return sorted(k for k in module.state_dict() if k in names)


def _cfg_dict(cfg) -> dict:
    import yaml

    return yaml.safe_load(cfg.dump())


# ---------------------------------------------------------------------------------------------
def make_cfg(base, opts: dict):
    cfg = base.clone()
    cfg.defrost()
    flat = []
    for k, v in opts.items():
        flat += [k, v]
    cfg.merge_from_list(flat)
    cfg.freeze()
    return cfg


@contextlib.contextmanager
def unet_from_config(unet_mod, config: dict):
    """Make ``ResidualUNet2DConditionModel.from_pretrained`` build from ``config`` with empty weights.

    Only used for the published manifest: the official ``UNet.__init__`` loads SD 1.5's 3.4 GB
    weights; here it runs unchanged on an empty-weight model built from the same config.
    """
    from accelerate import init_empty_weights

    cls = unet_mod.ResidualUNet2DConditionModel
    assert "from_pretrained" not in cls.__dict__  # inherited from diffusers' ModelMixin

    def fake(klass, *args, **kwargs):
        with init_empty_weights():
            return klass.from_config(config)

    cls.from_pretrained = classmethod(fake)
    try:
        yield
    finally:
        del cls.from_pretrained


def published_manifest(official: Path, base_cfg, build_model, unet_mod, notes):
    import torch
    from accelerate import init_empty_weights

    cfg = make_cfg(base_cfg, {"MODEL.COND_STAGE_CONFIG.PRETRAINED_PATH": ""})
    unet_config = json.loads((official / "pretrained_models/unet/config.json").read_text())
    with init_empty_weights():  # parameters on meta; buffers (attn_mask, ...) real, they are small
        model = build_model(cfg)
    with unet_from_config(unet_mod, unet_config):
        unet = unet_mod.UNet(cfg)
    out = {
        "pytorch_model.bin": _shapes(model),
        "pytorch_model_1.bin": _shapes(unet),
    }
    buffers = {"pytorch_model.bin": _buffers(model), "pytorch_model_1.bin": _buffers(unet)}
    n_params = {
        "pytorch_model.bin": sum(p.numel() for p in model.parameters()),
        "pytorch_model_1.bin": sum(p.numel() for p in unet.parameters()),
    }
    trainable = sorted(k for k, p in unet.named_parameters() if p.requires_grad)
    frozen_model = sorted(k for k, p in model.named_parameters() if not p.requires_grad)
    notes["published_n_params"] = n_params
    notes["published_trainable_unet_params"] = len(trainable)
    notes["published_n_keys"] = {k: len(v) for k, v in out.items()}
    procs = {}
    for name, m in unet.named_modules():
        if hasattr(m, "processor"):
            procs.setdefault(type(m.processor).__name__, []).append(name)
    notes["published_unet_processors"] = {k: len(v) for k, v in procs.items()}
    del model, unet
    return out, buffers, n_params, trainable, frozen_model, _cfg_dict(cfg), unet_config


# ---------------------------------------------------------------------------------------------


def write_tiny_unet_folder(official: Path, folder: Path, gen):
    """config.json (SD 1.5's with TINY_UNET) + seeded diffusion_pytorch_model.safetensors."""
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    config = json.loads((official / "pretrained_models/unet/config.json").read_text())
    config.update(TINY_UNET)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    torch.manual_seed(SEED_UNET)
    m = UNet2DConditionModel.from_config({k: v for k, v in config.items()})
    reinit = _reinit(m.named_parameters(), gen, REINIT_STD)
    weights = {k: v.contiguous() for k, v in m.state_dict().items()}
    save_file(weights, str(folder / "diffusion_pytorch_model.safetensors"))
    return config, ["model." + k for k in reinit]


def write_tiny_vae_folder(official: Path, folder: Path, gen):
    import torch
    from diffusers import AutoencoderKL

    config = json.loads((official / "pretrained_models/vae/config.json").read_text())
    config.update(TINY_VAE)
    torch.manual_seed(SEED_VAE)
    m = AutoencoderKL.from_config(config)
    reinit = _reinit(m.named_parameters(), gen, REINIT_STD)
    m.save_pretrained(str(folder), safe_serialization=True)
    return config, reinit


def make_inputs():
    import torch

    g = torch.Generator().manual_seed(SEED_INPUTS)
    inp = {}
    inp["src_u8"] = torch.randint(0, 256, (BATCH, 3, 64, 64), generator=g, dtype=torch.uint8)
    # 16 levels (0, 17, ..., 255) per pixel: full spatial entropy for the PixelUnshuffle order,
    # half the bytes of 256 levels in the compressed npz
    inp["pose_u8"] = torch.randint(0, 16, (BATCH, 21, 64, 64), generator=g, dtype=torch.uint8) * 17
    inp["latents"] = torch.randn(BATCH, 4, 16, 16, generator=g)
    return inp


def to_model_inputs(inp):
    # the official test transform ends with ToTensor() (uint8/255) and Normalize(0.5, 0.5)
    img_cond = (inp["src_u8"].float() / 255.0 - 0.5) / 0.5
    pose = inp["pose_u8"].float() / 255.0
    return img_cond, pose


# ---------------------------------------------------------------------------------------------
def unused_params(model, unet, img_cond, pose, latents, t):
    """Parameters with no gradient after an inference-style forward (3 branches) and backward."""
    import torch

    flags = {id(p): p.requires_grad for p in list(model.parameters()) + list(unet.parameters())}
    for p in list(model.parameters()) + list(unet.parameters()):
        p.requires_grad_(True)
        p.grad = None
    b = latents.shape[0]
    with torch.enable_grad():
        c, down, up = model({"img_cond": img_cond, "pose_img": pose})
        c3 = torch.cat([c[:b], c[:b], c[b:]])
        down3 = [torch.cat([torch.zeros_like(s), s, s]) for s in down]
        up3 = {k: torch.cat([torch.zeros_like(v), torch.zeros_like(v), v]) for k, v in up.items()}
        eps = unet(sample=torch.cat([latents] * 3), timestep=t, encoder_hidden_states=c3,
                   down_block_additional_residuals=down3, up_block_additional_residuals=up3)
        eps.square().sum().backward()
    res = {
        "pytorch_model.bin": sorted(k for k, p in model.named_parameters() if p.grad is None),
        "pytorch_model_1.bin": sorted(k for k, p in unet.named_parameters() if p.grad is None),
    }
    for p in list(model.parameters()) + list(unet.parameters()):
        p.requires_grad_(flags[id(p)])
        p.grad = None
    return res


def golden(cfg, model, unet, vae, scheduler, inp, sample_fn, accelerator, notes):
    import diffusers.schedulers.scheduling_ddpm as ddpm_mod
    import torch

    out = {}
    img_cond, pose = to_model_inputs(inp)
    latents = inp["latents"]
    b = latents.shape[0]
    with torch.no_grad():
        x, feats = model.backbone(img_cond)
        out["backbone/pooled"] = x
        for i, f in enumerate(feats):
            out[f"backbone/feature/{i}"] = f
        c, down, up = model({"img_cond": img_cond, "pose_img": pose})
        out["cond/c"] = c
        out["decoder/out"] = c[b:]
        for i, s in enumerate(down):
            out[f"pose/{i}"] = s
        for k, v in up.items():
            out[f"appearance/{k}"] = v
        notes["appearance_keys"] = list(up.keys())

        scheduler.set_timesteps(cfg.TEST.NUM_INFERENCE_STEPS)
        t = scheduler.timesteps[0]
        notes["timesteps"] = scheduler.timesteps.tolist()
        # the three branches exactly as sample() batches them for GUIDANCE_TYPE "uc_down_full"
        c3 = torch.cat([c[:b], c[:b], c[b:]])
        down3 = [torch.cat([torch.zeros_like(s), s, s]) for s in down]
        up3 = {k: torch.cat([torch.zeros_like(v), torch.zeros_like(v), v]) for k, v in up.items()}
        inputs = scheduler.scale_model_input(torch.cat([latents] * 3), timestep=t)
        eps = unet(sample=inputs, timestep=t, encoder_hidden_states=c3,
                   down_block_additional_residuals=copy.deepcopy(down3),
                   up_block_additional_residuals=copy.deepcopy(up3))
        uc, dn, full = eps.chunk(3)
        out["unet/t"] = t
        out["unet/eps_uc"], out["unet/eps_down"], out["unet/eps_full"] = uc, dn, full
        out["unet/eps_guided"] = (uc + cfg.TEST.DOWN_BLOCK_GUIDANCE_SCALE * (dn - uc)
                                  + cfg.TEST.FULL_GUIDANCE_SCALE * (full - dn))
        # the same branches called one at a time (batch b each)
        sep_full = unet(sample=latents, timestep=t, encoder_hidden_states=c[b:],
                        down_block_additional_residuals=copy.deepcopy(down),
                        up_block_additional_residuals=copy.deepcopy(up))
        sep_uc = unet(sample=latents, timestep=t, encoder_hidden_states=c[:b])
        notes["branch_separate_vs_batched_maxabs"] = {
            "full": float((sep_full - full).abs().max()),
            "uc_without_residuals": float((sep_uc - uc).abs().max())}
        notes["branch_scale"] = {
            "std_uc": float(uc.std()), "maxabs_down_minus_uc": float((dn - uc).abs().max()),
            "maxabs_full_minus_down": float((full - dn).abs().max())}

        # the official sample() end to end, recording each scheduler step and its noise
        recorded_noise, recorded_steps = [], []
        orig_randn, orig_step = ddpm_mod.randn_tensor, scheduler.step

        def rec_randn(*a, **k):
            r = orig_randn(*a, **k)
            recorded_noise.append(r.clone())
            return r

        def rec_step(*a, **k):
            r = orig_step(*a, **k)
            recorded_steps.append(r[0].clone())
            return r

        ddpm_mod.randn_tensor = rec_randn
        scheduler.step = rec_step
        try:
            torch.manual_seed(SEED_SAMPLE)
            images = sample_fn(cfg, torch.float32, accelerator, scheduler, vae, unet, latents.clone(),
                               c, [s.clone() for s in down], {k: v.clone() for k, v in up.items()})
        finally:
            ddpm_mod.randn_tensor = orig_randn
            del scheduler.step
        notes["sample_steps_recorded"] = len(recorded_steps)
        notes["sample_noise_draws"] = len(recorded_noise)
        # the noise sequence equals plain torch.randn draws from a generator seeded SEED_SAMPLE
        g = torch.Generator().manual_seed(SEED_SAMPLE)
        notes["sample_noise_equals_generator_sequence"] = all(
            torch.equal(n, torch.randn(n.shape, generator=g)) for n in recorded_noise)
        for i in range(3):
            out[f"steps/latents_{i + 1}"] = recorded_steps[i]
            out[f"steps/noise_{i + 1}"] = recorded_noise[i]
        out["sample/final_latents"] = recorded_steps[-1]
        notes["sample_images_range"] = [float(images.min()), float(images.max())]
        # the official post-processing before the metrics (pose_transfer_test.py eval()), at the
        # tiny size: 128x128 -> 64x44 (the 256x176 aspect)
        import torch.nn.functional as F

        post = F.interpolate(images, (64, 44), mode="bicubic", antialias=True)
        post = (post.float() * 255.0).clamp(0, 255).to(dtype=torch.uint8)
        out["sample/images_64x44_uint8"] = post
    return out


# ---------------------------------------------------------------------------------------------
# 18 OpenPose-COCO points as the annotation CSV writes them: y in 0..255, x in 0..175 (the
# 256x176 frame), -1 = missing.
KEYPOINTS = {
    0: [  # a full standing person
        (40, 88), (70, 88), (72, 64), (110, 58), (145, 55), (72, 112), (110, 118), (145, 121),
        (140, 74), (190, 72), (240, 71), (140, 102), (190, 104), (240, 105),
        (34, 82), (34, 94), (38, 75), (38, 101),
    ],
    1: [  # missing joints; 9 has only x missing, 16 only y missing
        (42, 90), (71, 89), (73, 65), (-1, -1), (146, 57), (73, 113), (111, 119), (147, 122),
        (141, 75), (191, -1), (238, 70), (141, 103), (191, 105), (-1, -1),
        (35, 83), (-1, -1), (-1, 76), (39, 102),
    ],
    2: [  # points on and beyond the borders
        (0, 88), (20, 100), (30, 0), (60, 10), (255, 0), (25, 175), (60, 170), (100, 176),
        (200, 5), (250, 3), (255, 175), (200, 174), (250, 172), (256, 175),
        (3, 0), (2, 175), (5, 3), (5, 173),
    ],
    3: [(-1, -1)] * 18,  # nobody
}


TEMPLATE_KP = (128, 88)  # (y, x) in the 256x176 frame -> centre (128, 128) at 256x256


def _centre(y, x, size=(256, 256), old=(256, 176)):
    """Heatmap centre the official cords_to_map gives, or None when the point is missing."""
    if y == -1 or x == -1:
        return None
    return int(float(y) / old[0] * size[0]), int(float(x) / old[1] * size[1])


def _place(template, t_centre, centre, size=(256, 256)):
    """template (official channel centred at t_centre) moved to centre; zero where not covered."""
    import numpy as np

    out = np.zeros(size, dtype=template.dtype)
    ys = np.arange(size[0]) - centre[0] + t_centre[0]
    xs = np.arange(size[1]) - centre[1] + t_centre[1]
    vy = (ys >= 0) & (ys < template.shape[0])
    vx = (xs >= 0) & (xs < template.shape[1])
    out[np.ix_(vy, vx)] = template[np.ix_(ys[vy], xs[vx])]
    return out


def pose_golden(deepfashion, pose_utils, notes):
    """PisTestDeepFashion.build_pose_img on fixed keypoints, stored losslessly but compactly.

    Channels 0-2 (the skeleton) are k/255 exactly and are stored as uint8 k. Channels 3-20 (the
    heatmaps) are exp(-((y-cy)^2 + (x-cx)^2) / 72) around an integer centre: they are stored as
    their centres plus one official channel (``heat_template``, centre ``heat_template_centre``);
    the script checks that every official channel equals the template moved to its centre
    (zero outside the template's reach), bit for bit, and that missing points give all-zero
    channels. The per-channel float64 sums are stored as well.
    """
    import numpy as np
    import pandas as pd

    template = pose_utils.cords_to_map(np.array([TEMPLATE_KP]), (256, 256), (256, 176))[..., 0]
    t_centre = _centre(*TEMPLATE_KP)
    assert template[t_centre] == 1.0
    rows = []
    for n, kp in KEYPOINTS.items():
        ys = json.dumps([p[0] for p in kp])
        xs = json.dumps([p[1] for p in kp])
        rows.append({"name": f"kp{n}.jpg", "keypoints_y": ys, "keypoints_x": xs})
    ann = pd.DataFrame(rows).set_index("name")
    ds = deepfashion.PisTestDeepFashion.__new__(deepfashion.PisTestDeepFashion)
    ds.annotation_file = ann
    ds.pose_img_size = [256, 256]  # cfg.INPUT.POSE.IMG_SIZE
    out = {"heat_template": template.astype(np.float32), "heat_template_centre": np.asarray(t_centre)}
    skel_exact, heat_exact = True, True
    batch = []
    for n in KEYPOINTS:
        t = ds.build_pose_img(f"/nowhere/kp{n}.jpg")
        batch.append(t)
        a = t.numpy()
        skel = a[:3].astype(np.float64) * 255.0
        r = np.round(skel)
        if np.abs(skel - r).max() > 1e-4 or not np.array_equal((r / 255.0).astype(np.float32), a[:3]):
            skel_exact = False
        centres = []
        for j, (y, x) in enumerate(KEYPOINTS[n]):
            c = _centre(y, x)
            if c is None:
                centres.append((-1, -1))
                heat_exact &= not a[3 + j].any()
            else:
                centres.append(c)
                heat_exact &= np.array_equal(_place(template.astype(np.float32), t_centre, c), a[3 + j])
        out[f"kp/{n}"] = np.asarray(KEYPOINTS[n], dtype=np.int64)
        out[f"kp_y_str/{n}"] = np.asarray(ann.loc[f"kp{n}.jpg", "keypoints_y"])
        out[f"kp_x_str/{n}"] = np.asarray(ann.loc[f"kp{n}.jpg", "keypoints_x"])
        out[f"skeleton_u8/{n}"] = r.astype(np.uint8)
        out[f"heat_centre/{n}"] = np.asarray(centres, dtype=np.int64)
        out[f"heat_sum/{n}"] = a[3:].astype(np.float64).sum(axis=(1, 2))
        notes.setdefault("pose_dtype", str(t.dtype))
        notes.setdefault("pose_shape", list(t.shape))
    notes["pose_skeleton_uint8_exact"] = skel_exact
    notes["pose_heatmaps_equal_template_moved"] = heat_exact
    return out


# ---------------------------------------------------------------------------------------------


def save_checkpoint_like_training(model, unet, out_dir: Path, notes):
    """accelerate's save_state on an Accelerator that prepared (model, unet), as the official
    training does (pose_transfer_train.py: prepare(model, unet, ...), save_state(...))."""
    import torch
    from accelerate import Accelerator

    with tempfile.TemporaryDirectory() as tmp:
        acc = Accelerator(cpu=True, project_dir=tmp)
        m, u = acc.prepare(model, unet)
        acc.save_state(os.path.join(tmp, "checkpoints"))
        written = sorted(os.listdir(os.path.join(tmp, "checkpoints")))
        notes["save_state_wrote"] = written
        for name in ("pytorch_model.bin", "pytorch_model_1.bin"):
            shutil.copyfile(os.path.join(tmp, "checkpoints", name), out_dir / name)
    for name, mod in (("pytorch_model.bin", model), ("pytorch_model_1.bin", unet)):
        sd = torch.load(out_dir / name, map_location="cpu", weights_only=True)
        ref = mod.state_dict()
        notes[f"{name}:weights_only_load"] = "ok"
        notes[f"{name}:keys_equal_state_dict"] = list(sd.keys()) == list(ref.keys())
        notes[f"{name}:values_equal"] = all(torch.equal(sd[k], ref[k]) for k in ref)
        notes[f"{name}:dtypes"] = sorted({str(v.dtype) for v in sd.values()})
        notes[f"{name}:container"] = type(sd).__name__
        notes[f"{name}:zip"] = zip_info(out_dir / name)
        # how the official test loads it: load_state_dict(torch.load(...), strict=False)
        res = mod.load_state_dict(torch.load(out_dir / name, map_location="cpu"), strict=False)
        notes[f"{name}:official_load"] = {"missing": len(res.missing_keys),
                                          "unexpected": len(res.unexpected_keys)}


# ---------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    official, out_dir, notes = start(__doc__, "checkout of YanzuoLu/CFLD (scratch copy)", argv)

    import numpy as np
    import torch

    os.chdir(official)  # the official code resolves pretrained_models/... relative to its root

    import diffusers
    from diffusers import DDPMScheduler

    import models.unet as unet_mod
    import pose_utils
    from datasets import deepfashion
    from defaults import pose_transfer_C
    from models import VariationalAutoencoder
    from pose_transfer_test import sample
    from pose_transfer_train import build_model

    notes["versions"] = {"torch": torch.__version__, "diffusers": diffusers.__version__}

    # published manifest --------------------------------------------------------------------
    pub, pub_buffers, pub_n, pub_trainable, pub_frozen, pub_cfg, pub_unet_cfg = published_manifest(
        official, pose_transfer_C, build_model, unet_mod, notes)

    # tiny models ---------------------------------------------------------------------------
    gen = torch.Generator().manual_seed(SEED_REINIT)
    tmp = Path(tempfile.mkdtemp(prefix="cfld_tiny_"))
    unet_dir, vae_dir = tmp / "unet", out_dir / "vae_tiny"
    tiny_unet_cfg, unet_reinit = write_tiny_unet_folder(official, unet_dir, gen)
    if vae_dir.exists():
        shutil.rmtree(vae_dir)
    tiny_vae_cfg, vae_reinit = write_tiny_vae_folder(official, vae_dir, gen)
    (out_dir / "unet_tiny").mkdir(exist_ok=True)
    shutil.copyfile(unet_dir / "config.json", out_dir / "unet_tiny" / "config.json")

    opts = dict(TINY_OPTS)
    opts["MODEL.UNET_CONFIG.PRETRAINED_PATH"] = str(unet_dir)
    cfg = make_cfg(pose_transfer_C, opts)
    torch.manual_seed(SEED_MODEL)
    model = build_model(cfg)
    model_reinit = _reinit(model.named_parameters(), gen, REINIT_STD)
    unet = unet_mod.UNet(cfg)  # the official constructor: from_pretrained(unet_dir), freezing, processors
    vae = VariationalAutoencoder(pretrained_path=str(vae_dir))
    model.eval()
    unet.eval()
    vae.eval()
    tiny_trainable = sorted(k for k, p in unet.named_parameters() if p.requires_grad)
    scheduler = DDPMScheduler.from_pretrained(cfg.MODEL.SCHEDULER_CONFIG.PRETRAINED_PATH)
    sched_cfg = jsonable(dict(sorted(scheduler.config.items())))
    if "_use_default_values" in sched_cfg:  # a set in diffusers: order varies between runs
        sched_cfg["_use_default_values"] = sorted(sched_cfg["_use_default_values"])

    inp = make_inputs()
    img_cond, pose = to_model_inputs(inp)
    unused = unused_params(model, unet, img_cond, pose, inp["latents"], torch.tensor(UNUSED_T))

    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    outputs = golden(cfg, model, unet, vae, scheduler, inp, sample, accelerator, notes)

    tiny_cfg = _cfg_dict(cfg)
    tiny_cfg["MODEL"]["UNET_CONFIG"]["PRETRAINED_PATH"] = (
        "unet_tiny (config.json here; weights in pytorch_model_1.bin)")
    manifest = {
        "official_commit": "f2ea2a78f4dbee8effd37364f0fc134d1f9fb3ec",
        "published": pub,
        "published_buffers": pub_buffers,
        "published_n_params": pub_n,
        "tiny": {"pytorch_model.bin": _shapes(model), "pytorch_model_1.bin": _shapes(unet)},
        "tiny_buffers": {"pytorch_model.bin": _buffers(model), "pytorch_model_1.bin": _buffers(unet)},
        "tiny_n_params": {"pytorch_model.bin": sum(p.numel() for p in model.parameters()),
                          "pytorch_model_1.bin": sum(p.numel() for p in unet.parameters())},
        "config_published": pub_cfg,
        "config_tiny": tiny_cfg,
        "tiny_opts": TINY_OPTS,
        "unet_config_published": pub_unet_cfg,
        "unet_config_tiny": tiny_unet_cfg,
        "vae_config_tiny": tiny_vae_cfg,
        "scheduler_config_resolved": sched_cfg,
        "trainable": {
            "pytorch_model.bin": "all parameters (nothing in build_model is frozen; pose_transfer_train.py "
                                 "optimises every requires_grad parameter of model and unet)",
            "pytorch_model_1.bin_published": pub_trainable,
            "pytorch_model_1.bin_tiny": tiny_trainable,
        },
        "published_frozen_in_pytorch_model_bin": pub_frozen,
        "unused_in_inference_tiny": unused,
        "reinit_tiny": {"pytorch_model.bin": model_reinit, "pytorch_model_1.bin": unet_reinit,
                        "vae": vae_reinit},
    }

    arrays = {
        "in/src_u8": inp["src_u8"].numpy(),
        "in/pose_u8": inp["pose_u8"].numpy(),
        "in/latents": inp["latents"].numpy(),
    }
    for k, v in outputs.items():
        if v.dtype == torch.uint8:
            arrays[k] = v.numpy()
        elif v.dtype in (torch.int64, torch.int32):
            arrays[k] = v.numpy().astype(np.int64)
        else:
            arrays[k] = _np(v)
    arrays["meta/timesteps"] = np.asarray(notes["timesteps"], dtype=np.int64)
    arrays["meta/seed_sample"] = np.asarray(SEED_SAMPLE, dtype=np.int64)
    np.savez_compressed(out_dir / "golden_tiny.npz", **arrays)

    np.savez_compressed(out_dir / "pose_golden.npz", **pose_golden(deepfashion, pose_utils, notes))

    save_checkpoint_like_training(model, unet, out_dir, notes)
    shutil.rmtree(tmp)

    notes["tiny_n_params"] = manifest["tiny_n_params"]
    notes["n_reinit"] = {k: len(v) for k, v in manifest["reinit_tiny"].items()}
    manifest["observations"] = jsonable(notes)
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=0, separators=(",", ":")) + "\n")
    print(json.dumps(notes, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
