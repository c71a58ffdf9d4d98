"""A linear "VAE" for the tiny recipe: non-overlapping patches projected on their principal components.

Why: there is no pretrained VAE offline, and a random-init ``AutoencoderKL`` fitted on 2 CPU cores
learns slowly. Measured on the synthetic DeepFashion test targets at 64x44 (4x down): after 600
steps (3 min) its reconstruction MAE was 0.064-0.080, as large as keypoint-warp's whole error
(0.080), so no model decoding through it could beat that floor. Principal components of 4x4 / 8x8 /
16x16 RGB patches, fitted in closed form on the training images in seconds, keep the textures far
better (same data, 16x11 latents: MAE 0.030 with 16 channels at 64x44, 0.015 with 64 channels at the
native 256x176) and make the latent space an orthogonal projection of pixel space, so the
diffusion's Gaussian noise is pixel noise restricted to that subspace.

Layout: ``x`` [B,3,H,W] in [-1,1] -> pixel_unshuffle(patch) -> subtract the patch mean -> project on
``basis`` [3·patch², latent_channels] -> divide by ``std`` -> latents [B, k, H/patch, W/patch];
decoding is the transpose. ``whiten: true`` sets ``std`` to each component's standard deviation, so
every latent channel has unit variance (``std`` = 1 otherwise). Neither setting rescued many
components per position: with 64 components of 16x16 patches (and 48 of 8x8) the tiny v-prediction
models decoded to speckle or blocks, whitened or not (docs/models/fpdm.md, "The shipped tiny checkpoints"); the
shipped recipe keeps 8 components of 4x4 patches, unwhitened.
The encoder and decoder keep ``AutoencoderKL``'s call shapes (``encode(x).latent_dist``,
``decode(z).sample``), so the stage-2 code treats both alike. Deterministic: the posterior is a
point (``DiagonalGaussianDistribution(..., deterministic=True)``, log-variance at its floor -30).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
from torch import nn

from fpdm_bench.modeling.pretrained import CONFIG_NAME, WEIGHTS_NAME, read_weights, save_folder
from fpdm_bench.models.state import load_strict


@dataclass
class _Encoded:
    latent_dist: DiagonalGaussianDistribution


@dataclass
class _Decoded:
    sample: torch.Tensor


class PatchPCAAutoencoder(nn.Module):
    """Patch PCA autoencoder. ``patch``: side of the square patch (= downsampling factor);
    ``latent_channels``: components kept (at most 3·patch²)."""

    kind = "patch-pca"

    def __init__(self, patch: int = 8, latent_channels: int = 32, in_channels: int = 3, scaling_factor: float = 1.0,
                 whiten: bool = False):
        super().__init__()
        dim = in_channels * patch * patch
        if not 1 <= latent_channels <= dim:
            raise ValueError(f"patch-pca: latent_channels must be in 1..{dim} for {patch}x{patch} patches, got {latent_channels}")
        self.config = SimpleNamespace(patch=int(patch), latent_channels=int(latent_channels),
                                      in_channels=int(in_channels), scaling_factor=float(scaling_factor),
                                      whiten=bool(whiten))
        self.register_buffer("mean", torch.zeros(dim))
        # before fitting: the first k pixel coordinates of each patch (a valid, if poor, orthonormal basis)
        self.register_buffer("basis", torch.eye(dim)[:, :latent_channels].clone())
        self.register_buffer("std", torch.ones(latent_channels))

    @property
    def scale_factor(self) -> int:
        return self.config.patch

    @property
    def dtype(self) -> torch.dtype:
        return self.basis.dtype

    def to_dict(self) -> dict:
        return dict(vars(self.config))

    # A folder like a diffusers model's (config.json with ``_class_name`` + model.safetensors), so a
    # pipeline that takes a VAE folder (the CFLD baseline's tiny checkpoint) can hold this one instead.
    def save_pretrained(self, folder: str | Path) -> Path:
        return save_folder(folder, self.state_dict(), {"_class_name": type(self).__name__, **self.to_dict()})

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "PatchPCAAutoencoder":
        folder = Path(folder)
        cfg = {k: v for k, v in json.loads((folder / CONFIG_NAME).read_text()).items() if not k.startswith("_")}
        model = cls(**cfg)
        load_strict(model, read_weights(folder / WEIGHTS_NAME, "patch-PCA autoencoder"),
                    str(folder / WEIGHTS_NAME), "patch-PCA autoencoder")
        return model.eval()

    @staticmethod
    def is_folder(folder: str | Path) -> bool:
        """Whether ``folder/config.json`` names this class (else it is a diffusers AutoencoderKL folder)."""
        try:
            return json.loads((Path(folder) / CONFIG_NAME).read_text()).get("_class_name") == "PatchPCAAutoencoder"
        except (OSError, ValueError, AttributeError):
            return False

    @torch.no_grad()
    def fit(self, images: torch.Tensor, chunk: int = 64) -> dict:
        """Principal components of the patches of ``images`` [N,3,H,W] in [-1,1] (float64
        accumulation). Signs are fixed (largest-magnitude entry positive) so the basis does not
        depend on the LAPACK build. Returns the kept variance fraction."""
        p, dim = self.config.patch, self.mean.numel()
        total = torch.zeros(dim, dtype=torch.float64)
        outer = torch.zeros(dim, dim, dtype=torch.float64)
        n = 0
        for i in range(0, len(images), chunk):
            rows = F.pixel_unshuffle(images[i:i + chunk].double(), p).permute(0, 2, 3, 1).reshape(-1, dim)
            total += rows.sum(0)
            outer += rows.T @ rows
            n += rows.shape[0]
        mean = total / n
        cov = outer / n - torch.outer(mean, mean)
        evals, evecs = torch.linalg.eigh(cov)  # ascending
        order = torch.argsort(evals, descending=True)
        evals, evecs = evals[order].clamp_min(0), evecs[:, order]
        k = self.config.latent_channels
        basis = evecs[:, :k]
        sign = torch.sign(basis.gather(0, basis.abs().argmax(0, keepdim=True)))
        self.basis.copy_((basis * sign).to(self.basis.dtype))
        self.mean.copy_(mean.to(self.mean.dtype))
        if self.config.whiten:
            self.std.copy_(evals[:k].sqrt().clamp_min(1e-6).to(self.std.dtype))
        return {"explained_variance": float(evals[:k].sum() / evals.sum().clamp_min(1e-12))}

    def encode(self, x: torch.Tensor) -> _Encoded:
        p = self.config.patch
        rows = F.pixel_unshuffle(x.to(self.basis.dtype), p)  # [B, D, h, w]
        z = torch.einsum("bdhw,dk->bkhw", rows - self.mean.view(1, -1, 1, 1), self.basis) / self.std.view(1, -1, 1, 1)
        return _Encoded(DiagonalGaussianDistribution(torch.cat([z, torch.full_like(z, -30.0)], 1), deterministic=True))

    def decode(self, z: torch.Tensor) -> _Decoded:
        z = z.to(self.basis.dtype) * self.std.view(1, -1, 1, 1)
        rows = torch.einsum("bkhw,dk->bdhw", z, self.basis) + self.mean.view(1, -1, 1, 1)
        return _Decoded(F.pixel_shuffle(rows, self.config.patch))


def latent_factor(vae) -> int:
    """How many pixels one latent position spans, for this autoencoder or a diffusers AutoencoderKL
    (8 for SD's VAE)."""
    if isinstance(vae, PatchPCAAutoencoder):
        return vae.scale_factor
    return 2 ** (len(vae.config.block_out_channels) - 1)


def load_autoencoder(folder: str | Path):
    """The autoencoder saved in ``folder``: this one (config ``_class_name`` PatchPCAAutoencoder) or a
    diffusers ``AutoencoderKL`` (SD's VAE), as float32."""
    if PatchPCAAutoencoder.is_folder(folder):
        return PatchPCAAutoencoder.from_pretrained(folder)
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_pretrained(str(folder), torch_dtype=torch.float32)
