"""FPDM stage 2: a latent diffusion model conditioned on source appearance, target pose and fusion.

Three conditions, as in the official code (``src/diffusion/model.py``, ``unet_2d_condition.py``):

- **source tokens**: a frozen DINOv2 encodes the source image (all ``last_hidden_state`` tokens,
  CLS included); ``source_proj`` (Linear, GELU, Dropout, LayerNorm, Linear, Dropout) maps them to
  the UNet's ``cross_attention_dim``; the UNet attends to them (``encoder_hidden_states``).
- **fusion embedding**: the frozen stage-1 vector (source + target pose, L2-normalised) goes through
  ``fusion_proj`` (Linear D->hidden, GELU, Dropout, Linear hidden->time_embed_dim, Dropout) and is
  added to the timestep embedding. The UNet is built with ``class_embed_type="identity"`` and the
  projected vector is passed as ``class_labels``, so diffusers adds it to ``emb`` itself.
- **target pose**: the skeleton image at the model resolution goes through a ControlNet-style
  conditioning embedding (diffusers' ``ControlNetConditioningEmbedding``; zero-initialised last
  conv) whose output is added to the output of ``unet.conv_in``. That addition is a forward hook on
  ``unet.conv_in``: the UNet's own keys and code stay untouched.

Classifier-free guidance needs "null" conditions. Like the official code, a dropped condition is
replaced by zeros at these points: the *projected* source tokens, the *raw* fusion vector (before
``fusion_proj``, so the null fusion still contributes the MLP's biases), and the pose *features*.

Inputs drawn / resized here (config keys of the ``stage2`` section):

- ``pose_render`` (``fpdm_bench.modeling.pose.PoseStyle``): how the target pose image is drawn, for the
  UNet and for the stage-1 CLIP pose branch (``fusion``). Absent = the bench renderer (the shipped tiny
  checkpoint). The paper config draws as the official code: on the fly on a 550x375 canvas while
  training, the pre-rendered 1101x750 JPEGs otherwise (``train`` override, picked by ``self.training``).
- ``fusion_preprocess``: how the source reaches the stage-1 CLIP tower in stage 2 (``squash`` |
  ``clip_crop``; absent = the stage-1 model's own ``preprocess``). Official stage 2 squashes it to
  224x224 (CLIP processor with ``do_center_crop=False``) although stage-1 training centre-crops.

- ``preprocess``: how the source reaches the encoders. ``tensor`` (absent; the shipped tiny checkpoints):
  float resizes (antialiased bicubic ``F.interpolate``) straight to each encoder's size. ``official``
  (the paper config): the official ``FPDM.data_load`` path, ``fpdm_bench_reference.preprocess``: 8 bits, PIL
  bicubic to ``source_size`` (input_s_img_size, 512x512) once, then to the DINOv2 input
  (``source_encoder.image_size``) and to CLIP's 224x224, and the processors' arithmetic. (The pose
  images follow ``pose_render``; the official style is PIL-resized from its canvas either way.)
- ``source_encoder.pos_interpolation``: ``installed`` (absent) or ``official``: DINOv2's position
  embeddings resampled for a non-native input as transformers 4.40.1, the official pin, does it
  (``legacy_pos_interpolation``); the installed transformers (4.57, 5.x) samples the grid elsewhere.

- ``prior`` (``fpdm_bench_reference.stage2.prior``; absent = ``none``, the paper): with ``keypoint-warp``
  the model diffuses the residual of the target over a keypoint warp of the source, sees that warp
  as three more channels of the pose embedding's input, and its output is warp + residual.

Towers: ``kind: tiny`` builds VAE / UNet / DINOv2 from the config dicts (random init);
``kind: pretrained`` loads them from local folders (Stable Diffusion 2.1 layout ``vae/`` + ``unet/``,
DINOv2 folder), local files only.
"""
from __future__ import annotations

import copy
import math
import types
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.models.controlnets.controlnet import ControlNetConditioningEmbedding
from torch import nn
from transformers import Dinov2Config, Dinov2Model

from fpdm_bench.errors import BenchError, WeightsMissing
from fpdm_bench.modeling.patch_pca import PatchPCAAutoencoder
from fpdm_bench.modeling.pose import PoseStyle, render_batch, render_batch_fpdm
from fpdm_bench.modeling.pretrained import load_matching, read_config, read_weights, save_folder
from fpdm_bench.modeling.warp_prior import compose, residual
from fpdm_bench_reference import preprocess as official_inputs
from fpdm_bench_reference.stage2.prior import check_prior, prior_images

FORMAT = "fpdm-bench/stage2-diffusion"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

PREPROCESS_MODES = ("tensor", "official")
POS_INTERPOLATIONS = ("installed", "official")

#: Modules whose weights are trained in stage 2 (the VAE and DINOv2 stay frozen, as officially;
#: ``stage2.source_encoder.trainable: true`` adds the source encoder, see ``Stage2Model.trainable_modules``).
TRAINABLE = ("unet", "source_proj", "fusion_proj", "pose_embed")


class ProjectionMLP(nn.Sequential):
    """Linear -> GELU -> Dropout -> [LayerNorm] -> Linear -> Dropout (the official projection heads)."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, dropout: float = 0.0, layer_norm: bool = False):
        layers = [nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Dropout(dropout)]
        if layer_norm:
            layers.append(nn.LayerNorm(hidden_dim))
        layers += [nn.Linear(hidden_dim, out_dim), nn.Dropout(dropout)]
        super().__init__(*layers)


@dataclass
class Conditions:
    """Projected conditions, ready for the UNet (one row per UNet batch element)."""

    hidden_states: torch.Tensor  # [N, T, cross_attention_dim]
    class_emb: torch.Tensor  # [N, time_embed_dim]
    pose_features: torch.Tensor  # [N, C0, h, w] (latent size)

    def cat(self, *others: "Conditions") -> "Conditions":
        items = (self, *others)
        return Conditions(*(torch.cat([getattr(c, f) for c in items]) for f in ("hidden_states", "class_emb", "pose_features")))


def _local_error(what: str, path, expect: str, e: Exception) -> WeightsMissing:
    return WeightsMissing(what, f"{path} ({expect})",
                          f"a local folder given in the stage-2 config; loader said: {str(e).splitlines()[0][:200]}")


def _build_vae(cfg: dict) -> AutoencoderKL | PatchPCAAutoencoder:
    kind = cfg.get("kind", "tiny")
    if kind == "tiny":
        return AutoencoderKL(**cfg.get("config", {}))
    if kind == PatchPCAAutoencoder.kind:
        try:
            return PatchPCAAutoencoder(**cfg.get("config", {}))
        except (TypeError, ValueError) as e:
            raise BenchError(f"stage2 config: vae: {e}") from None
    if kind == "pretrained":
        path = cfg.get("path")
        if not path:
            raise BenchError("stage2 config: vae kind 'pretrained' needs stage2.vae.path (a Stable Diffusion folder)")
        try:
            return AutoencoderKL.from_pretrained(str(path), subfolder=cfg.get("subfolder", "vae"), local_files_only=True)
        except (OSError, ValueError, EnvironmentError) as e:
            raise _local_error("Stable Diffusion VAE for FPDM stage 2", path, "vae/config.json + weights", e) from None
    raise BenchError(f"stage2 config: unknown vae kind {kind!r} (expected 'tiny', 'patch-pca' or 'pretrained')")


def _build_unet(cfg: dict) -> UNet2DConditionModel:
    kind = cfg.get("kind", "tiny")
    # 'identity': the UNet adds class_labels (our projected fusion vector) to the timestep embedding.
    if kind == "tiny":
        return UNet2DConditionModel(**{**cfg.get("config", {}), "class_embed_type": "identity"})
    if kind == "pretrained":
        path = cfg.get("path")
        if not path:
            raise BenchError("stage2 config: unet kind 'pretrained' needs stage2.unet.path (a Stable Diffusion folder)")
        try:
            return UNet2DConditionModel.from_pretrained(str(path), subfolder=cfg.get("subfolder", "unet"),
                                                        class_embed_type="identity", local_files_only=True)
        except (OSError, ValueError, EnvironmentError) as e:
            raise _local_error("Stable Diffusion UNet for FPDM stage 2", path, "unet/config.json + weights", e) from None
    raise BenchError(f"stage2 config: unknown unet kind {kind!r} (expected 'tiny' or 'pretrained')")


def legacy_pos_interpolation(embeddings: nn.Module, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """DINOv2's position embeddings for a ``height`` x ``width`` input, resampled as transformers 4.40.1
    (the official pin) does it: bicubic with ``scale_factor = (patches + 0.1) / grid`` (the DINO "+0.1"
    against floating-point error) rather than ``size = patches``. Same output grid, other sample
    points: 4.57 and 5.x move every interpolated embedding (tokens off by up to 0.03 at the paper's 512x512,
    measured on a random dinov2-large; docs/models/fpdm.md).
    Bound to a ``Dinov2Embeddings`` as its ``interpolate_pos_encoding`` (``use_legacy_pos_interpolation``)."""
    pos = embeddings.position_embeddings
    n_patches, n_positions = tokens.shape[1] - 1, pos.shape[1] - 1
    if n_patches == n_positions and height == width:
        return pos
    grid = int(math.sqrt(n_positions))
    patch = embeddings.config.patch_size
    h, w = height // patch + 0.1, width // patch + 0.1
    grid_pos = pos[:, 1:].reshape(1, grid, grid, -1).permute(0, 3, 1, 2)
    out = F.interpolate(grid_pos.float(), scale_factor=(float(h / math.sqrt(n_positions)), float(w / math.sqrt(n_positions))),
                        mode="bicubic", align_corners=False).to(pos.dtype)
    if out.shape[-2:] != (int(h), int(w)):
        raise BenchError(f"DINOv2 position embeddings: {tuple(out.shape[-2:])} after resampling, expected {(int(h), int(w))}")
    return torch.cat([pos[:, :1], out.permute(0, 2, 3, 1).reshape(1, -1, pos.shape[-1])], dim=1)


def use_legacy_pos_interpolation(encoder: Dinov2Model) -> Dinov2Model:
    """Make ``encoder`` resample its position embeddings as transformers 4.40.1 (see above)."""
    encoder.embeddings.interpolate_pos_encoding = types.MethodType(legacy_pos_interpolation, encoder.embeddings)
    return encoder


def _build_source_encoder(cfg: dict) -> Dinov2Model:
    kind = cfg.get("kind", "tiny")
    if kind == "tiny":
        return Dinov2Model(Dinov2Config(**cfg.get("config", {})))
    if kind == "pretrained":
        path = cfg.get("path")
        if not path:
            raise BenchError("stage2 config: source_encoder kind 'pretrained' needs stage2.source_encoder.path "
                             "(e.g. a local facebook/dinov2-large folder)")
        try:
            return Dinov2Model.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError, EnvironmentError) as e:
            raise _local_error("DINOv2 source encoder for FPDM stage 2", path, "config.json + model.safetensors", e) from None
    raise BenchError(f"stage2 config: unknown source_encoder kind {kind!r} (expected 'tiny' or 'pretrained')")


class Stage2Model(nn.Module):
    """VAE + conditioned UNet + condition encoders. ``config`` is the ``stage2`` config section.

    ``fusion_dim``: size of the stage-1 fusion vector (768 for CLIP ViT-L/14).
    ``modules``: prebuilt towers (used when loading a saved checkpoint, to skip the builders).
    """

    def __init__(self, config: dict, fusion_dim: int, modules: dict | None = None):
        super().__init__()
        self.config = copy.deepcopy(config)
        self.fusion_dim = int(fusion_dim)
        modules = modules or {}
        self.vae = modules["vae"] if "vae" in modules else _build_vae(self.config.get("vae", {}))
        self.unet = modules["unet"] if "unet" in modules else _build_unet(self.config.get("unet", {}))
        self.source_encoder = (modules["source_encoder"] if "source_encoder" in modules
                               else _build_source_encoder(self.config.get("source_encoder", {})))

        cross_dim = self.unet.config.cross_attention_dim
        time_dim = self.unet.config.block_out_channels[0] * 4  # diffusers' time_embed_dim
        sp = self.config.get("source_proj", {})
        self.source_proj = ProjectionMLP(self.source_encoder.config.hidden_size, int(sp.get("hidden_dim", cross_dim)),
                                         cross_dim, float(sp.get("dropout", 0.0)), layer_norm=True)
        fp = self.config.get("fusion_proj", {})
        self.fusion_proj = ProjectionMLP(self.fusion_dim, int(fp.get("hidden_dim", self.fusion_dim)), time_dim,
                                         float(fp.get("dropout", 0.0)))
        pose_channels = tuple(self.config.get("pose_embed", {}).get("channels", (16, 32, 96, 256)))
        if 2 ** (len(pose_channels) - 1) != self.vae_scale_factor:
            raise BenchError(f"stage2 config: pose_embed.channels {list(pose_channels)} downsample by "
                             f"{2 ** (len(pose_channels) - 1)}, but the VAE by {self.vae_scale_factor}; "
                             "give one channel entry per VAE level")
        try:
            self.prior = check_prior(self.config.get("prior"))
        except ValueError as e:
            raise BenchError(f"stage2 config: {e}") from None
        # the spatial condition: the skeleton image, and the prior image after it when there is one
        self.pose_embed = ControlNetConditioningEmbedding(self.unet.config.block_out_channels[0],
                                                          6 if self.has_prior else 3, pose_channels)

        try:  # validate now: a bad pose_render should fail at build time, not at the first batch
            self._pose_styles = {t: PoseStyle.from_config(self.config.get("pose_render"), train=t,
                                                         where="stage2.pose_render") for t in (False, True)}
        except ValueError as e:
            raise BenchError(f"stage2 config: {e}") from None
        fusion_pre = self.config.get("fusion_preprocess")
        if fusion_pre not in (None, "squash", "clip_crop"):
            raise BenchError(f"stage2 config: fusion_preprocess must be 'squash', 'clip_crop' or null, not {fusion_pre!r}")
        self.preprocess = self.config.get("preprocess") or "tensor"
        if self.preprocess not in PREPROCESS_MODES:
            raise BenchError(f"stage2 config: preprocess must be one of {PREPROCESS_MODES}, not {self.preprocess!r}")
        if self.preprocess == "official":
            if fusion_pre == "clip_crop":
                raise BenchError("stage2 config: preprocess 'official' feeds CLIP the squashed source (as the official "
                                 "stage 2 does); fusion_preprocess 'clip_crop' contradicts it")
            if len(self.config.get("source_size") or ()) != 2:
                raise BenchError("stage2 config: preprocess 'official' needs source_size [H, W] (the official "
                                 "input_s_img_size, 512x512), the size the source is resized to first")
        interp = self.config.get("source_encoder", {}).get("pos_interpolation") or "installed"
        if interp not in POS_INTERPOLATIONS:
            raise BenchError(f"stage2 config: source_encoder.pos_interpolation must be one of {POS_INTERPOLATIONS}, "
                             f"not {interp!r}")
        if interp == "official":
            use_legacy_pos_interpolation(self.source_encoder)
        #: whether save_pretrained writes the source encoder's weights (a converted official checkpoint
        #: carries its own DINOv2, see store_source_encoder); else the default rule of saves_source_encoder
        self.stores_source_encoder = False

        self.vae.requires_grad_(False)
        self.source_encoder.requires_grad_(self.source_encoder_trainable)
        self.register_buffer("enc_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("enc_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self._pose_features: torch.Tensor | None = None
        self.unet.conv_in.register_forward_hook(self._add_pose_features)

    # --- geometry -----------------------------------------------------------------------------
    @property
    def resolution(self) -> tuple[int, int]:
        """(H, W) the model works at."""
        h, w = self.config["resolution"]
        return int(h), int(w)

    @property
    def vae_scale_factor(self) -> int:
        if isinstance(self.vae, PatchPCAAutoencoder):
            return self.vae.scale_factor
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        h, w = self.resolution
        f = self.vae_scale_factor
        return int(self.vae.config.latent_channels), h // f, w // f

    @property
    def scaling_factor(self) -> float:
        """Latent scale: stage2.vae.scaling_factor if set (tiny: measured after fitting), else the VAE's."""
        return float(self.config.get("vae", {}).get("scaling_factor") or self.vae.config.scaling_factor)

    def resize(self, pixels: torch.Tensor, size: tuple[int, int] | None = None, clamp: bool = True) -> torch.Tensor:
        """[B,3,H,W] in [0,1] -> model resolution (or `size`), antialiased bicubic (``clamp``: back
        into [0, 1]; off for residuals)."""
        size = tuple(size or self.resolution)
        if tuple(pixels.shape[-2:]) == size:
            return pixels
        out = F.interpolate(pixels, size=size, mode="bicubic", antialias=True, align_corners=False)
        return out.clamp(0, 1) if clamp else out

    # --- the prior (tiny recipe; see reference_impl/stage2/prior.py) ----------------------------
    @property
    def has_prior(self) -> bool:
        return self.prior != "none"

    def prior_images(self, source: torch.Tensor, source_kp: torch.Tensor, target_kp: torch.Tensor) -> torch.Tensor:
        """The prior [B,3,H,W] at the source's size."""
        return prior_images(self.prior, source, source_kp, target_kp)

    def _require_prior(self, prior: torch.Tensor | None) -> None:
        if prior is None:
            raise BenchError(f"stage2 config has prior {self.prior!r}: pass the prior images")

    def condition_image(self, pose: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        """The pose embedding's input: the skeleton image at the model resolution, with the prior
        (any size; resized here) as three more channels when the config has one."""
        if not self.has_prior:
            return pose
        self._require_prior(prior)
        return torch.cat([pose, self.resize(prior.to(pose.device, pose.dtype))], dim=1)

    def pose_style(self, train: bool | None = None) -> PoseStyle:
        """The pose drawing in force (``pose_render``; its ``train`` override when training).
        train: None = this module's mode (``self.training``)."""
        return self._pose_styles[bool(self.training if train is None else train)]

    def pose_image(self, kps: torch.Tensor, frame: tuple[int, int], size: tuple[int, int] | None = None,
                   train: bool | None = None) -> torch.Tensor:
        """Skeleton images [B,3,H,W] at the model resolution (or `size`) of poses [B,K,2] in a `frame` (H, W).

        Bench style: drawn in the keypoints' own frame, then resized (antialiased bicubic). Official
        style: drawn on its canvas (the training one while training, see ``pose_style``), then PIL
        bicubic to the size, as the official dataset code resizes its pose images.
        """
        style = self.pose_style(train)
        size = tuple(size or self.resolution)
        if style.official:
            return render_batch_fpdm(kps, tuple(frame), size, style)
        return self.resize(render_batch(kps, tuple(frame)), size)

    def fusion(self, fusion_model, source: torch.Tensor, kps: torch.Tensor, frame: tuple[int, int],
               train: bool | None = None) -> torch.Tensor:
        """Stage-1 fusion vectors [B, D] with this stage's inputs: the frozen ``fusion_model``
        (a stage-1 ``FusionModel``) sees the source preprocessed by ``fusion_preprocess`` and, in the
        official pose style, the same pose drawing as the UNet, resized to its tower (official stage 2
        feeds CLIP one ``t_pose`` image for both). With ``preprocess: official`` the source reaches CLIP
        as in ``FPDM.data_load`` (resized to ``source_size`` first, then to the tower). With none of these
        keys set (the tiny config) this is exactly ``fusion_model.fuse(source, kps, size=frame)``.
        """
        pose_images = None
        if self.pose_style(train).official:
            s = fusion_model.image_size
            pose_images = self.pose_image(kps, frame, size=(s, s), train=train).to(source.device)
        if self.preprocess == "official":
            # CLIP sees the source resized to source_size first, then to 224 (FPDM.data_load)
            clip_in = official_inputs.stage2_clip_input(self.official_source(source), fusion_model.image_size,
                                                        source.device)
            pose_emb = (fusion_model.embed_pose(kps, tuple(frame)) if pose_images is None
                        else fusion_model.embed_tower_inputs(pose_images))
            return fusion_model.fuse_embeddings(fusion_model.embed_tower_inputs(clip_in), pose_emb)
        return fusion_model.fuse(source, kps, size=tuple(frame), preprocess=self.config.get("fusion_preprocess"),
                                 pose_images=pose_images)

    def official_source(self, pixels: torch.Tensor):
        """Source images [B,3,H,W] in [0,1] as 8 bits at ``source_size`` (``preprocess: official``)."""
        return official_inputs.stage2_source(pixels, tuple(self.config["source_size"]))

    # --- encoders -----------------------------------------------------------------------------
    @property
    def source_encoder_trainable(self) -> bool:
        """True when the config trains the source encoder with the UNet (tiny recipe: a random-init
        DINOv2 frozen is only a fixed random projection; the paper's pretrained one stays frozen)."""
        return bool(self.config.get("source_encoder", {}).get("trainable", False))

    def source_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Source images [B,3,H,W] in [0,1] -> the encoder's input (squashed to its size, ImageNet-normalised)."""
        size = tuple(self.config.get("source_encoder", {}).get("image_size", (224, 224)))
        if self.preprocess == "official":
            x = official_inputs.stage2_encoder_input(self.official_source(pixels), size, self.enc_mean.device)
        else:
            x = self.resize(pixels.to(self.enc_mean.device), size)
        return ((x - self.enc_mean) / self.enc_std).to(self.source_encoder.dtype)

    def encode_source_pixels(self, x: torch.Tensor) -> torch.Tensor:
        """DINOv2 tokens [B, T, C] of ``source_pixels`` output."""
        tokens = self.source_encoder(pixel_values=x).last_hidden_state
        return tokens[:, 1:] if self.config.get("source_encoder", {}).get("drop_cls", False) else tokens

    def encode_source(self, pixels: torch.Tensor) -> torch.Tensor:
        """DINOv2 tokens [B, T, C] of source images [B,3,H,W] in [0,1] (squashed to the encoder size)."""
        return self.encode_source_pixels(self.source_pixels(pixels))

    def vae_input(self, pixels: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        """What the VAE encodes, in [-1, 1] at the model resolution: the image, or with a prior the
        residual ``pixels - prior`` (taken at their common size, then resized)."""
        if not self.has_prior:
            if self.preprocess == "official":  # the target as the official dataset reads it: 8 bits, PIL bicubic
                pixels = official_inputs.to_float(official_inputs.resize(official_inputs.to_uint8(pixels),
                                                                         self.resolution), pixels.device)
            return self.resize(pixels) * 2 - 1
        self._require_prior(prior)
        return residual(pixels, prior, self.resolution)

    def encode_latents(self, pixels: torch.Tensor, generator: torch.Generator | None = None,
                       sample: bool = True, prior: torch.Tensor | None = None) -> torch.Tensor:
        """Scaled latents of images [B,3,H,W] in [0,1] (with a prior: of their residual over it)."""
        dist = self.vae.encode(self.vae_input(pixels, prior).to(self.vae.dtype)).latent_dist
        z = dist.sample(generator) if sample else dist.mean
        return z * self.scaling_factor

    def decode_latents(self, latents: torch.Tensor, prior: torch.Tensor | None = None,
                       residual_threshold: float = 0.0) -> torch.Tensor:
        """Images [B,3,H,W] in [0,1] from scaled latents: at the model resolution, or with a prior
        ``prior + residual`` at the prior's size (the residual upsampled, bicubic, then
        soft-thresholded by ``residual_threshold``: ``fpdm_bench.modeling.warp_prior.compose``)."""
        x = self.vae.decode((latents / self.scaling_factor).to(self.vae.dtype)).sample.float()
        if not self.has_prior:
            return (x / 2 + 0.5).clamp(0, 1)
        self._require_prior(prior)
        return compose(prior, x, residual_threshold)

    # --- conditioning -------------------------------------------------------------------------
    def project(self, source_tokens: torch.Tensor, fusion: torch.Tensor, pose_image: torch.Tensor,
                drop_source: torch.Tensor | None = None, drop_fusion: torch.Tensor | None = None,
                drop_pose: torch.Tensor | None = None) -> Conditions:
        """Project the raw conditions; ``drop_*`` are bool [B] masks, True = use the null condition.

        Nulls follow the official code: zero projected source tokens, zero raw fusion vector (the
        MLP still adds its biases), zero pose features.
        """
        dtype = self.unet.dtype
        hs = self.source_proj(source_tokens.to(dtype))
        fusion = fusion.to(dtype)
        if drop_fusion is not None:
            fusion = torch.where(drop_fusion.view(-1, 1), torch.zeros_like(fusion), fusion)
        cls = self.fusion_proj(fusion)
        pose = self.pose_embed(pose_image.to(dtype))
        if drop_source is not None:
            hs = torch.where(drop_source.view(-1, 1, 1), torch.zeros_like(hs), hs)
        if drop_pose is not None:
            pose = torch.where(drop_pose.view(-1, 1, 1, 1), torch.zeros_like(pose), pose)
        return Conditions(hs, cls, pose)

    def _add_pose_features(self, module, inputs, output):
        # forward hook on unet.conv_in: sample = conv_in(x) + pose features (official: + my_pose_cond)
        if self._pose_features is None:
            return output
        return output + self._pose_features.to(output.dtype)

    @contextmanager
    def _pose(self, features: torch.Tensor):
        self._pose_features = features
        try:
            yield
        finally:
            self._pose_features = None

    def denoise(self, noisy_latents: torch.Tensor, timesteps: torch.Tensor, cond: Conditions) -> torch.Tensor:
        """UNet prediction (v in FPDM) for latents [N,C,h,w] at timesteps [N] (or scalar) given conditions."""
        if cond.pose_features.shape[-2:] != noisy_latents.shape[-2:]:
            raise BenchError(f"pose features {tuple(cond.pose_features.shape[-2:])} do not match the latents "
                             f"{tuple(noisy_latents.shape[-2:])}: the pose image must be at the model resolution")
        with self._pose(cond.pose_features):
            return self.unet(noisy_latents.to(self.unet.dtype), timesteps, encoder_hidden_states=cond.hidden_states,
                             class_labels=cond.class_emb).sample

    def forward(self, noisy_latents, timesteps, source_tokens, fusion, pose_image,
                drop_source=None, drop_fusion=None, drop_pose=None) -> torch.Tensor:
        cond = self.project(source_tokens, fusion, pose_image, drop_source, drop_fusion, drop_pose)
        return self.denoise(noisy_latents, timesteps, cond)

    # --- parameters ---------------------------------------------------------------------------
    def trainable_modules(self) -> tuple[str, ...]:
        return TRAINABLE + (("source_encoder",) if self.source_encoder_trainable else ())

    def trainable_parameters(self):
        for name in self.trainable_modules():
            yield from getattr(self, name).parameters()

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        names = self.trainable_modules()
        return {k: v for k, v in self.state_dict().items() if k.split(".", 1)[0] in names}

    def count_parameters(self) -> dict[str, int]:
        parts = ("vae", "unet", "source_encoder", "source_proj", "fusion_proj", "pose_embed")
        out = {p: sum(x.numel() for x in getattr(self, p).parameters()) for p in parts}
        out["total"] = sum(out.values())
        return out

    # --- persistence --------------------------------------------------------------------------
    def saved_config(self) -> dict:
        """Everything needed to rebuild the modules without the original files."""
        cfg = copy.deepcopy(self.config)
        return {"format": FORMAT, "version": 1, "stage2": cfg, "fusion_dim": self.fusion_dim,
                "vae_config": self.vae.to_dict() if isinstance(self.vae, PatchPCAAutoencoder) else dict(self.vae.config),
                "unet_config": dict(self.unet.config),
                "source_encoder_config": self.source_encoder.config.to_dict(),
                "source_encoder_saved": self.saves_source_encoder()}

    def store_source_encoder(self) -> None:
        """Make save_pretrained write the source encoder's weights even when it is a frozen pretrained
        one: a converted official checkpoint carries its own DINOv2 (``src_image_encoder.*``), which need
        not equal the folder it was built from."""
        self.stores_source_encoder = True

    def saves_source_encoder(self) -> bool:
        # A frozen pretrained DINOv2 (300M params) that is the folder's own is read from that folder again;
        # a tiny, trained or converted one is saved.
        return (self.stores_source_encoder or self.source_encoder_trainable
                or self.config.get("source_encoder", {}).get("kind", "tiny") != "pretrained")

    def save_pretrained(self, out_dir: str | Path, dtype: torch.dtype | None = None) -> Path:
        """Write config.json + model.safetensors (``dtype``: storage dtype for floating tensors, e.g. fp16)."""
        keep_encoder = self.saves_source_encoder()
        state = {k: v for k, v in self.state_dict().items() if keep_encoder or not k.startswith("source_encoder.")}
        return save_folder(out_dir, state, self.saved_config(), dtype=dtype, metadata={"format": FORMAT},
                           weights_name=WEIGHTS_NAME, config_name=CONFIG_NAME, json_default=_json_default)

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu",
                        dtype: torch.dtype = torch.float32) -> "Stage2Model":
        """Load a folder written by save_pretrained; modules are rebuilt from the saved configs."""
        path = Path(path)
        saved = read_config(path, "FPDM stage-2 checkpoint", FORMAT, CONFIG_NAME, WEIGHTS_NAME)
        weights = path / WEIGHTS_NAME
        pca = saved["stage2"].get("vae", {}).get("kind") == PatchPCAAutoencoder.kind
        modules = {"vae": (PatchPCAAutoencoder(**saved["vae_config"]) if pca
                           else AutoencoderKL.from_config(_strip(saved["vae_config"]))),
                   "unet": UNet2DConditionModel.from_config(_strip(saved["unet_config"]))}
        if saved.get("source_encoder_saved", True):
            enc = dict(saved["source_encoder_config"])
            modules["source_encoder"] = Dinov2Model(Dinov2Config(**{k: v for k, v in enc.items()
                                                                    if k not in ("transformers_version", "architectures")}))
        else:  # a frozen pretrained DINOv2 is read from its folder again
            enc = saved["stage2"].get("source_encoder", {})
            # one kept inside this folder (as `weights fetch fpdm` writes it) is named relative to it,
            # so the checkpoint folder can be moved
            inside = path / str(enc.get("path") or "")
            if enc.get("path") and not Path(enc["path"]).is_absolute() and (inside / "config.json").is_file():
                saved["stage2"]["source_encoder"] = {**enc, "path": str(inside)}
        model = cls(saved["stage2"], saved["fusion_dim"], modules=modules)
        if saved.get("source_encoder_saved", True):
            model.stores_source_encoder = True  # saved again as it was loaded
        state = read_weights(weights, "FPDM stage-2 checkpoint", float32=True)
        load_matching(model, state, weights, "FPDM stage-2 model",
                      None if saved.get("source_encoder_saved", True) else "source_encoder.")
        return model.to(device=device, dtype=dtype).eval()


def _strip(cfg: dict) -> dict:
    return {k: v for k, v in cfg.items() if not k.startswith("_")}


def _json_default(o):
    if isinstance(o, (tuple, set)):
        return list(o)
    if isinstance(o, torch.dtype):
        return str(o).replace("torch.", "")
    return str(o)


def build_model(config: dict, fusion_dim: int) -> Stage2Model:
    """Stage2Model from a full config ({'stage2': {...}, ...}) or just its stage2 section."""
    return Stage2Model(config.get("stage2", config), fusion_dim)


def build_scheduler(stage2_cfg: dict):
    """The training noise schedule: a DDPMScheduler from ``stage2.scheduler`` (kwargs, or ``path`` to a
    Stable Diffusion folder whose ``scheduler/`` is read, as the official code does)."""
    from diffusers import DDPMScheduler

    cfg = dict(stage2_cfg.get("scheduler") or {})
    path = cfg.pop("path", None)
    if path:
        try:
            return DDPMScheduler.from_pretrained(str(path), subfolder=cfg.pop("subfolder", "scheduler"),
                                                 local_files_only=True, **cfg)
        except (OSError, ValueError, EnvironmentError) as e:
            raise _local_error("noise scheduler config for FPDM stage 2", path, "scheduler/scheduler_config.json", e) from None
    return DDPMScheduler(**cfg)
