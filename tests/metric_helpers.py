"""Small shared helpers for the metric/scoring tests (not a test module)."""
import torch
import torch.nn as nn


class TinyFeatures(nn.Module):
    """A fixed random feature network (16-d) standing in for Inception where only plumbing is tested."""

    dims = 16
    weights_sha256 = "tiny-features-v1"

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(3, 16, 3, stride=2)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g))
            self.conv.bias.zero_()

    @torch.no_grad()
    def forward(self, x):
        return torch.relu(self.conv(x.float())).mean((2, 3))
