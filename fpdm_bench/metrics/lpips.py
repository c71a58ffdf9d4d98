"""LPIPS (alex or vgg) through the ``lpips`` package, with its backbone loaded from a local file.

The lpips package ships its linear heads (``weights/v0.1/{alex,vgg}.pth``) but takes the AlexNet/VGG16
backbone from torchvision's ImageNet weights, which would be downloaded. Here the package's model is
built with ``pnet_rand=True`` (no download) and the backbone tensors are then loaded from the
torchvision file found by :mod:`fpdm_bench.weights` (torch hub cache or a given path). lpips keeps
torchvision's ``features`` modules under ``net.sliceK.<index>``, so ``features.<index>.*`` maps
one-to-one onto ``net.sliceK.<index>.*``.

Inputs are [0, 1] images, scaled to [-1, 1] (``normalize=True``), as every PGPIS script does (FPDM
and CFLD via ``normalize=True``, PIDM/PoCoLD via ``x / 127.5 - 1``).
"""
from __future__ import annotations

import functools
from pathlib import Path

import torch

from fpdm_bench import weights as W
from fpdm_bench.metrics.base import PairedMetric

#: The torchvision backbone file of each LPIPS net.
NETS = {"alex": W.WeightSpec("alexnet", "alexnet-owt-7be5be79.pth", "LPIPS (alex)", "LPIPS alex backbone", "7be5be79",
                             url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"),
        "vgg": W.WeightSpec("vgg16", "vgg16-397923af.pth", "LPIPS (vgg)", "LPIPS vgg backbone", "397923af",
                            url="https://download.pytorch.org/models/vgg16-397923af.pth")}


def load_backbone(model, state: dict[str, torch.Tensor]) -> None:
    """Copy torchvision ``features.<i>.*`` tensors into an lpips.LPIPS model's ``net.sliceK.<i>.*``."""
    targets = {}
    for key in model.net.state_dict():
        _slice, index, leaf = key.split(".", 2)
        targets[key] = f"features.{index}.{leaf}"
    missing = [src for src in targets.values() if src not in state]
    if missing:
        raise ValueError(f"backbone file lacks {missing[:3]}...; is it a torchvision AlexNet/VGG16 state dict?")
    model.net.load_state_dict({k: state[src] for k, src in targets.items()})


def build(net: str = "alex", path: str | Path | None = None, device="cpu"):
    """lpips.LPIPS(net) with its backbone from the local torchvision file (WeightsMissing if absent)."""
    return _build_cached(net, str(path) if path else None, str(device))


@functools.lru_cache(maxsize=2)
def _build_cached(net: str, path: str | None, device: str):
    import lpips

    if net not in NETS:
        raise ValueError(f"unknown LPIPS net {net!r}; known: {', '.join(NETS)}")
    file = W.find(NETS[net], path)
    model = lpips.LPIPS(net=net, pnet_rand=True, verbose=False)
    load_backbone(model, torch.load(file, map_location="cpu", weights_only=True))
    model.weights_file = str(file)
    return model.eval().requires_grad_(False).to(device)


class LPIPS(PairedMetric):
    """Learned perceptual image patch similarity (lpips package, local backbone weights)."""

    name = "lpips"
    higher_is_better = False
    weights = tuple(NETS.values())
    title = latex_title = "LPIPS"
    order = 40
    sample_rank = 1
    sweep_summary = True

    def __init__(self, key: str | None = None, net: str = "alex", drop_remainder: int = 0):
        super().__init__(key, drop_remainder)
        if net not in NETS:
            raise ValueError(f"unknown LPIPS net {net!r}; known: {', '.join(NETS)}")
        self.net = net
        self.model = None

    def setup(self, ctx) -> None:
        self.model = ctx.network(f"lpips-{self.net}",
                                 lambda device: build(self.net, ctx.weights.get(NETS[self.net].name), device))

    def settings(self) -> dict:
        return {"net": self.net, "normalize": True, "weights_file": getattr(self.model, "weights_file", None),
                **super().settings()}

    @torch.no_grad()
    def per_sample(self, generated, target, batch):
        dev = next(iter(self.model.parameters()), torch.empty(0)).device
        out = self.model(generated.float().to(dev), target.float().to(dev), normalize=True)
        return out.flatten().double().cpu()
