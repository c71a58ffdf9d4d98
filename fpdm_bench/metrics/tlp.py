"""tLP: TecoGAN's temporal LPIPS (Chu et al., ToG 2020), as its metrics.py computes it.

For consecutive frames t-1, t, with generated frames g and ground truth y::

    tLP_t = | LPIPS(g_{t-1}, g_t) - LPIPS(y_{t-1}, y_t) |

thunil/TecoGAN ``metrics.py`` @bc747a4, lines 174-175 and 194-200: the frames are cut with
``crop_8x8`` (see :mod:`fpdm_bench.metrics.tof`), LPIPS is v0.1 ``net-lin`` alex on [-1, 1] inputs
(lines 115, 186-187; the lpips package's v0.1 alex, as :mod:`fpdm_bench.metrics.lpips`), and the difference
of the two perceptual distances is taken. TecoGAN prints it times 100 (``tLPx100``, line 198) and its
paper tabulates tLP×100; here the value is not scaled. The LPIPS network is the LPIPS metric's
(shared by name, so one AlexNet serves both), with its weights from the same local file: without
them tLP is ``n/a`` with the file named, as LPIPS is. A video's value is the mean of its transitions;
the result is the mean over videos with a CI over videos.
"""
from __future__ import annotations

import numpy as np
import torch

from fpdm_bench.metrics.base import SequenceMetric
from fpdm_bench.metrics.lpips import NETS, build
from fpdm_bench.metrics.tof import crop_window

CHUNK = 16  # frame pairs per LPIPS call


class TLP(SequenceMetric):
    """TecoGAN's tLP: |LPIPS between consecutive generated frames - the same for the ground truth|."""

    name = "tlp"
    higher_is_better = False
    weights = tuple(NETS.values())
    title, latex_title = "tLP", "tLP"
    order = 130

    def __init__(self, key: str | None = None, net: str = "alex", crop: str = "tecogan"):
        super().__init__(key)
        if net not in NETS:
            raise ValueError(f"unknown LPIPS net {net!r}; known: {', '.join(NETS)}")
        crop_window(crop, 64, 64)  # refuse an unknown crop when the protocol is read
        self.net, self.crop = net, crop
        self.model = None

    def setup(self, ctx) -> None:
        self.model = ctx.network(f"lpips-{self.net}",
                                 lambda device: build(self.net, ctx.weights.get(NETS[self.net].name), device))

    def settings(self) -> dict:
        return {"net": self.net, "normalize": True, "crop": self.crop, "scale": "1 (TecoGAN prints x100)",
                "weights_file": getattr(self.model, "weights_file", None)}

    @torch.no_grad()
    def _consecutive(self, frames: torch.Tensor) -> np.ndarray:
        """[F-1] LPIPS(frame t-1, frame t) of [F, 3, H, W] frames (already cropped)."""
        dev = next(iter(self.model.parameters()), torch.empty(0)).device
        out = []
        for s in range(0, len(frames) - 1, CHUNK):
            a = frames[s: s + CHUNK + 1].float().to(dev)
            out.append(self.model(a[:-1], a[1:], normalize=True).flatten().double().cpu())
        return torch.cat(out).numpy()

    def transitions(self, generated, target):
        rows, cols = crop_window(self.crop, *generated.shape[-2:])
        dg = self._consecutive(generated[..., rows, cols])
        dy = self._consecutive(target[..., rows, cols])
        return np.abs(dg - dy)
