"""Edge-side decoders on the received symbols y [N, d] (zero-filled past the sent prefix).

- MLP: hyper FC 1024 -> 256 -> outputs (VL-VFE / QML-IB Table I server).
- CNN: hyper FC back to a feature map -> conv -> residual block -> average pool -> FC
  (reduced Table II server).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from shared.nn.encoders import ResidualBlock
from shared.nn.hyper import HyperConv2d, HyperLinear


class MlpDecoder(nn.Module):
    def __init__(self, d: int, n_outputs: int, widths=(1024, 256), **gates):
        super().__init__()
        self.fc1 = HyperLinear(d, widths[0], **gates)
        self.fc2 = HyperLinear(widths[0], widths[1], **gates)
        self.out = nn.Linear(widths[1], n_outputs)

    def forward(self, y, beta, snr_db):
        h = F.relu(self.fc1(y, beta, snr_db))
        h = F.relu(self.fc2(h, beta, snr_db))
        return self.out(h)


class CnnDecoder(nn.Module):
    def __init__(self, d: int, n_outputs: int, channels: int = 32, side: int = 7, **gates):
        super().__init__()
        self.channels, self.side = channels, side
        self.fc = HyperLinear(d, channels * side * side, **gates)
        self.conv = HyperConv2d(channels, 2 * channels, 3, padding=1, **gates)
        self.block = ResidualBlock(2 * channels, **gates)
        self.out = nn.Linear(2 * channels, n_outputs)

    def forward(self, y, beta, snr_db):
        h = F.relu(self.fc(y, beta, snr_db)).view(-1, self.channels, self.side, self.side)
        h = F.relu(self.conv(h, beta, snr_db))
        h = self.block(h, beta, snr_db)
        return self.out(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))
