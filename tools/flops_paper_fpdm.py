"""FLOPs per generated image of the paper-config FPDM, counted with torch.utils.flop_counter.FlopCounterMode
on meta-device modules of the paper's shapes (random init; weights do not matter for FLOPs).
Mirrors reference_impl/pipeline.py FPDMPipeline.__call__ with guidance != 1 (three branches batched into
one UNet call per step). FlopCounterMode counts matmul/conv/attention (FLOPs = 2 x MACs) only; norms,
activations, softmax, scheduler arithmetic and resizes are not counted.
The GPU wall-time estimates of docs/sweeps-profiles-scaling.md ("Full splits on several GPUs and machines") divide this count
by an effective throughput; see there for the assumptions.
Run: .venv/bin/python tools/flops_paper_fpdm.py [OUT.json]   (seconds: nothing is allocated)"""
import copy
import json
import sys
from pathlib import Path

import torch
from torch.nn.attention import sdpa_kernel, SDPBackend
from torch.utils.flop_counter import FlopCounterMode

import fpdm_bench  # noqa: F401  (torchvision shim, must precede transformers/diffusers)
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
from fpdm_bench_reference.adapter import SAMPLING_DEFAULTS
from fpdm_bench_reference.config import load_config
from fpdm_bench_reference.pipeline import steps_run
from fpdm_bench_reference.stage1.model import FusionModel
from fpdm_bench_reference.stage2.model import Stage2Model

SD21_VAE = dict(act_fn="silu", block_out_channels=[128, 256, 512, 512], down_block_types=["DownEncoderBlock2D"] * 4,
                up_block_types=["UpDecoderBlock2D"] * 4, in_channels=3, out_channels=3, latent_channels=4,
                layers_per_block=2, norm_num_groups=32, sample_size=768)
SD21_UNET = dict(act_fn="silu", attention_head_dim=[5, 10, 20, 20], block_out_channels=[320, 640, 1280, 1280],
                 center_input_sample=False, cross_attention_dim=1024,
                 down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
                 up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3, downsample_padding=1,
                 flip_sin_to_cos=True, freq_shift=0, in_channels=4, out_channels=4, layers_per_block=2,
                 mid_block_scale_factor=1, norm_eps=1e-5, norm_num_groups=32, sample_size=96,
                 upcast_attention=True, use_linear_projection=True)
DINOV2_LARGE = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, mlp_ratio=4, patch_size=14,
                    image_size=518, layerscale_value=1.0, use_swiglu_ffn=False, _attn_implementation="eager")
CLIP_L14 = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                patch_size=14, image_size=224, projection_dim=768, hidden_act="quick_gelu")


def count(fn):
    with sdpa_kernel(SDPBackend.MATH), torch.no_grad():
        m = FlopCounterMode(display=False, depth=None)
        with m:
            out = fn()
    g = m.get_flop_counts()["Global"]
    return m.get_total_flops(), {str(k).split(".")[-1] if "." in str(k) else str(k): v for k, v in g.items()}, out


def main():
    cfg2 = copy.deepcopy(load_config("stage2", "paper")["stage2"])
    cfg1 = load_config("stage1", "paper")["stage1"]
    cfg2["vae"] = {"kind": "tiny", "config": SD21_VAE}
    cfg2["unet"] = {"kind": "tiny", "config": SD21_UNET}
    cfg2["source_encoder"] = dict(cfg2["source_encoder"], kind="tiny", config=DINOV2_LARGE)
    with torch.device("meta"):
        s2 = Stage2Model(cfg2, fusion_dim=768).eval()
        clip_cfg = CLIPVisionConfig(**CLIP_L14)
        clip_cfg._attn_implementation = "eager"
        s1 = FusionModel(dict(cfg1, tower="saved"), tower=CLIPVisionModelWithProjection(clip_cfg)).eval()
    params = {k: v for k, v in s2.count_parameters().items()}
    params["stage1"] = sum(p.numel() for p in s1.parameters())
    H, W = s2.resolution
    C, h, w = s2.latent_shape
    steps = steps_run(SAMPLING_DEFAULTS["steps"], SAMPLING_DEFAULTS["source_strength"])
    guided = SAMPLING_DEFAULTS["guidance"] != 1.0
    nb = 3 if guided else 1
    dev = "meta"
    src = torch.rand(1, 3, H, W, device=dev)            # one source image (any size: encoders resize)
    res = {}
    f, ops, tokens = count(lambda: s2.encode_source(src))
    res["dinov2_large_512x512"] = (f, ops, f"tokens {tuple(tokens.shape)} (CLS kept: drop_cls={cfg2['source_encoder']['drop_cls']})")
    s = s1.image_size
    pose224 = torch.rand(1, 3, s, s, device=dev)
    f, ops, fusion = count(lambda: s1.fuse(src, torch.zeros(1, 18, 2, device=dev), size=(H, W),
                                           preprocess=cfg2.get("fusion_preprocess"), pose_images=pose224))
    res["stage1_clip_vitl14_x2_plus_combiner"] = (f, ops, "CLIP tower on the source (squash 224) and on the pose image")
    f1, ops1, _ = count(lambda: s1.tower(pixel_values=pose224))
    res["  (one CLIP ViT-L/14 224 tower pass)"] = (f1, ops1, "sub-item, included in the line above")
    pose = torch.rand(1, 3, H, W, device=dev)
    tok3, fus3, pose3 = tokens.repeat(nb, 1, 1), fusion.repeat(nb, 1), pose.repeat(nb, 1, 1, 1)
    no = torch.ones(1, dtype=torch.bool, device=dev)
    yes = ~no
    f, ops, cond = count(lambda: s2.project(tok3, fus3, pose3, drop_source=torch.cat([no, yes, yes]),
                                            drop_fusion=torch.cat([no, no, yes]), drop_pose=torch.cat([no, yes, yes])))
    res[f"project_x{nb} (source_proj + fusion_proj + pose_embed, once per image)"] = (f, ops, "")
    fp, opsp, _ = count(lambda: s2.pose_embed(pose3))
    res["  (pose_embed alone, batch 3)"] = (fp, opsp, "sub-item, included in the line above")
    x = torch.randn(nb, C, h, w, device=dev)
    t = torch.tensor(981, device=dev)
    f, ops, out = count(lambda: s2.denoise(x, t, cond))
    res[f"unet_one_call_batch{nb}"] = (f, ops, f"latent {C}x{h}x{w}, context {tuple(cond.hidden_states.shape)}")
    unet_call = f
    f, ops, img = count(lambda: s2.decode_latents(torch.randn(1, C, h, w, device=dev)))
    res["vae_decoder"] = (f, ops, f"out {tuple(img.shape)}")
    per_image = (res["dinov2_large_512x512"][0] + res["stage1_clip_vitl14_x2_plus_combiner"][0]
                 + res[f"project_x{nb} (source_proj + fusion_proj + pose_embed, once per image)"][0]
                 + steps * unet_call + res["vae_decoder"][0])
    # reference: plain SD 2.1 UNet at 512x512 (64x64 latents), batch 2 (CFG), 77 text tokens
    f_sd, _, _ = count(lambda: s2.unet(torch.randn(2, 4, 64, 64, device=dev), t,
                                      encoder_hidden_states=torch.randn(2, 77, 1024, device=dev),
                                      class_labels=torch.zeros(2, 1280, device=dev)).sample)
    out = {"sampling": {**SAMPLING_DEFAULTS, "steps_run": steps, "unet_calls": steps, "unet_batch": nb,
                        "nfe_per_image": steps * nb},
           "resolution": [H, W], "latent": [C, h, w], "params": params,
           "components": {k: {"gflops": v[0] / 1e9, "ops_gflops": {o: n / 1e9 for o, n in v[1].items()}, "note": v[2]}
                          for k, v in res.items()},
           "unet_all_steps_gflops": steps * unet_call / 1e9,
           "per_image_total_gflops": per_image / 1e9,
           "ref_sd21_unet_512x512_batch2_77tok_gflops": f_sd / 1e9}
    print(json.dumps(out, indent=1))
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
