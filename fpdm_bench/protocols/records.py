"""The protocol records. Each cites the file of the official repository whose evaluation it
reproduces; what that file does is summarised in ``notes`` where it is not captured by a field."""
from __future__ import annotations

from fpdm_bench.protocols.base import Protocol, register

STANDARD = register(Protocol(
    name="standard",
    description="fpdm-bench default: native size, TF-FID Inception (pytorch-fid), all metrics on every pair",
    source="pytorch-fid (mseitzer/pytorch-fid src/pytorch_fid/fid_score.py) for FID; skimage for SSIM/PSNR",
    metrics={"fid": {"backbone": "fid-inception"}, "kid": {"backbone": "fid-inception"}, "lpips": {"net": "alex"},
             "ssim": {"variant": "uniform51"}, "ssim_gauss": {"metric": "ssim", "variant": "gauss1.5"},
             "psnr": {}, "mae": {"variant": "mean_abs"}, "pose": {}},
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
    metrics={"ssim": {"variant": "uniform51"}, "ssim_gauss": {"metric": "ssim", "variant": "gauss1.5"},
             "psnr": {}, "mae": {"variant": "mean_abs"}},
    notes="No weight files needed; use it for smoke tests. Not a paper protocol.",
))

FPDM = register(Protocol(
    name="fpdm",
    description="FPDM's evaluation (C2.eval.caculate_metrics.py) at 256x176",
    source="dhlee-work/FPDM C2.eval.caculate_metrics.py + src/metrics/metrics.py + src/metrics/inception.py",
    eval_size=(256, 176),
    resize_library="pil", resize_filter="bicubic", resize_antialias=True,
    metrics={"fid": {"backbone": "torchvision-inception"}, "kid": {"backbone": "torchvision-inception"},
             "lpips": {"net": "alex", "drop_remainder": 10},
             "ssim": {"variant": "uniform51"}, "ssim_256": {"metric": "ssim", "variant": "gauss1.5-predrange"},
             "psnr": {}, "mae": {"variant": "gfla_normalised"}, "l1": {}},
    fid_reference_split="test",
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
    metrics={"fid": {"backbone": "torchvision-inception", "drop_remainder": 64},
             "kid": {"backbone": "torchvision-inception", "drop_remainder": 64},
             "lpips": {"net": "alex", "drop_remainder": 64},
             "ssim": {"variant": "uniform51"}, "ssim_256": {"metric": "ssim", "variant": "gauss1.2-predrange"},
             "psnr": {}, "mae": {"variant": "gfla_normalised"}, "l1": {}},
    fid_reference_split="train",
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
    metrics={"fid": {"backbone": "torchvision-inception"}, "kid": {"backbone": "torchvision-inception"},
             "lpips": {"net": "alex"},
             "ssim": {"variant": "uniform51"}, "ssim_256": {"metric": "ssim", "variant": "gauss1.5-predrange"},
             "psnr": {}},
    fid_reference_split="train",
    notes="Generated images are F.interpolate(bicubic, antialias=True)-resized to the ground-truth size, "
          "then x*255 -> clamp -> .to(uint8), which truncates instead of rounding. FID vs all train "
          "images. No remainder dropped; no MAE in the script.",
))

POCOLD = register(Protocol(
    name="pocold",
    description="PoCoLD's evaluation (metrics.py, GFLA lineage): native size, 64-remainders dropped",
    source="BrandonHanx/PoCoLD metrics.py + eval/inception.py (from GFLA script/metrics.py)",
    eval_size=None,
    metrics={"fid": {"backbone": "torchvision-inception", "drop_remainder": 64},
             "kid": {"backbone": "torchvision-inception", "drop_remainder": 64},
             "lpips": {"net": "alex", "drop_remainder": 64},
             "ssim": {"variant": "uniform51"}, "ssim_256": {"metric": "ssim", "variant": "gauss1.5-predrange"},
             "psnr": {}, "mae": {"variant": "gfla_normalised"}, "l1": {}},
    fid_reference_split="train",
    notes="Images are read as stored (no resize). FID over --fid_real_path (train set) and the generated "
          "folder in batches of 64, remainder dropped; LPIPS through PerceptualSimilarity's legacy "
          "DistModel net-lin alex (same v0.1 weights as the lpips package), batches of 64, remainder "
          "dropped. GFLA's script/metrics.py, which PIDM and PoCoLD adapted, is covered by this record.",
))

STANDARD_DINOV2 = register(STANDARD.with_changes(
    name="standard-dinov2",
    description="standard plus FD-DINOv2 (Stein et al. 2023) and the plain l1: the metrics a 2024+ paper adds",
    source="standard + layer6ai-labs/dgm-eval dgm_eval/models/dinov2.py (FD-DINOv2 preprocessing)",
    metrics={**STANDARD.metrics, "fd_dinov2": {}, "l1": {}},
    notes=STANDARD.notes + " fd_dinov2: Fréchet distance on DINOv2 ViT-L/14 CLS features (needs the "
          "facebook/dinov2-large folder, see `fpdm-bench weights`); same reference set as FID.",
))
