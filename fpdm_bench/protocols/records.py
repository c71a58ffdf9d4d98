"""The protocol records. Each cites the file of the official repository whose evaluation it
reproduces; what that file does is summarised in ``notes`` where it is not captured by a field."""
from __future__ import annotations

from fpdm_bench.protocols import Protocol, register

STANDARD = register(Protocol(
    name="standard",
    description="fpdm-bench default: native size, TF-FID Inception (pytorch-fid), all metrics on every pair",
    source="pytorch-fid (mseitzer/pytorch-fid src/pytorch_fid/fid_score.py) for FID; skimage for SSIM/PSNR",
    metrics=("fid", "kid", "lpips", "ssim", "psnr", "mae", "pose"),
    ssim_variants={"ssim": "uniform51", "ssim_gauss": "gauss1.5"},
    notes="No resize unless generated and target sizes differ (then PIL bicubic to the target size). "
          "Adds pose fidelity (PCKh of MediaPipe keypoints detected on the generated image; needs the "
          "[pose] extra, else reported unavailable). "
          "FID reference: the dataset's reference split (train for DeepFashion, as PIDM/CFLD). "
          "SSIM: the field's window-51 SSIM plus Wang et al.'s Gaussian σ=1.5 SSIM, both with data range 1. "
          "MAE is the plain mean absolute error. Nothing is dropped.",
))

PAIRED = register(Protocol(
    name="paired",
    description="standard's paired metrics only (SSIM/PSNR/MAE; no FID/KID/LPIPS): quick checks and CI",
    source="as standard",
    metrics=("ssim", "psnr", "mae"),
    ssim_variants={"ssim": "uniform51", "ssim_gauss": "gauss1.5"},
    notes="No weight files needed; use it for smoke tests. Not a paper protocol.",
))

FPDM = register(Protocol(
    name="fpdm",
    description="FPDM's evaluation (C2.eval.caculate_metrics.py) at 256x176",
    source="dhlee-work/FPDM C2.eval.caculate_metrics.py + src/metrics/metrics.py + src/metrics/inception.py",
    eval_size=(256, 176),
    resize_library="pil", resize_filter="bicubic", resize_antialias=True,
    metrics=("fid", "kid", "lpips", "ssim", "ssim_256", "psnr", "mae"),
    ssim_variants={"ssim": "uniform51", "ssim_256": "gauss1.5-predrange"},
    fid_backbone="torchvision-inception",
    fid_reference_split="test",
    lpips_net="alex", lpips_drop_remainder=10,
    mae_variant="gfla_normalised",
    notes="All images PIL-resized (bicubic) to the eval size. FID: torchvision ImageNet Inception-v3, "
          "bilinear to 299, ImageNet normalisation; reference = the test-set ground truth "
          "(FID_real_dataset='test'; 'train' is the other choice of the script). LPIPS alex, "
          "normalize=True, in batches of 10 with the remainder dropped. ssim_256: Gaussian σ=1.5, "
          "population covariance, data range = generated max-min. KID is not in the script (added).",
))

FPDM_512 = register(FPDM.with_changes(
    name="fpdm-512",
    description="FPDM's evaluation at 512x352 (its high-resolution table)",
    eval_size=(512, 352),
))

PIDM = register(Protocol(
    name="pidm",
    description="PIDM's evaluation (utils/metrics.py): cv2 bilinear 256x176, train-set FID, 64-remainders dropped",
    source="ankanbhunia/PIDM utils/metrics.py",
    eval_size=(256, 176),
    resize_library="cv2", resize_filter="bilinear", resize_antialias=False,
    metrics=("fid", "kid", "lpips", "ssim", "ssim_256", "psnr", "mae"),
    ssim_variants={"ssim": "uniform51", "ssim_256": "gauss1.2-predrange"},
    fid_backbone="torchvision-inception",
    fid_reference_split="train",
    fid_drop_remainder=64,
    lpips_net="alex", lpips_drop_remainder=64,
    mae_variant="gfla_normalised",
    notes="FID and LPIPS: cv2.resize (INTER_LINEAR) to 176x256, batches of 64 with the remainder "
          "dropped (reference set too). FID backbone: the GFLA-lineage InceptionV3 wrapper over "
          "torchvision's ImageNet Inception. Not reproduced: PIDM computes SSIM/PSNR on its 256x256 "
          "(40-px padded) PNGs; here they are computed at 256x176. ssim_256 uses σ=1.2.",
))

CFLD = register(Protocol(
    name="cfld",
    description="CFLD's evaluation (models/metrics.py): torch bicubic-antialias to 256x176, truncating uint8",
    source="YanzuoLu/CFLD models/metrics.py + pose_transfer_test.py",
    eval_size=(256, 176),
    resize_library="torch", resize_filter="bicubic", resize_antialias=True,
    quantize="truncate",
    metrics=("fid", "kid", "lpips", "ssim", "ssim_256", "psnr"),
    ssim_variants={"ssim": "uniform51", "ssim_256": "gauss1.5-predrange"},
    fid_backbone="torchvision-inception",
    fid_reference_split="train",
    lpips_net="alex",
    notes="Generated images are F.interpolate(bicubic, antialias=True)-resized to the ground-truth size, "
          "then x*255 -> clamp -> .to(uint8), which truncates instead of rounding. FID vs all train "
          "images. No remainder dropped; no MAE in the script.",
))

POCOLD = register(Protocol(
    name="pocold",
    description="PoCoLD's evaluation (metrics.py, GFLA lineage): native size, 64-remainders dropped",
    source="BrandonHanx/PoCoLD metrics.py + eval/inception.py (from GFLA script/metrics.py)",
    eval_size=None,
    metrics=("fid", "kid", "lpips", "ssim", "ssim_256", "psnr", "mae"),
    ssim_variants={"ssim": "uniform51", "ssim_256": "gauss1.5-predrange"},
    fid_backbone="torchvision-inception",
    fid_reference_split="train",
    fid_drop_remainder=64,
    lpips_net="alex", lpips_drop_remainder=64,
    mae_variant="gfla_normalised",
    notes="Images are read as stored (no resize). FID over --fid_real_path (train set) and the generated "
          "folder in batches of 64, remainder dropped; LPIPS through PerceptualSimilarity's legacy "
          "DistModel net-lin alex (same v0.1 weights as the lpips package), batches of 64, remainder "
          "dropped. GFLA's script/metrics.py, which PIDM and PoCoLD adapted, is covered by this record.",
))
