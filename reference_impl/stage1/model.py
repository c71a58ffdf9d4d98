"""FPDM stage 1: the fusion embedding of (source image, target pose).

One CLIP vision tower with projection (``image_embeds``) encodes both the source image and the
target pose drawn as an OpenPose skeleton image (shared, fine-tuned weights). A CLIP4Cir-style
Combiner fuses the two embeddings:

    p = Dropout(ReLU(W_p pose)),  s = Dropout(ReLU(W_s source))
    c = [p, s]                                   (pose first, as in the official code)
    gate = sigmoid(MLP(c))                       in (0, 1), one scalar per sample
    out = W_o Dropout(ReLU(W_c c)) + gate * pose + (1 - gate) * source
    fusion = out / |out|

Training pulls ``fusion`` towards the CLIP embedding of the target image (see loss.py), so at
inference it stands in for the unseen target in stage 2.

The tower is built from a config: ``tower: tiny`` = a small random-init ``CLIPVisionConfig`` (CPU
trainable), ``tower: pretrained`` = ``CLIPVisionModelWithProjection.from_pretrained(clip_path)``
(CLIP ViT-L/14 in the paper), local files only.

Inputs (config keys of the ``stage1`` section):

- ``preprocess``: how person images reach the tower: ``squash`` (whole frame to S x S) or
  ``clip_crop`` (the CLIP processor's shortest-edge resize + centre crop, what official stage-1
  training does). Stage 2 can ask ``fuse`` for another one (official stage 2 squashes; see
  ``Stage2Model.fusion``).
- ``resample``: ``torch`` (absent; the shipped tiny checkpoint): antialiased bicubic ``F.interpolate``
  on the float images. ``pil`` (the paper config): as the official code and the CLIP processor do it,
  on 8 bits with PIL's bicubic filter (``fpdm_bench_reference.preprocess``).
- ``pose_render``: how target poses are drawn (``fpdm_bench.modeling.pose.PoseStyle``); absent = the
  bench renderer (what the shipped tiny checkpoint was trained with); the paper config draws them as
  the official pre-rendered pose images (1101x750 canvas, JPEG quality 100, PIL-bicubic to S x S).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from fpdm_bench.errors import BenchError, WeightsMissing
from fpdm_bench.modeling.pose import PoseStyle, render_batch, render_batch_fpdm
from fpdm_bench.modeling.pretrained import load_matching, read_config, read_weights, save_folder
from fpdm_bench_reference import preprocess as official_inputs

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "fpdm-bench/stage1-fusion"
PREPROCESS_MODES = ("squash", "clip_crop")
RESAMPLE_MODES = ("torch", "pil")


class Combiner(nn.Module):
    """Fuse a source-image embedding and a pose embedding (both [B, D]) into one [B, D] vector."""

    def __init__(self, feature_dim: int, projection_dim: int, hidden_dim: int, dropout: float = 0.5):
        super().__init__()
        self.pose_proj = nn.Linear(feature_dim, projection_dim)
        self.image_proj = nn.Linear(feature_dim, projection_dim)
        self.pose_dropout = nn.Dropout(dropout)
        self.image_dropout = nn.Dropout(dropout)
        self.combine = nn.Linear(2 * projection_dim, hidden_dim)
        self.combine_dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden_dim, feature_dim)
        self.gate = nn.Sequential(nn.Linear(2 * projection_dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden_dim, 1), nn.Sigmoid())

    def forward(self, source: torch.Tensor, pose: torch.Tensor, return_gate: bool = False):
        """L2-normalised fusion [B, D] (and the gate [B, 1] if return_gate)."""
        p = self.pose_dropout(F.relu(self.pose_proj(pose)))
        s = self.image_dropout(F.relu(self.image_proj(source)))
        joint = torch.cat([p, s], dim=-1)
        gate = self.gate(joint)
        mixed = self.output(self.combine_dropout(F.relu(self.combine(joint))))
        out = F.normalize(mixed + gate * pose + (1 - gate) * source, dim=-1)
        return (out, gate) if return_gate else out


def _build_tower(cfg: dict) -> CLIPVisionModelWithProjection:
    kind = cfg.get("tower", "tiny")
    if kind == "tiny":
        vision = CLIPVisionConfig(**cfg.get("vision", {}))
        return CLIPVisionModelWithProjection(vision)
    if kind == "pretrained":
        path = cfg.get("clip_path")
        if not path:
            raise BenchError("stage1 config: tower 'pretrained' needs stage1.clip_path (a local CLIP directory)")
        try:
            # local_files_only: the project never downloads at run time; a hub id works only if cached
            return CLIPVisionModelWithProjection.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError) as e:
            raise WeightsMissing(
                "CLIP vision tower for FPDM stage 1",
                f"{path} (config.json + model.safetensors of e.g. openai/clip-vit-large-patch14)",
                "a local directory passed as --set stage1.clip_path=DIR, or the Hugging Face cache; "
                f"loader said: {str(e).splitlines()[0][:200]}",
            ) from None
    raise BenchError(f"stage1 config: unknown tower {kind!r} (expected 'tiny' or 'pretrained')")


class FusionModel(nn.Module):
    """Shared CLIP vision tower + Combiner. ``config`` is the ``stage1`` section of a config."""

    def __init__(self, config: dict, tower: CLIPVisionModelWithProjection | None = None):
        super().__init__()
        self.config = dict(config)
        self.tower = tower if tower is not None else _build_tower(self.config)
        dim = self.tower.config.projection_dim
        comb = self.config.get("combiner", {})
        self.combiner = Combiner(dim, comb.get("projection_dim", dim), comb.get("hidden_dim", dim),
                                 comb.get("dropout", 0.5))
        self.preprocess = self.config.get("preprocess", "squash")
        if self.preprocess not in PREPROCESS_MODES:
            raise BenchError(f"stage1 config: preprocess must be 'squash' or 'clip_crop', not {self.preprocess!r}")
        self.resample = self.config.get("resample") or "torch"
        if self.resample not in RESAMPLE_MODES:
            raise BenchError(f"stage1 config: resample must be one of {RESAMPLE_MODES}, not {self.resample!r}")
        pose_cfg = self.config.get("pose_render")
        if isinstance(pose_cfg, dict) and "train" in pose_cfg:
            raise BenchError("stage1 config: pose_render.train is a stage-2 setting (stage 1 draws its poses one way)")
        try:
            self.pose_style = PoseStyle.from_config(pose_cfg, where="stage1.pose_render")
        except ValueError as e:
            raise BenchError(f"stage1 config: {e}") from None
        self.register_buffer("clip_mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("clip_std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def image_size(self) -> int:
        return int(self.tower.config.image_size)

    @property
    def embed_dim(self) -> int:
        return int(self.tower.config.projection_dim)

    # --- pixels -> tower input ----------------------------------------------------------------
    def resize(self, pixels: torch.Tensor, crop: bool | None = None) -> torch.Tensor:
        """[B,3,H,W] in [0,1] -> [B,3,S,S] at the tower's size.

        'squash' resizes the whole frame to S x S. 'clip_crop' is the CLIP image processor's
        geometry (shortest edge to S, then centre crop), which the official code applies to
        person images; it cuts the top and bottom of a portrait 256x176 frame. Poses are always
        squashed (the official code resizes the skeleton image to 224x224 first).
        """
        s = self.image_size
        h, w = pixels.shape[-2:]
        crop = (self.preprocess == "clip_crop") if crop is None else crop
        if (h, w) == (s, s):
            return pixels
        if self.resample == "pil":  # 8 bits, PIL bicubic, the processor's geometry (official)
            u8 = official_inputs.to_uint8(pixels)
            out = (official_inputs.processor_images(u8, s, crop=True) if crop
                   else official_inputs.resize(u8, (s, s)))
            return official_inputs.to_float(out, pixels.device).to(pixels.dtype)
        if not crop:
            return F.interpolate(pixels, size=(s, s), mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
        scale = s / min(h, w)
        nh, nw = max(s, round(h * scale)), max(s, round(w * scale))
        x = F.interpolate(pixels, size=(nh, nw), mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
        top, left = (nh - s) // 2, (nw - s) // 2
        return x[..., top:top + s, left:left + s]

    def render_pose(self, kps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Skeleton images of poses [B,K,2] drawn in a frame of `size`, resized to the tower: [B,3,S,S].

        Drawn in the style of ``pose_render``: the bench renderer in the frame, then squashed like the
        images; or the official one on its canvas, then PIL-bicubic squashed (as the official code
        resizes its pose images to 224x224 before the CLIP processor).
        """
        if self.pose_style.official:
            s = self.image_size
            return render_batch_fpdm(kps, tuple(size), (s, s), self.pose_style)
        return self.resize(render_batch(kps, size), crop=False)

    # --- embeddings ---------------------------------------------------------------------------
    def embed_tower_inputs(self, pixels_at_size: torch.Tensor) -> torch.Tensor:
        """Embeddings [B, D] of images already at the tower's size ([B,3,S,S] in [0,1], see resize)."""
        x = (pixels_at_size.to(self.clip_mean.device) - self.clip_mean) / self.clip_std
        return self.tower(pixel_values=x).image_embeds

    def embed_images(self, pixels: torch.Tensor, preprocess: str | None = None) -> torch.Tensor:
        """CLIP image embeddings [B, D] (not normalised, as the Combiner takes them) of [B,3,H,W] in [0,1].

        preprocess: 'squash' or 'clip_crop' for these images (default: the config's ``preprocess``).
        """
        if preprocess is not None and preprocess not in PREPROCESS_MODES:
            raise BenchError(f"stage1: preprocess must be 'squash' or 'clip_crop', not {preprocess!r}")
        crop = None if preprocess is None else preprocess == "clip_crop"
        return self.embed_tower_inputs(self.resize(pixels, crop=crop))

    def embed_pose(self, kps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Embedding [B, D] of target poses [B,K,2] (pixels of a `size` frame), via the skeleton image."""
        return self.embed_tower_inputs(self.render_pose(kps, size))

    def fuse_embeddings(self, source_emb: torch.Tensor, pose_emb: torch.Tensor, return_gate: bool = False):
        return self.combiner(source_emb, pose_emb, return_gate=return_gate)

    def fuse(self, source_pixels: torch.Tensor, target_kps: torch.Tensor, size: tuple[int, int] | None = None,
             preprocess: str | None = None, pose_images: torch.Tensor | None = None) -> torch.Tensor:
        """L2-normalised fusion embedding [B, D] of source images and target poses.

        size: frame (H, W) the keypoints are in; default = the source images' size.
        preprocess: how the sources reach the tower ('squash' | 'clip_crop'; default: the config's).
        pose_images: tower-sized pose images [B,3,S,S] in [0,1] to use instead of drawing target_kps
        with this model's ``pose_render`` (stage 2 passes the images it draws itself, as officially).
        """
        size = tuple(source_pixels.shape[-2:]) if size is None else tuple(size)
        s = self.image_size
        if pose_images is not None and tuple(pose_images.shape[-2:]) != (s, s):
            raise BenchError(f"stage1 fuse: pose images are {tuple(pose_images.shape[-2:])}, the tower takes {(s, s)}")
        source_emb = self.embed_images(source_pixels, preprocess)
        pose_emb = self.embed_pose(target_kps, size) if pose_images is None else self.embed_tower_inputs(pose_images)
        return self.fuse_embeddings(source_emb, pose_emb)

    # --- persistence --------------------------------------------------------------------------
    def saved_config(self) -> dict:
        cfg = {k: v for k, v in self.config.items() if k not in ("vision", "clip_path", "tower", "source_tower")}
        # where the tower's initial weights came from (a CLIP path, or 'tiny' = random init)
        source = self.config.get("source_tower") or (self.config.get("clip_path") if self.config.get("tower") == "pretrained" else "tiny")
        return {"format": FORMAT, "version": 1, "stage1": cfg, "vision_config": self.tower.config.to_dict(),
                "source_tower": source}

    def save_pretrained(self, out_dir: str | Path) -> Path:
        """Write config.json + model.safetensors to out_dir (weights need no network to reload)."""
        return save_folder(out_dir, self.state_dict(), self.saved_config(), metadata={"format": FORMAT},
                           weights_name=WEIGHTS_NAME, config_name=CONFIG_NAME, json_default=str)

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu") -> "FusionModel":
        """Load a directory written by save_pretrained (the tower is rebuilt from its saved config)."""
        path = Path(path)
        saved = read_config(path, "FPDM stage-1 checkpoint", FORMAT, CONFIG_NAME, WEIGHTS_NAME)
        weights = path / WEIGHTS_NAME
        vision = dict(saved["vision_config"])
        tower = CLIPVisionModelWithProjection(CLIPVisionConfig(**vision))
        model = cls(dict(saved["stage1"], tower="saved", source_tower=saved.get("source_tower")), tower=tower)
        load_matching(model, read_weights(weights, "FPDM stage-1 checkpoint"), weights, "FPDM stage-1 model")
        return model.to(device).eval()


def build_model(config: dict) -> FusionModel:
    """FusionModel from a full config ({'stage1': {...}, ...}) or just its stage1 section."""
    return FusionModel(config.get("stage1", config))
