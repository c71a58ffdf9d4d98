"""CFLD's pose encoder: the 21-channel pose map -> one residual per UNet down block (T2I-adapter style).

Facts (github.com/YanzuoLu/CFLD at f2ea2a7, ``models/pose_encoder.py:10-40``, read, never copied;
docs/models/cfld.md): PixelUnshuffle by 4 (21 -> 336 channels at 1/4 of the pose size, which is
the latent size of a 256 pose), a 1x1 conv, then per level a diffusers ``ResnetBlock2D`` without
time embedding whose output is kept, and 2x2 average pooling between levels. Built on diffusers'
own ``ResnetBlock2D`` as the official code is, so the parameter names are diffusers'.
"""
from __future__ import annotations

import torch
from diffusers.models.resnet import ResnetBlock2D
from torch import nn


class PoseEncoder(nn.Module):
    def __init__(self, pose_channels: int = 21, downscale_factor: int = 4, in_channels: int = 320,
                 channels: tuple = (320, 640, 1280)):
        super().__init__()
        self.unshuffle = nn.PixelUnshuffle(downscale_factor)
        self.conv_in = nn.Conv2d(pose_channels * downscale_factor ** 2, in_channels, kernel_size=1)
        ins = [in_channels, *channels[:-1]]
        self.resnets = nn.ModuleList(ResnetBlock2D(in_channels=i, out_channels=o, temb_channels=None)
                                     for i, o in zip(ins, channels))

    def forward(self, pose: torch.Tensor) -> list[torch.Tensor]:
        h = self.conv_in(self.unshuffle(pose))
        features = []
        for k, resnet in enumerate(self.resnets):
            h = resnet(h, None)
            features.append(h)
            if k < len(self.resnets) - 1:
                h = nn.functional.avg_pool2d(h, 2)
        return features
