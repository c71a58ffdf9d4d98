"""FVD: the Fréchet video distance (Unterthiner et al. 2018, "Towards accurate generative models of
video"), on I3D features of fixed-length clips, as StyleGAN-V and cd-fvd compute it.

Clips: every ``clip_length`` consecutive frames of a video (a run of consecutive scored frames),
starting at frame 0 and every ``clip_stride`` frames after it (default 16 and 16: non-overlapping
16-frame clips, the "FVD16" of StyleGAN-V; a video shorter than a clip gives none). The generated
clip and the ground-truth clip cover the same frames. Frames are the protocol's prepared frames at
its evaluation size, as 8-bit RGB.

Network: StyleGAN-V's TorchScript I3D (``i3d_torchscript.pt``, universome/stylegan-v @3fecd69
``src/metrics/frechet_video_distance.py:19-23``: "perfectly reproduced torchscript version of the
I3D model, trained on Kinetics-400" that the original TF FVD uses), called as StyleGAN-V calls it
(``metric_utils.py:231-245``): ``detector(clips, rescale=True, resize=True, return_features=True)``
on uint8 clips [N, 3, T, H, W] (the script maps [0, 255] to [-1, 1] and resizes each frame to
224x224 — PHOENIX's 260x210 frames are squeezed, not cropped; the features are the 400 logits before
the softmax). The file is looked for like every weight file (``fpdm-bench weights``);
without it FVD is ``n/a`` with the file named. It is never run with random weights.

Distance: ‖μ_g − μ_r‖² + tr Σ_g + tr Σ_r − 2 tr √(Σ_g Σ_r) between the generated and the ground-truth
clips' features, with population covariances (divided by n, as StyleGAN-V's (``metric_utils.py:122-127``) and
cd-fvd's ``FeatureStats.get_mean_cov``; the distance itself ``frechet_video_distance.py:54-56``), through :func:`fpdm_bench.metrics.fid.frechet_distance` (the test
checks it against pytorch-fid's ``calculate_frechet_distance`` and a direct computation). cd-fvd
0.1.1 was read, not used: it computes the same distance, but on another I3D file (TATS'
``i3d_pretrained_400.pt``) and needs einops, which this environment lacks.

FVD depends on the number of clips (like FID on n). Its 95 % CI is a percentile bootstrap over
videos: ``resamples`` draws of the videos with replacement (their generated and ground-truth clips
together), one FVD each. It has no per-video value, so ``compare`` takes the two results.json
intervals (``resample = None``); ``sequences.jsonl`` records each video's clip count.
"""
from __future__ import annotations

import numpy as np
import torch

from fpdm_bench import weights as W
from fpdm_bench.images import to_uint8
from fpdm_bench.metrics.base import SequenceMetric
from fpdm_bench.metrics.fid import frechet_distance

I3D_WEIGHTS = W.WeightSpec("i3d-torchscript", "i3d_torchscript.pt", "FVD (I3D)",
                           "FVD's I3D network (StyleGAN-V's TorchScript of the TF FVD's Kinetics-400 I3D)",
                           url="https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1")
CLIPS_PER_CALL = 4  # clips per network call, counted from each video's start (results do not depend on batches)


class I3D(torch.nn.Module):
    """The TorchScript I3D with StyleGAN-V's arguments: uint8 clips [N, 3, T, H, W] -> [N, 400]."""

    def __init__(self, detector, path):
        super().__init__()
        self.detector, self.weights_file = detector, str(path)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.detector(clips, rescale=True, resize=True, return_features=True)


def build(path=None, device="cpu") -> I3D:
    file = W.find(I3D_WEIGHTS, path)
    return I3D(torch.jit.load(str(file), map_location="cpu").eval(), file).to(device)


def clip_starts(n_frames: int, length: int, stride: int) -> range:
    """First frames of the clips of a run of n consecutive frames."""
    return range(0, n_frames - length + 1, stride)


def fvd(generated: np.ndarray, real: np.ndarray) -> float:
    """Fréchet distance between two sets of clip features [n, d], population covariances."""
    if len(generated) < 2 or len(real) < 2:
        raise ValueError(f"FVD needs at least 2 clips, got {len(generated)}")
    g, r = np.asarray(generated, np.float64), np.asarray(real, np.float64)
    return frechet_distance(g.mean(0), np.cov(g, rowvar=False, bias=True),
                            r.mean(0), np.cov(r, rowvar=False, bias=True))


class FVD(SequenceMetric):
    """Fréchet video distance on I3D features of fixed-length clips (StyleGAN-V's TorchScript I3D)."""

    name = "fvd"
    higher_is_better = False
    weights = (I3D_WEIGHTS,)
    title, latex_title = "FVD", "FVD"
    order = 100
    depends_on_n = True
    resample = None  # no per-video value: compare uses the two results.json CIs

    def __init__(self, key: str | None = None, clip_length: int = 16, clip_stride: int = 16, resamples: int = 200,
                 seed: int = 0):
        super().__init__(key)
        if clip_length < 1 or clip_stride < 1:
            raise ValueError(f"fvd: clip_length and clip_stride must be positive, got {clip_length}, {clip_stride}")
        self.clip_length, self.clip_stride = int(clip_length), int(clip_stride)
        self.resamples, self.seed = int(resamples), int(seed)
        self.network = None
        self.features: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # video -> (generated, real) [k, d]

    def setup(self, ctx) -> None:
        self.network = ctx.network("i3d", lambda device: build(ctx.weights.get(I3D_WEIGHTS.name), device))

    def settings(self) -> dict:
        return {"clip_length": self.clip_length, "clip_stride": self.clip_stride, "covariance": "population (1/n)",
                "network": "i3d_torchscript.pt(rescale=True, resize=True -> 224x224, return_features=True)",
                "weights_file": getattr(self.network, "weights_file", None), "ci": f"percentile bootstrap over "
                f"videos, {self.resamples} resamples, seed {self.seed}"}

    @torch.no_grad()
    def _features(self, clips: list[torch.Tensor]) -> np.ndarray:
        dev = next(iter(self.network.parameters()), torch.empty(0)).device
        out = []
        for s in range(0, len(clips), CLIPS_PER_CALL):
            batch = torch.stack(clips[s: s + CLIPS_PER_CALL]).to(dev)  # [N, 3, T, H, W] uint8
            out.append(self.network(batch).double().cpu().numpy())
        return np.concatenate(out)

    def _clips(self, frames: torch.Tensor, starts) -> list[torch.Tensor]:
        u8 = torch.from_numpy(to_uint8(frames)).permute(3, 0, 1, 2)  # [3, F, H, W]
        return [u8[:, s: s + self.clip_length].contiguous() for s in starts]

    def update(self, video, runs) -> dict:
        gen, real = [], []
        for g, t in runs:
            starts = clip_starts(len(g), self.clip_length, self.clip_stride)
            gen += self._clips(g, starts)
            real += self._clips(t, starts)
        if gen:
            self.features[video] = (self._features(gen), self._features(real))
        return {"value": None, "clips": len(gen)}

    def merge(self, other: FVD) -> None:
        self.features.update(other.features)

    def compute(self) -> dict[str, dict]:
        vids = list(self.features)
        if not vids:
            raise ValueError(f"no video has {self.clip_length} consecutive scored frames (one clip)")
        gen = np.concatenate([self.features[v][0] for v in vids])
        real = np.concatenate([self.features[v][1] for v in vids])
        value = fvd(gen, real)
        ci = None
        if len(vids) > 1 and self.resamples > 1:
            rng = np.random.default_rng(self.seed)
            reps = []
            for pick in rng.integers(0, len(vids), size=(self.resamples, len(vids))):
                g = np.concatenate([self.features[vids[i]][0] for i in pick])
                r = np.concatenate([self.features[vids[i]][1] for i in pick])
                try:
                    reps.append(fvd(g, r))
                except ValueError:  # a draw of single-clip videos only
                    continue
            if len(reps) > 1:
                lo, hi = np.percentile(reps, [2.5, 97.5])
                ci = [float(lo), float(hi)]
        return {self.key: {"value": value, "ci95": ci, "n": len(vids), "clips": len(gen), "metric": self.name,
                           "unit": "videos"}}
