"""The protocol records. Each cites the file of the official repository whose evaluation it
reproduces; what that file does is summarised in ``notes`` where it is not captured by a field.

Each record is registered by name through the ``fpdm_bench.protocols`` entry-point group
(pyproject.toml: ``standard = "fpdm_bench.protocols.records:STANDARD"``), as a third-party package
registers its own; nothing here registers on import.
"""
from __future__ import annotations

from fpdm_bench.protocols.base import Protocol

# PIDM's FID/LPIPS see cv2.resize(float32 image, (176, 256)) with INTER_LINEAR, not rounded.
PIDM_VIEW = {"size": [256, 176], "library": "cv2", "filter": "bilinear", "antialias": False, "quantize": "none"}

STANDARD = Protocol(
    name="standard",
    description="fpdm-bench default: native size, TF-FID Inception (pytorch-fid), all metrics on every pair",
    source="pytorch-fid (mseitzer/pytorch-fid src/pytorch_fid/fid_score.py) for FID; skimage for SSIM/PSNR",
    metrics={"fid": {"backbone": "fid-inception"}, "kid": {"backbone": "fid-inception"}, "lpips": {"net": "alex"},
             "ssim": {"variant": "uniform51"}, "ssim_gauss": {"metric": "ssim", "variant": "gauss1.5"},
             "psnr": {}, "mae": {"variant": "mean_abs"}, "pose": {}},
    citations={"fid": "mseitzer/pytorch-fid src/pytorch_fid/fid_score.py (TF-FID Inception, pool3 features)",
               "ssim": "skimage.metrics.structural_similarity(win_size=51, data_range=1): the papers' SSIM"},
    notes="No resize unless generated and target sizes differ (then PIL bicubic to the target size). "
          "Adds pose fidelity (PCKh of MediaPipe keypoints detected on the generated image; needs the "
          "[pose] extra, else reported unavailable). "
          "FID reference: the dataset's reference split (train for DeepFashion, as PIDM/CFLD). "
          "SSIM: the field's window-51 SSIM plus Wang et al.'s Gaussian σ=1.5 SSIM, both with data range 1. "
          "MAE is the plain mean absolute error. Nothing is dropped.",
)

PAIRED = Protocol(
    name="paired",
    description="standard's paired metrics only (SSIM/PSNR/MAE; no FID/KID/LPIPS): quick checks and CI",
    source="as standard",
    metrics={"ssim": {"variant": "uniform51"}, "ssim_gauss": {"metric": "ssim", "variant": "gauss1.5"},
             "psnr": {}, "mae": {"variant": "mean_abs"}},
    notes="No weight files needed; use it for smoke tests. Not a paper protocol.",
)

# The paper protocols. Line numbers: dhlee-work/FPDM @7d90524, ankanbhunia/PIDM @e4f1d88,
# YanzuoLu/CFLD @f2ea2a7, BrandonHanx/PoCoLD @c5c7bb7 (RenYurui/Global-Flow-Local-Attention @3afa8fe).
TV_INCEPTION = ("torchvision ImageNet Inception-v3 blocks Conv2d_1a..Mixed_7c + average pool (2048-d); input "
                "bilinear to 299 without antialias, then torchvision's transform_input affine "
                "x*std/0.5 + (mean-0.5)/0.5 applied to [0,1] pixels (neither ImageNet mean/std normalisation nor "
                "[-1, 1]): the GFLA-lineage wrapper, as metrics/inception.py computes it")
ADDED_KID = "KID is not in the official script: added here (same features, same reference set)."

FPDM = Protocol(
    name="fpdm",
    description="FPDM's evaluation (C2.eval.caculate_metrics.py) at 256x176",
    source="dhlee-work/FPDM C2.eval.caculate_metrics.py + src/metrics/metrics.py + src/metrics/inception.py",
    eval_size=(256, 176),
    resize_library="pil", resize_filter="bicubic", resize_antialias=True,
    metrics={"fid": {"backbone": "torchvision-inception"}, "kid": {"backbone": "torchvision-inception"},
             "lpips": {"net": "alex", "drop_remainder": 10},
             "ssim": {"variant": "uniform51"}, "ssim_256": {"metric": "ssim", "variant": "gauss1.5-predrange"},
             "psnr": {}, "mae": {"variant": "gfla_normalised"}, "l1": {}},
    reference="test-targets",
    generated_name="{source}_2_{target}.png",
    citations={
        "eval_size": "C2.eval.caculate_metrics.py:73 (_img_size (352, 512) by default; (176, 256) is the "
                     "commented alternative on the same line)",
        "resize_library": "C2.eval.caculate_metrics.py:18-34,74,81 (torchvision Resize on PIL images = PIL "
                          "bicubic); src/metrics/metrics.py:357-360,512-517 (PIL bicubic); ground truth read "
                          "from the 750x1101 originals (C2:54-58)",
        "reference": "C2.eval.caculate_metrics.py:36,64-71 (FID_real_dataset='test': the evaluated pairs' "
                     "unique targets; 'train' = every image under img/ that is not one of them)",
        "fid": "src/metrics/inception.py:59,120-127 (" + "torchvision inception_v3(pretrained=True), "
               "bilinear 299, transform_input affine on [0,1]); C2:74-87 (batches of 64, nothing dropped)",
        "lpips": "src/metrics/metrics.py:475,530 (LPIPS alex v0.1, normalize=True); C2:91 + metrics.py:497-505 "
                 "(batches of 10, the last N % 10 pairs dropped)",
        "ssim": "src/metrics/metrics.py:290,372-373 (win_size 51, data_range 1, uniform window, sample covariance)",
        "ssim_256": "src/metrics/metrics.py:377-381 (x255, gaussian sigma 1.5, population covariance, "
                    "data_range = prediction max - min)",
        "psnr": "src/metrics/metrics.py:371 (data_range 1)",
        "mae": "src/metrics/metrics.py:447-450 (sum|a-b| / sum(a+b))",
        "l1": "src/metrics/metrics.py:441-444 (mean|a-b|)",
        "generated_name": "C1.test_Diffusion_model.py:117-123 (<source>_2_<target>.png, .jpg kept)",
    },
    notes="All images PIL-resized (bicubic) once, from the files, to the eval size. FID: " + TV_INCEPTION
          + "; reference = the unique targets of the evaluated pairs. LPIPS alex, normalize=True, in batches of "
          "10: the script drops the last N % 10 pairs in unsorted glob order (filesystem order); here the last in "
          "sorted file-name order (none for the 8,570 test pairs). ssim_256: Gaussian σ=1.5, population "
          "covariance, data range = generated max-min. The script prints MAE and L1 but not in its summary line. "
          + ADDED_KID,
)

FPDM_512 = FPDM.with_changes(
    name="fpdm-512",
    description="FPDM's evaluation at 512x352 (its high-resolution table): ground truth from the 750x1101 originals",
    eval_size=(512, 352),
    citations={**FPDM.citations, "eval_size": "C2.eval.caculate_metrics.py:73 (_img_size (352, 512), the default)"},
)

PIDM = Protocol(
    name="pidm",
    description="PIDM's evaluation (utils/metrics.py): SSIM/PSNR/MAE at 256x256, FID/LPIPS at cv2 176x256, "
                "train-set FID, 64-remainders dropped",
    source="ankanbhunia/PIDM utils/metrics.py + utils/inception.py + data/prepare_data.py",
    eval_size=(256, 256),
    resize_library="pil", resize_filter="bicubic", resize_antialias=True,
    metrics={"fid": {"backbone": "torchvision-inception", "drop_remainder": 64, "view": PIDM_VIEW},
             "kid": {"backbone": "torchvision-inception", "drop_remainder": 64, "view": PIDM_VIEW},
             "lpips": {"net": "alex", "drop_remainder": 64, "view": PIDM_VIEW},
             "ssim": {"variant": "uniform51"}, "ssim_256": {"metric": "ssim", "variant": "gauss1.2-predrange"},
             "psnr": {}, "mae": {"variant": "gfla_normalised"}, "l1": {}},
    reference="train",
    generated_name="{pair_id}_vis.png",
    citations={
        "eval_size": "data/prepare_data.py:20-30 (the 750x1101 originals squeezed to 256x256, PIL bicubic, "
                     "PNG; no 40-px padding anywhere); utils/metrics.py:329-330 (SSIM/PSNR/MAE on the 256x256 "
                     "files, no resize)",
        "fid": "utils/metrics.py:52,98-121,169-179 (cv2.resize of float32 to 176x256, INTER_LINEAR, not "
               "rounded; batches of 64, the last N % 64 images dropped; the batch lives on the FID object and "
               "the reference set, read first, shrinks it to its size when smaller, for the generated set too); "
               "utils/inception.py:59,121-128",
        "lpips": "utils/metrics.py:454,465,490,503-504,520 (alex on the cv2 176x256 floats /127.5-1; batches of "
                 "64, the last N % 64 pairs in sorted file order dropped)",
        "ssim": "utils/metrics.py:342-343 (compare_ssim win_size 51, data_range 1, multichannel)",
        "ssim_256": "utils/metrics.py:347-351 (gaussian sigma 1.2 -> 9x9, population covariance, data_range = "
                    "prediction max - min)",
        "psnr": "utils/metrics.py:341", "mae": "utils/metrics.py:411-419", "l1": "utils/metrics.py:411-419",
        "reference": "utils/metrics.py:644-646 (train_256x256_pngs: the training images)",
        "generated_name": "utils/gen.py:149-155 (<source>_2_<target>_vis.png)",
    },
    notes="Real images are squeezed to 256x256 (PIL bicubic, rounded: PIDM's PNGs) and SSIM/PSNR/MAE/L1 are "
          "computed there; FID, KID and LPIPS see every image (generated, ground truth, reference) cv2-resized "
          "(INTER_LINEAR) to 176x256 as float32 without rounding. FID: " + TV_INCEPTION + ". Remainders of 64 are "
          "dropped in sorted file-name order (the script takes FID's in pathlib glob order, which depends on the "
          "file system); a reference set of n < 64 images shrinks FID's (and KID's) batch to n, so the generated "
          "set is cut to a multiple of n, as the script does on a run that computes the reference statistics "
          "(one that finds its statistics.npz keeps 64). PIDM's own generator truncates its outputs to uint8; a harness run rounds. "
          "Scoring needs ground truth of at least 256x256 (the originals), else --allow-upsampled. " + ADDED_KID,
)

CFLD = Protocol(
    name="cfld",
    description="CFLD's evaluation (models/metrics.py): generated torch bicubic-antialias + truncating uint8, "
                "ground truth PIL bicubic",
    source="YanzuoLu/CFLD models/metrics.py + pose_transfer_test.py + datasets/deepfashion.py",
    eval_size=(256, 176),
    resize_library="torch", resize_filter="bicubic", resize_antialias=True,
    quantize="truncate",
    real_resize={"library": "pil", "filter": "bicubic", "antialias": True, "quantize": "round"},
    metrics={"fid": {"backbone": "torchvision-inception"}, "kid": {"backbone": "torchvision-inception"},
             "lpips": {"net": "alex"},
             "ssim": {"variant": "uniform51"}, "ssim_256": {"metric": "ssim", "variant": "gauss1.5-predrange"},
             "psnr": {}},
    reference="train-list",
    citations={
        "eval_size": "configs/fashion_256.yaml:2 + defaults/deepfashion.py:112 (TEST.IMG_SIZE 256x176)",
        "resize_library": "pose_transfer_test.py:119 (F.interpolate bicubic, antialias=True, to the ground-truth "
                          "size)",
        "quantize": "pose_transfer_test.py:120-122 (x*255, clamp, .to(uint8): truncation)",
        "real_resize": "datasets/deepfashion.py:184-187,203-208 (transforms.Resize on a PIL image = PIL bicubic, "
                       "rounded to uint8)",
        "reference": "datasets/deepfashion.py:232-258 (every image in train_highres) + "
                     "generate_fashion_datasets.py:24-29,47-48 (train_highres = the images of train.lst)",
        "fid": "models/metrics.py:20-41,90-93 (torchvision inception_v3 IMAGENET1K_V1, bilinear 299, "
               "transform_input affine on [0,1])",
        "lpips": "models/metrics.py:44,62 (alex, normalize=True)",
        "ssim": "models/metrics.py:76 (win_size 51, data_range 1)",
        "ssim_256": "models/metrics.py:78-82 (gaussian sigma 1.5, population covariance, prediction range)",
        "psnr": "models/metrics.py:75",
    },
    notes="Generated images are F.interpolate(bicubic, antialias=True)-resized to the ground-truth size, then "
          "x*255 -> clamp -> .to(uint8), which truncates instead of rounding; real images (ground truth, "
          "reference set) go through PIL bicubic with rounding. FID reference: every image named in the data "
          "root's train.lst (CFLD's train_highres); where there is no train.lst the annotation CSV's train images "
          "are used and results.json says so. FID: " + TV_INCEPTION + ". No remainder dropped; no MAE in the "
          "script. " + ADDED_KID,
)

POCOLD = Protocol(
    name="pocold",
    description="PoCoLD's evaluation (metrics.py, GFLA lineage): native size, 64-remainders dropped",
    source="BrandonHanx/PoCoLD metrics.py + eval/inception.py (from GFLA script/metrics.py)",
    eval_size=None,
    metrics={"fid": {"backbone": "torchvision-inception", "drop_remainder": 64},
             "kid": {"backbone": "torchvision-inception", "drop_remainder": 64},
             "lpips": {"net": "alex", "drop_remainder": 64},
             "ssim": {"variant": "uniform51"}, "ssim_256": {"metric": "ssim", "variant": "gauss1.5-predrange"},
             "psnr": {}, "mae": {"variant": "gfla_normalised"}, "l1": {}},
    reference="train",
    generated_name="{pair_id}_vis.png",
    citations={
        "eval_size": "metrics.py:100-106,349-352 (images read as stored, no resize)",
        "fid": "metrics.py:51,99,157-188 (batches of 64, the last N % 64 dropped, pathlib glob order; a "
               "reference set smaller than 64, read first, shrinks the object's batch for the generated set); "
               "eval/inception.py:60 (torchvision inception_v3(pretrained=True))",
        "lpips": "metrics.py:13,506-510,521,531-534,551-574 (PerceptualSimilarity DistModel net-lin alex on "
                 "x/127.5-1; batches of 64, the last N % 64 pairs in sorted file order dropped)",
        "ssim": "metrics.py:368-376 (win_size 51, data_range 1)",
        "ssim_256": "metrics.py:382-392 (on uint8, gaussian sigma 1.5, prediction range)",
        "psnr": "metrics.py:363-367", "mae": "metrics.py:472-475", "l1": "metrics.py:466-469",
        "generated_name": "inference.py:83-86 (<from>_2_<to>_vis.png)",
        "reference": "metrics.py:753-765 (--fid_real_path: the training images)",
    },
    notes="Images are read as stored (no resize). FID over --fid_real_path (train set) and the generated "
          "folder in batches of 64, remainder dropped (in sorted file-name order here; the script's pathlib "
          "order depends on the file system). LPIPS: the script imports PerceptualSimilarity's DistModel, which "
          "the pinned submodule commit (31bc127, lpips 0.1.4 layout) no longer has (removed in c33f89e); the "
          "last commit with it (6abcdd1) loads the same v0.1 alex weights (identical git blob), so LPIPS here is "
          "the lpips package's v0.1 alex on [-1, 1] inputs. FID: " + TV_INCEPTION + ". GFLA's script/metrics.py, "
          "which PIDM and PoCoLD adapted, is covered by this record. " + ADDED_KID,
)

STANDARD_DINOV2 = STANDARD.with_changes(
    name="standard-dinov2",
    description="standard plus FD-DINOv2 (Stein et al. 2023) and the plain l1: the metrics a 2024+ paper adds",
    source="standard + layer6ai-labs/dgm-eval dgm_eval/models/dinov2.py (FD-DINOv2 preprocessing)",
    metrics={**STANDARD.metrics, "fd_dinov2": {}, "l1": {}},
    notes=STANDARD.notes + " fd_dinov2: Fréchet distance on DINOv2 ViT-L/14 CLS features (needs the "
          "facebook/dinov2-large folder, see `fpdm-bench weights`); same reference set as FID.",
)

STANDARD_PLUS = STANDARD_DINOV2.with_changes(
    name="standard-plus",
    description="standard-dinov2 plus precision/recall/density/coverage (on FID's Inception features) and CMMD",
    source="standard-dinov2 + clovaai/generative-evaluation-prdc prdc/prdc.py (PRDC) + google-research/"
           "google-research cmmd/ (CMMD)",
    metrics={**STANDARD_DINOV2.metrics, "prdc": {"backbone": "fid-inception", "nearest_k": 5}, "cmmd": {}},
    citations={**STANDARD_DINOV2.citations,
               "prdc": "clovaai/generative-evaluation-prdc prdc/prdc.py compute_prdc (k-NN radii = the (k+1)-th "
                       "smallest distance, itself included; strict <); nearest_k 5: Naeem et al. 2020's default",
               "cmmd": "google-research/google-research cmmd/distance.py (_SIGMA 10, _SCALE 1000, biased MMD²), "
                       "cmmd/embedding.py (vit_l14_336px, CLIP mean/std), cmmd/io_util.py (centre crop, PIL bicubic "
                       "336)"},
    notes=STANDARD_DINOV2.notes + " prdc: precision, recall, density and coverage (k = 5) of the generated images' "
          "FID Inception features (the features FID and KID use, extracted once) against FID's reference set (every "
          "reference image up to 10,000, else 10,000 evenly spaced, KID's subset). cmmd: MMD of L2-normalised CLIP "
          "ViT-L/14@336 embeddings, Gaussian kernel sigma 10, x1000 (needs the openai/clip-vit-large-patch14-336 "
          "folder, see `fpdm-bench weights`); same reference set.",
)

# Video datasets (PHOENIX): line numbers thunil/TecoGAN @bc747a4, universome/stylegan-v @3fecd69.
PHOENIX = STANDARD.with_changes(
    name="phoenix",
    description="PHOENIX videos: standard's metrics (what the PHOENIX bench scores) plus the sequence metrics "
                "over each video's frames: flicker, TecoGAN's tOF and tLP, FVD on 16-frame clips",
    source="standard + thunil/TecoGAN metrics.py (tOF, tLP) + universome/stylegan-v "
           "src/metrics/frechet_video_distance.py (FVD's I3D and its arguments)",
    metrics={**STANDARD.metrics, "fvd": {"clip_length": 16, "clip_stride": 16}, "flicker": {},
             "tof": {"crop": "tecogan"}, "tlp": {"net": "alex", "crop": "tecogan"}},
    citations={**STANDARD.citations,
               "tof": "thunil/TecoGAN metrics.py:136-137,144-145 (8-bit RGB -> cv2 RGB2GRAY), 147-148 "
                      "(cv2.calcOpticalFlowFarneback(prev, next, None, 0.5, 3, 15, 3, 5, 1.2, 0)), 149-150 + 77-92 "
                      "(crop_8x8), 151,166-168 (mean over pixels of the L2 norm of the flow difference)",
               "tlp": "thunil/TecoGAN metrics.py:115 (LPIPS net-lin alex), 174-175 (crop_8x8), 194-200 "
                      "(|LPIPS(y_t-1, y_t) - LPIPS(g_t-1, g_t)|, printed x100; not scaled here)",
               "fvd": "universome/stylegan-v src/metrics/frechet_video_distance.py:19-23 (i3d_torchscript.pt, "
                      "rescale=True, resize=True, return_features=True), 54-56 (Fréchet distance); "
                      "src/metrics/metric_utils.py:122-127 (population covariance), 231-245 (uint8 clips "
                      "[b, c, t, h, w] to the detector); 16-frame clips (FVD16)"},
    notes=STANDARD.notes + " Sequence metrics (datasets whose pairs declare a video and a frame order; elsewhere "
          "n/a with the reason): computed when the run's results are written, from the stored frames and the "
          "ground-truth frames at the evaluation size, per video in frame order, then averaged over videos with a "
          "bootstrap 95 % CI over videos (FVD: one distance over all clips, CI by resampling videos). flicker: mean "
          "|(g_t - g_t-1) - (y_t - y_t-1)|; tof: TecoGAN's tOF with its Farneback flow (OpenCV, no download); "
          "tlp: TecoGAN's tLP with the LPIPS alex weights (n/a without them, as LPIPS); fvd: non-overlapping "
          "16-frame clips, StyleGAN-V's TorchScript I3D (n/a without i3d_torchscript.pt). TecoGAN leaves out the "
          "first and last two frames of its clips (cutfr = 2); here every consecutive pair counts.",
)
