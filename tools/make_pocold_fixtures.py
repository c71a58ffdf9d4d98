"""Produce the PoCoLD reference fixtures by running the *official* PoCoLD code (not our port).

This script contains no official code. It puts a checkout of the official repository
(BrandonHanx/PoCoLD, commit c5c7bb7) on ``sys.path``, imports its modules (``src.model``,
``src.pipeline``, ``src.transform``), builds them at the published size (with empty weights, for
key manifests) and at a tiny size (seeded, for golden arrays), and writes what the port's tests
compare against.

It must be run with a *scratch* venv that can import the official code (torch 2.13 CPU,
diffusers 0.14.0, transformers 4.27.4, huggingface_hub 0.13.4, accelerate 0.18.0,
perceiver-pytorch, torchvision, Pillow, numpy<2, setuptools 80.9 for ``pkg_resources``; see
``tests/fixtures/pocold/README.md``), never with the project's venv. The scratch copy of the
official code is unchanged (``git archive HEAD``); the official code has no xformers or CUDA-only
call on the paths used here::

    cd /work/main
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1 /tmp/scratch/pocold-venv/bin/python \\
        tools/make_pocold_fixtures.py --official /tmp/scratch/pocold --out tests/fixtures/pocold

It prints a JSON of observations (scheduler, saved folder layout, loading checks, branch sizes) to
stdout; the same JSON is stored in ``manifest.json["observations"]``.

What it writes into ``--out``:

``manifest.json``
    state-dict key -> shape for every pipeline component (``unet``, ``rie``, ``channel_mapper``,
    ``vae``) at the published configuration (``train.py --from_scratch`` with ``run.sh``'s flags,
    built with empty weights; the VAE from the ``stabilityai/sd-vae-ft-mse`` configuration) and
    at the tiny one; the configurations; the SD 1.5 scheduler configuration the pipeline folder
    inherits; the resolved scheduler and its 51 timesteps; the tiny pipeline folder's files;
    parameters unused by the full branch; observations.
``golden_tiny.npz``
    seeded raw inputs and the official outputs of every piece: the evaluation transforms
    (source image, DensePose one-hot, constraint maps), one ``DoubleAttention`` (eval output and
    training penalty), the reference encoder, the ``ChannelMapper``, the UNet on the three
    inference branches and in training mode with the constraint penalty, one training loss as
    ``train.py`` assembles it, and the official ``PoseTransferPipeline.__call__`` end to end
    (reference posterior noise, initial latents, the three branches and the guided prediction of
    selected steps, every scheduler step, the decoded images). Written without zip timestamps.
``pipeline_tiny/``
    the tiny components in the folder that the official training writes
    (``PoseTransferPipeline.from_pretrained(<SD 1.5>, unet=, rie=, channel_mapper=, vae=)``
    then ``save_pretrained``, ``train.py:1039-1046``) and that ``inference.py`` loads:
    ``model_index.json``, ``{unet,rie,channel_mapper,vae}/{config.json,diffusion_pytorch_model.bin}``,
    ``scheduler/scheduler_config.json``. As in the training, the VAE is saved in float16
    (``train.py:717`` casts it under ``--mixed_precision fp16``), the other models in float32.
    The golden pipeline run loads its models from there (``torch_dtype=float32``).
"""
from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

from _scratch import jsonable, numpy_of as _np, reinit as _reinit, shapes as _shapes, start, zip_info

OFFICIAL_COMMIT = "c5c7bb71ffef48802db0643173205fc6cd316c90"

# ---------------------------------------------------------------------------------------------
# Published configuration: train.py:405-419 (--from_scratch) with run.sh's flags
# (--use_constraint_penalty; cat_in_channels 25 and cat_out_channels 4 are train.py's defaults).
PUBLISHED_UNET = {"in_channels": 8, "sample_size": 64, "use_constraint_penalty": True, "attn_heads_nums": 8}
PUBLISHED_RIE: dict = {}  # MultiScaleReferenceImageEncoder() with its defaults
PUBLISHED_CM = {"in_channels": 25, "out_channels": 4, "concat": True}
# stabilityai/sd-vae-ft-mse's config.json (train.py:402-404). The hub is not reachable here; these
# are the values of that file (SD's kl-f8 autoencoder), and only they decide the key set.
SD_VAE_FT_MSE = {
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "in_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 256,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
}
# The SD 1.5 folder (run.sh MODEL_NAME) that train.py passes to PoseTransferPipeline.from_pretrained:
# only model_index.json and scheduler/ are read (the other components are given or not in the
# pipeline's signature). Values as in runwayml/stable-diffusion-v1-5 (written here; no hub).
SD15_MODEL_INDEX = {
    "_class_name": "StableDiffusionPipeline",
    "_diffusers_version": "0.6.0",
    "feature_extractor": ["transformers", "CLIPFeatureExtractor"],
    "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
    "scheduler": ["diffusers", "PNDMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}
SD15_SCHEDULER = {
    "_class_name": "PNDMScheduler",
    "_diffusers_version": "0.6.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
    "clip_sample": False,
}

# Tiny configuration. The UNet keeps 2 layers per block (3 resnets per up block), DoubleAttention in
# every block, and gets a cross-attention width different from its own width (32/64 vs 16/32) so
# that a port cannot mix them up. The reference encoder is fixed at 32 groups by the official code
# (get_down_block(..., resnet_groups=32)), so its widths are multiples of 32; its block 1 changes
# width (conv_shortcut) and downsamples, like the published blocks 1-3.
TINY_UNET = {**PUBLISHED_UNET, "sample_size": 8, "block_out_channels": [16, 32],
             "cross_attention_channels": [32, 64], "num_filters": 4, "attn_heads_nums": 2,
             "norm_num_groups": 4}
TINY_RIE = {"down_block_types": ["DownBlock2D"] * 2, "block_out_channels": [32, 64]}
TINY_CM = dict(PUBLISHED_CM)
TINY_VAE = {**SD_VAE_FT_MSE, "block_out_channels": [4, 4, 4, 4], "norm_num_groups": 2,
            "layers_per_block": 1, "sample_size": 64}
HEIGHT, WIDTH = 64, 48  # tiny generation size: latent 8x6 (published 512x384 -> 64x48)
RAW_H, RAW_W = 88, 64  # raw source images / DensePose maps fed to the official transforms
PUB_DP_H, PUB_DP_W = 176, 128  # raw DensePose map for the published-size transform (-> 64x48)
N_PARTS = 25  # train.py --cat_in_channels default; inference.py build_dual_transforms(..., 25, 8)

SEED_UNET = 0  # torch.manual_seed before building the tiny UNet
SEED_RIE = 1  # ... the tiny reference encoder
SEED_CM = 2  # ... the ChannelMapper
SEED_VAE = 3  # ... the tiny VAE
SEED_REINIT = 4  # generator for re-initialising all-zero / all-one parameters
REINIT_STD = 0.1
SEED_INPUTS = 5  # generator for every input tensor
SEED_PIPE_GLOBAL = 6  # torch.manual_seed right before the pipeline call (VAE posterior sample)
PIPE_GENERATOR_SEED = 42  # inference.py: torch.Generator(device="cuda").manual_seed(42); here on CPU
BATCH = 2
T_UNET = 981  # timestep of the single UNet calls (the first inference timestep)
BRANCH_STEPS = (0, 1, 2, 21)  # pipeline steps whose three branches are stored (21: t = 581, w = 3)




def _n(module) -> int:
    return sum(p.numel() for p in module.parameters())


def save_npz(path: Path, arrays: dict) -> None:
    """np.savez_compressed without zip timestamps (numpy stamps the current time)."""
    import numpy as np

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asanyarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())




def write_sd15_folder(folder: Path) -> None:
    (folder / "scheduler").mkdir(parents=True, exist_ok=True)
    (folder / "model_index.json").write_text(json.dumps(SD15_MODEL_INDEX, indent=2) + "\n")
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(SD15_SCHEDULER, indent=2) + "\n")


# ---------------------------------------------------------------------------------------------
def published_manifest(U, R, C, notes):
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL

    with init_empty_weights():
        unet = U(**PUBLISHED_UNET)
        rie = R(**PUBLISHED_RIE)
        cm = C(**PUBLISHED_CM)
        vae = AutoencoderKL(**SD_VAE_FT_MSE)
    mods = {"unet": unet, "rie": rie, "channel_mapper": cm, "vae": vae}
    shapes = {k: _shapes(m) for k, m in mods.items()}
    n = {k: _n(m) for k, m in mods.items()}
    configs = {k: jsonable(dict(m.config)) for k, m in mods.items()}
    buffers = {k: sorted(b for b, _ in m.named_buffers()) for k, m in mods.items()}
    notes["published_n_params"] = n
    notes["published_n_keys"] = {k: len(v) for k, v in shapes.items()}
    notes["published_buffers"] = buffers
    return shapes, n, configs


def build_tiny(U, R, C, gen):
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(SEED_UNET)
    unet = U(**TINY_UNET)
    torch.manual_seed(SEED_RIE)
    rie = R(**TINY_RIE)
    torch.manual_seed(SEED_CM)
    cm = C(**TINY_CM)
    torch.manual_seed(SEED_VAE)
    vae = AutoencoderKL(**TINY_VAE)
    reinit = {}
    for name, m in (("unet", unet), ("rie", rie), ("channel_mapper", cm), ("vae", vae)):
        reinit[name] = _reinit(m.named_parameters(), gen, REINIT_STD)
        m.eval()
    return unet, rie, cm, vae, reinit


def make_inputs():
    import torch

    g = torch.Generator().manual_seed(SEED_INPUTS)
    inp = {}
    inp["src_u8"] = torch.randint(0, 256, (BATCH, RAW_H, RAW_W, 3), generator=g, dtype=torch.uint8)
    # DensePose IUV PNGs as PIL reads them: channel 2 = I (part index, random), channels 0-1 = U, V
    # (a fixed non-zero pattern: the official transform ignores them; compressible)
    for name, shape in (("dp_to_u8", (BATCH, RAW_H, RAW_W)), ("dp_from_u8", (BATCH, RAW_H, RAW_W)),
                        ("dp_pub_u8", (PUB_DP_H, PUB_DP_W))):
        h, w = shape[-2:]
        uv = (torch.arange(h)[:, None] * 7 + torch.arange(w)[None, :] * 3) % 251 + 1
        a = torch.empty(*shape, 3, dtype=torch.uint8)
        a[..., 0] = uv.to(torch.uint8)
        a[..., 1] = (255 - uv).to(torch.uint8)
        a[..., 2] = torch.randint(0, N_PARTS, shape, generator=g, dtype=torch.uint8)
        inp[name] = a
    lat = (BATCH, 4, HEIGHT // 8, WIDTH // 8)
    inp["latents"] = torch.randn(lat, generator=g)
    inp["ref_latents"] = torch.randn(lat, generator=g)
    level1 = (HEIGHT // 16, WIDTH // 16)
    inp["attn_hidden"] = torch.randn(BATCH, TINY_UNET["block_out_channels"][1], *level1, generator=g)
    inp["attn_ref"] = torch.randn(BATCH, TINY_UNET["cross_attention_channels"][1], *level1, generator=g)
    inp["train_x0"] = torch.randn(lat, generator=g)
    inp["train_noise"] = torch.randn(lat, generator=g)
    inp["train_timesteps"] = torch.randint(0, 1000, (BATCH,), generator=g)
    return inp


def run_transforms(transform_mod, inp, notes):
    """The evaluation preprocessing exactly as inference.py:52-93 runs it, on PIL images."""
    import numpy as np
    import torch
    from PIL import Image

    val_tf = transform_mod.build_dual_transforms(HEIGHT, WIDTH, N_PARTS, 8, is_train=False)
    refs, cats, cmaps = [], [], []
    for b in range(BATCH):
        ref = Image.fromarray(inp["src_u8"][b].numpy())
        cat = Image.fromarray(inp["dp_to_u8"][b].numpy())
        ref_cat = Image.fromarray(inp["dp_from_u8"][b].numpy())
        ref, cat = val_tf(ref.convert("RGB"), cat)
        _, ref_cat = val_tf(None, ref_cat)
        notes.setdefault("transform_dtypes", {"ref": str(ref.dtype), "cat": str(cat.dtype)})
        cmaps.append(torch.cat([torch.argmax(cat, dim=0, keepdim=True),
                                torch.argmax(ref_cat, dim=0, keepdim=True)]))
        refs.append(ref)
        cats.append(cat)
    # collate_fn: stack, contiguous, .float()
    out = {
        "ref": torch.stack(refs).contiguous().float(),
        "cat": torch.stack(cats).contiguous().float(),
        "constraint_maps": torch.stack(cmaps).contiguous().float(),
    }
    # published size: Resize((512, 384), ratio=8) gives the DensePose map at 64x48
    pub_tf = transform_mod.build_dual_transforms(512, 384, N_PARTS, 8, is_train=False)
    _, pub_cat = pub_tf(None, Image.fromarray(inp["dp_pub_u8"].numpy()))
    out["pub_cat_index"] = torch.argmax(pub_cat, dim=0).to(torch.uint8)
    notes["pub_cat_shape"] = list(pub_cat.shape)
    # checks of what the official transform does (not used to make any golden)
    eye = np.eye(N_PARTS)
    notes["cat_is_one_hot_of_argmax"] = bool(
        all(np.array_equal(eye[c.argmax(0).numpy()].transpose(2, 0, 1), c.numpy()) for c in cats)
        and np.array_equal(eye[out["pub_cat_index"].numpy()].transpose(2, 0, 1), pub_cat.numpy()))
    def pil(a, size, resample):
        return np.asarray(Image.fromarray(a.numpy()).resize(size, resample))

    small = (WIDTH // 8, HEIGHT // 8)
    pil_nearest = [pil(inp["dp_to_u8"][b], small, Image.NEAREST)[..., 2] for b in range(BATCH)]
    pil_nearest.append(pil(inp["dp_pub_u8"], (48, 64), Image.NEAREST)[..., 2])
    got = [c.argmax(0).numpy() for c in cats] + [out["pub_cat_index"].numpy()]
    notes["cat_index_equals_pil_nearest_of_channel_2"] = all(
        np.array_equal(a, b) for a, b in zip(pil_nearest, got))
    index = inp["dp_pub_u8"][..., 2][None, None].float()
    for mode in ("nearest", "nearest-exact"):
        t = torch.nn.functional.interpolate(index, size=(64, 48), mode=mode)[0, 0].to(torch.uint8)
        key = f"pub_cat_index_equals_torch_{mode.replace('-', '_')}"
        notes[key] = bool(torch.equal(t, out["pub_cat_index"]))
    pil_bilinear = [pil(inp["src_u8"][b], (WIDTH, HEIGHT), Image.BILINEAR) for b in range(BATCH)]
    manual = torch.stack([(torch.from_numpy(a.copy()).permute(2, 0, 1).float() / 255 - 0.5) / 0.5
                          for a in pil_bilinear])
    notes["ref_equals_pil_bilinear_then_normalise_maxabs"] = float((manual - out["ref"]).abs().max())
    return out


# ---------------------------------------------------------------------------------------------
def components(U, unet, rie, cm, inp, tf, notes):
    import torch

    out = {}
    t = torch.tensor(T_UNET)  # a 0-d int64 tensor, as the scheduler's timesteps are
    with torch.no_grad():
        # constraint maps per level (UNet.get_constraint_maps, nearest 1/2**i)
        levels = [U.get_constraint_maps(tf["constraint_maps"], 1 / 2 ** i)
                  for i in range(len(unet.down_blocks))]
        for i, c in enumerate(levels):
            out[f"constraint/level_{i}"] = c.to(torch.uint8)
        # one DoubleAttention: down block 1, attention 0 (query 32, reference 64, 2 heads, 4 filters)
        attn = unet.down_blocks[1].attentions[0]
        h, r = inp["attn_hidden"], inp["attn_ref"]
        o, p = attn(h, encoder_hidden_states=r)
        out["attn/out"] = o
        notes["attn_eval_penalty"] = p if isinstance(p, int) else float(p)
        attn.train()
        o2, pen = attn(h, encoder_hidden_states=r, constraint_maps=levels[1])
        attn.eval()
        out["attn/train_penalty"] = pen.reshape(1)
        notes["attn_train_out_equals_eval_out"] = bool(torch.equal(o, o2))
        notes["attn_scale_param"] = float(attn.scale)

        # reference encoder and channel mapper
        levels_rie = rie(inp["ref_latents"])
        for i, x in enumerate(levels_rie):
            out[f"rie/level_{i}"] = x
        x_cat = cm(inp["latents"], tf["cat"])
        x_null = cm(inp["latents"], tf["cat"] * 0.0)
        out["cm/cat"] = x_cat
        out["cm/null"] = x_null

        # the UNet on the three inference branches (src/pipeline.py:350-369)
        e_null = unet(x_null, t, encoder_hidden_states=None, constraint_maps=None).sample
        e_cat = unet(x_cat, t, encoder_hidden_states=None, constraint_maps=None).sample
        e_all = unet(x_cat, t, encoder_hidden_states=levels_rie, constraint_maps=None).sample
        out["unet/eps_null"], out["unet/eps_cat"], out["unet/eps_all"] = e_null, e_cat, e_all
        out["unet/t"] = t.reshape(1)
        notes["unet_branch_scale"] = {
            "std_null": float(e_null.std()), "maxabs_cat_minus_null": float((e_cat - e_null).abs().max()),
            "maxabs_all_minus_cat": float((e_all - e_cat).abs().max())}

        # training mode: (output, summed constraint penalty), train.py:867-869 argument order
        ts = inp["train_timesteps"]
        unet.train()
        res = unet(x_cat, ts, levels_rie, tf["constraint_maps"])
        unet.eval()
        out["unet/train_eps"] = res[0].sample
        out["unet/train_penalty"] = res[1].reshape(1)
        notes["unet_train_returns"] = f"({type(res[0]).__name__}, {type(res[1]).__name__})"
    return out


def training_loss(sd_dir, unet, rie, cm, inp, tf, notes):
    """One training loss as train.py:822-881 assembles it, without the condition dropout and the
    VAE: ``in/train_x0`` stands for ``vae.encode(target).latent_dist.sample() * 0.18215`` and
    ``in/ref_latents`` for the source's."""
    import torch
    import torch.nn.functional as F
    from diffusers import DDPMScheduler

    sched = DDPMScheduler.from_pretrained(str(sd_dir), subfolder="scheduler")  # train.py:480-482
    notes["train_noise_scheduler"] = jsonable({k: v for k, v in sorted(sched.config.items())
                                               if not k.startswith("_use")})
    out = {}
    x0, noise, ts = inp["train_x0"], inp["train_noise"], inp["train_timesteps"]
    with torch.no_grad():
        noisy = sched.add_noise(x0, noise, ts)
        ehs = rie(inp["ref_latents"], ts)
        x_in = cm(noisy, tf["cat"])
        unet.train()
        pred, pen = unet(x_in, ts, ehs, tf["constraint_maps"])
        unet.eval()
        loss = F.mse_loss(pred.sample.float(), noise.float(), reduction="mean")
    out["train/noisy_latents"] = noisy
    out["train/eps"] = pred.sample
    out["train/mse"] = loss.reshape(1)
    out["train/penalty"] = pen.reshape(1)
    out["train/total"] = (loss + pen).reshape(1)
    return out


def unused_params(unet, rie, cm, inp, tf):
    """Parameters with no gradient after the full (reference + pose) branch in eval mode."""
    import torch

    mods = {"unet": unet, "rie": rie, "channel_mapper": cm}
    for m in mods.values():
        for p in m.parameters():
            p.requires_grad_(True)
            p.grad = None
    with torch.enable_grad():
        eps = unet(cm(inp["latents"], tf["cat"]), torch.tensor(T_UNET),
                   encoder_hidden_states=rie(inp["ref_latents"])).sample
        eps.square().sum().backward()
    res = {k: sorted(n for n, p in m.named_parameters() if p.grad is None) for k, m in mods.items()}
    for m in mods.values():
        for p in m.parameters():
            p.grad = None
    return res


# ---------------------------------------------------------------------------------------------
def save_pipeline_like_training(PoseTransferPipeline, sd_dir, unet, rie, cm, vae, folder: Path, notes):
    """train.py:1039-1046: from_pretrained(<SD 1.5>, channel_mapper=, rie=, vae=, unet=).save_pretrained."""
    if folder.exists():
        shutil.rmtree(folder)
    pipe = PoseTransferPipeline.from_pretrained(str(sd_dir), channel_mapper=cm, rie=rie, vae=vae, unet=unet)
    notes["training_pipeline_scheduler_class"] = type(pipe.scheduler).__name__
    pipe.save_pretrained(str(folder))
    files = {}
    for d, _, fs in sorted(os.walk(folder)):
        for f in sorted(fs):
            p = Path(d) / f
            files[str(p.relative_to(folder))] = p.stat().st_size
    notes["pipeline_folder_files"] = files
    notes["model_index_json"] = json.loads((folder / "model_index.json").read_text())
    for comp in ("unet", "rie", "channel_mapper", "vae"):
        notes[f"{comp}:weights_zip"] = zip_info(folder / comp / "diffusion_pytorch_model.bin")


def load_pipeline_like_inference(PoseTransferPipeline, U, R, C, folder: Path, originals: dict, notes):
    """inference.py:19-43 (float32 instead of float16, CPU instead of CUDA)."""
    import torch

    path = str(folder)
    cm = C.from_pretrained(f"{path}/channel_mapper/", torch_dtype=torch.float32)
    rie = R.from_pretrained(f"{path}/rie/", torch_dtype=torch.float32)
    unet = U.from_pretrained(f"{path}/unet/", attn_heads_nums=TINY_UNET["attn_heads_nums"],
                             torch_dtype=torch.float32)
    pipe = PoseTransferPipeline.from_pretrained(path, unet=unet, rie=rie, channel_mapper=cm,
                                                torch_dtype=torch.float32)
    for name, mod in (("unet", pipe.unet), ("rie", pipe.rie), ("channel_mapper", pipe.channel_mapper),
                      ("vae", pipe.vae)):
        ref = originals[name].state_dict()
        got = mod.state_dict()
        # loaded with torch_dtype=float32: compare values (the saved VAE is float16)
        notes[f"{name}:loaded_equals_saved"] = list(got) == list(ref) and all(
            torch.equal(got[k], ref[k].to(got[k].dtype)) for k in ref)
        sd = torch.load(folder / name / "diffusion_pytorch_model.bin", map_location="cpu", weights_only=True)
        notes[f"{name}:weights_only_load_keys_equal"] = list(sd) == list(ref)
        notes[f"{name}:dtypes"] = sorted({str(v.dtype) for v in sd.values()})
        notes[f"{name}:container"] = type(sd).__name__
    notes["inference_scheduler_class"] = type(pipe.scheduler).__name__
    notes["inference_vae_class"] = type(pipe.vae).__name__
    return pipe


def run_pipeline(pipe, tf, notes):
    """The official PoseTransferPipeline.__call__ with inference.py's arguments, recorded."""
    import diffusers.models.vae as vae_mod
    import numpy as np
    import torch

    import src.pipeline as pipe_mod

    rec = {"vae_noise": [], "init": [], "rie_in": [], "rie_out": [], "unet": [], "steps": []}
    orig_vae_randn, orig_pipe_randn = vae_mod.randn_tensor, pipe_mod.randn_tensor

    def vae_randn(*a, **k):
        r = orig_vae_randn(*a, **k)
        rec["vae_noise"].append(r.clone())
        return r

    def pipe_randn(*a, **k):
        r = orig_pipe_randn(*a, **k)
        rec["init"].append(r.clone())
        return r

    def rie_hook(mod, args, output):
        rec["rie_in"].append(args[0].clone())
        rec["rie_out"].append([o.clone() for o in output])

    def unet_hook(mod, args, kwargs, output):
        rec["unet"].append({"x": args[0].clone(), "t": args[1].clone(),
                            "has_ref": kwargs.get("encoder_hidden_states") is not None,
                            "eps": output.sample.clone()})

    sched = pipe.scheduler
    orig_step = sched.step

    def step(model_output, timestep, sample, **k):
        r = orig_step(model_output, timestep, sample, **k)
        rec["steps"].append({"eps": model_output.clone(), "t": int(timestep), "x": sample.clone(),
                             "prev": r.prev_sample.clone(), "kwargs": sorted(k)})
        return r

    h1 = pipe.rie.register_forward_hook(rie_hook)
    h2 = pipe.unet.register_forward_hook(unet_hook, with_kwargs=True)
    vae_mod.randn_tensor, pipe_mod.randn_tensor, sched.step = vae_randn, pipe_randn, step
    pipe.set_progress_bar_config(disable=True)
    try:
        torch.manual_seed(SEED_PIPE_GLOBAL)
        images = pipe(
            ref=tf["ref"], cat=tf["cat"], height=HEIGHT, width=WIDTH,
            ref_guidance_scale=5, cat_guidance_scale=5, num_inference_steps=50,
            cfg_decay=True, end_cfg=3,
            generator=torch.Generator().manual_seed(PIPE_GENERATOR_SEED),
        ).images
    finally:
        vae_mod.randn_tensor, pipe_mod.randn_tensor = orig_vae_randn, orig_pipe_randn
        del sched.step
        h1.remove()
        h2.remove()

    steps, calls = rec["steps"], rec["unet"]
    n = len(steps)
    notes["pipeline_steps"] = n
    notes["pipeline_unet_calls"] = len(calls)
    notes["pipeline_timesteps"] = [s["t"] for s in steps]
    notes["pipeline_step_kwargs"] = steps[0]["kwargs"]
    notes["pipeline_vae_noise_draws"] = len(rec["vae_noise"])
    notes["pipeline_rie_calls"] = len(rec["rie_in"])
    notes["pipeline_branch_order_has_ref"] = [c["has_ref"] for c in calls[:3]]
    def same_as_draw(x, seed):
        return bool(torch.equal(x, torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))))

    notes["vae_noise_equals_generator_draw"] = same_as_draw(rec["vae_noise"][0], SEED_PIPE_GLOBAL)
    notes["init_latents_equal_generator_draw"] = same_as_draw(rec["init"][0], PIPE_GENERATOR_SEED)
    # the guided prediction recomputed from the recorded branches with the formula of
    # src/pipeline.py:370-377 equals what the pipeline passed to scheduler.step, bit for bit
    exact, scales = True, []
    for k, s in enumerate(steps):
        null, cat, full = (calls[3 * k + j]["eps"] for j in range(3))
        w = max(5 * s["t"] / 1000, 3)
        scales.append(w)
        guided = null + w * (full - cat) + w * (cat - null)
        exact &= torch.equal(guided, s["eps"])
    notes["guided_recomputed_bit_exact"] = bool(exact)
    notes["branch_inputs_consistent"] = bool(all(
        torch.equal(calls[3 * k + 1]["x"], calls[3 * k + 2]["x"]) and int(calls[3 * k]["t"]) == steps[k]["t"]
        for k in range(n)))
    notes["latents_chain_consistent"] = bool(all(torch.equal(steps[k]["prev"], steps[k + 1]["x"])
                                                 for k in range(n - 1)))

    notes["pipeline_inputs_are_transform_outputs"] = True  # ref=transform/ref, cat=transform/cat
    out = {
        "pipe/ref_posterior_noise": rec["vae_noise"][0],
        "pipe/ref_latents": rec["rie_in"][0],
        "pipe/init_latents": rec["init"][0],
        "pipe/timesteps": torch.tensor([s["t"] for s in steps]),
        "pipe/scale": np.asarray(scales, dtype=np.float64),
        "pipe/eps_guided": torch.stack([s["eps"] for s in steps]),
        "pipe/latents": torch.stack([s["prev"] for s in steps]),
    }
    for i, lv in enumerate(rec["rie_out"][0]):
        out[f"pipe/rie/level_{i}"] = lv
    for k in BRANCH_STEPS:
        for j, name in enumerate(("null", "cat", "all")):
            out[f"pipe/branch_{k}/{name}"] = calls[3 * k + j]["eps"]
        out[f"pipe/branch_{k}/x_null"] = calls[3 * k]["x"]
        out[f"pipe/branch_{k}/x_cat"] = calls[3 * k + 1]["x"]
    with torch.no_grad():
        out["pipe/decoded"] = torch.from_numpy(pipe.decode_latents(steps[-1]["prev"]))  # [B,H,W,3] in [0,1]
    out["pipe/images_u8"] = torch.from_numpy(np.stack([np.asarray(im) for im in images]))
    notes["pipeline_image_mode_size"] = [images[0].mode, list(images[0].size)]
    return out


def accelerate_state_files(unet, cm, rie, notes):
    """What accelerator.save_state writes for (unet, channel_mapper, rie) (train.py:685-701, 1018-1021)."""
    import copy

    import torch
    from accelerate import Accelerator

    with tempfile.TemporaryDirectory() as tmp:
        acc = Accelerator(cpu=True)
        mods = acc.prepare(copy.deepcopy(unet), copy.deepcopy(cm), copy.deepcopy(rie))
        acc.save_state(os.path.join(tmp, "checkpoint_1"))
        files = sorted(os.listdir(os.path.join(tmp, "checkpoint_1")))
        keys = {}
        for f, m, name in zip(("pytorch_model.bin", "pytorch_model_1.bin", "pytorch_model_2.bin"), mods,
                              ("unet", "channel_mapper", "rie")):
            sd = torch.load(os.path.join(tmp, "checkpoint_1", f), map_location="cpu", weights_only=True)
            keys[f] = {"module": name, "keys_equal_state_dict": list(sd) == list(m.state_dict())}
    notes["accelerate_save_state_files"] = files
    notes["accelerate_save_state_models"] = keys


# ---------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    t_start = time.time()
    official, out_dir, notes = start(__doc__, "checkout of BrandonHanx/PoCoLD (scratch copy)", argv)

    import accelerate
    import numpy as np
    import PIL
    import torch
    import transformers

    import diffusers
    from src import transform as transform_mod
    from src.model import ChannelMapper as C
    from src.model import MultiScaleReferenceImageEncoder as R
    from src.model import UNet2DDoubleAttentionConditionModel as U
    from src.pipeline import PoseTransferPipeline

    notes["versions"] = {"torch": torch.__version__, "diffusers": diffusers.__version__,
                         "transformers": transformers.__version__, "accelerate": accelerate.__version__,
                         "numpy": np.__version__, "pillow": PIL.__version__}

    pub_shapes, pub_n, pub_configs = published_manifest(U, R, C, notes)

    gen = torch.Generator().manual_seed(SEED_REINIT)
    unet, rie, cm, vae, reinit = build_tiny(U, R, C, gen)
    # train.py:708-717: under --mixed_precision fp16 the frozen VAE is cast to float16, and that VAE
    # object is what the pipeline folder saves (train.py:1001-1009, 1039-1046). The trained models
    # stay float32 (accelerate keeps fp32 weights and autocasts the forward).
    vae.to(dtype=torch.float16)
    originals = {"unet": unet, "rie": rie, "channel_mapper": cm, "vae": vae}

    inp = make_inputs()
    tf = run_transforms(transform_mod, inp, notes)
    outputs = components(U, unet, rie, cm, inp, tf, notes)

    tmp = Path(tempfile.mkdtemp(prefix="pocold_sd15_"))
    sd_dir = tmp / "stable-diffusion-v1-5"
    write_sd15_folder(sd_dir)
    outputs.update(training_loss(sd_dir, unet, rie, cm, inp, tf, notes))
    unused = unused_params(unet, rie, cm, inp, tf)

    folder = out_dir / "pipeline_tiny"
    save_pipeline_like_training(PoseTransferPipeline, sd_dir, unet, rie, cm, vae, folder, notes)
    pipe = load_pipeline_like_inference(PoseTransferPipeline, U, R, C, folder, originals, notes)
    sched_cfg = jsonable(dict(sorted(pipe.scheduler.config.items())))
    pipe.scheduler.set_timesteps(50)
    sched_timesteps = pipe.scheduler.timesteps.tolist()
    outputs.update(run_pipeline(pipe, tf, notes))
    accelerate_state_files(unet, cm, rie, notes)
    shutil.rmtree(tmp)

    arrays = {
        "in/src_u8": inp["src_u8"].numpy(),
        "in/dp_to_u8": inp["dp_to_u8"].numpy(),
        "in/dp_from_u8": inp["dp_from_u8"].numpy(),
        "in/dp_pub_u8": inp["dp_pub_u8"].numpy(),
        "in/latents": inp["latents"].numpy(),
        "in/ref_latents": inp["ref_latents"].numpy(),
        "in/attn_hidden": inp["attn_hidden"].numpy(),
        "in/attn_ref": inp["attn_ref"].numpy(),
        "in/train_x0": inp["train_x0"].numpy(),
        "in/train_noise": inp["train_noise"].numpy(),
        "in/train_timesteps": inp["train_timesteps"].numpy().astype(np.int64),
        "transform/ref": tf["ref"].numpy(),
        "transform/cat": tf["cat"].numpy(),
        "transform/constraint_maps": tf["constraint_maps"].numpy(),
        "transform/pub_cat_index": tf["pub_cat_index"].numpy(),
        "meta/seeds": np.asarray([SEED_UNET, SEED_RIE, SEED_CM, SEED_VAE, SEED_REINIT, SEED_INPUTS,
                                  SEED_PIPE_GLOBAL, PIPE_GENERATOR_SEED], dtype=np.int64),
    }
    for k, v in outputs.items():
        if isinstance(v, np.ndarray):
            arrays[k] = v
        elif v.dtype == torch.uint8:
            arrays[k] = v.numpy()
        elif v.dtype in (torch.int64, torch.int32):
            arrays[k] = v.numpy().astype(np.int64)
        else:
            arrays[k] = _np(v)
    save_npz(out_dir / "golden_tiny.npz", arrays)

    manifest = {
        "official_commit": OFFICIAL_COMMIT,
        "published": pub_shapes,
        "published_n_params": pub_n,
        "tiny": {k: _shapes(m) for k, m in originals.items()},
        "tiny_n_params": {k: _n(m) for k, m in originals.items()},
        "config_published": pub_configs,
        "config_tiny": {k: jsonable(dict(m.config)) for k, m in originals.items()},
        "tiny_kwargs": {"unet": TINY_UNET, "rie": TINY_RIE, "channel_mapper": TINY_CM, "vae": TINY_VAE},
        "sd15_model_index": SD15_MODEL_INDEX,
        "sd15_scheduler_config": SD15_SCHEDULER,
        "scheduler_config_resolved": sched_cfg,
        "scheduler_timesteps_50": sched_timesteps,
        "unused_in_full_branch_tiny": unused,
        "reinit_tiny": reinit,
        "sizes": {"tiny_generation_hw": [HEIGHT, WIDTH], "raw_hw": [RAW_H, RAW_W],
                  "published_dp_raw_hw": [PUB_DP_H, PUB_DP_W], "batch": BATCH,
                  "branch_steps": list(BRANCH_STEPS)},
    }
    notes["tiny_n_params"] = manifest["tiny_n_params"]
    notes["n_reinit"] = {k: len(v) for k, v in reinit.items()}
    notes["seconds"] = round(time.time() - t_start, 1)
    manifest["observations"] = jsonable(notes)
    obs = dict(manifest["observations"])
    obs.pop("seconds")  # the stored manifest must not change between runs
    manifest["observations"] = obs
    text = json.dumps(manifest, indent=0, separators=(",", ":"))
    (out_dir / "manifest.json").write_text(text + "\n")
    print(json.dumps(notes, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
