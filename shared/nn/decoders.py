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


class FusionDecoder(nn.Module):
    """The edge's fusion decoder ψ over K links' received features, QML-IB eq. (3)/(15).

    The first layer is one hyper FC branch per link, gated on that link's own β_k and SNR_k,
    summed over the links that arrived (a missing link's features are zeros and its branch
    contributes nothing); the rest is MlpDecoder's, gated on the present links' mean log β
    and mean SNR. With K = 1 and its one link present it computes exactly MlpDecoder.

    Shapes: received [N, K, d]; beta, snr_db, present [N, K] (present 1.0 / 0.0).
    """

    def __init__(self, d: int, n_outputs: int, n_links: int, widths=(1024, 256), **gates):
        super().__init__()
        self.n_links = n_links
        self.branches = nn.ModuleList(HyperLinear(d, widths[0], **gates) for _ in range(n_links))
        self.fc2 = HyperLinear(widths[0], widths[1], **gates)
        self.out = nn.Linear(widths[1], n_outputs)

    @staticmethod
    def pooled_condition(beta, snr_db, present):
        """(geometric mean β, mean SNR) over the present links, each [N, 1]."""
        count = present.sum(dim=1, keepdim=True).clamp_min(1.0)
        log_beta = (torch.log(beta) * present).sum(dim=1, keepdim=True) / count
        snr = (snr_db * present).sum(dim=1, keepdim=True) / count
        return torch.exp(log_beta), snr

    def forward(self, received, beta, snr_db, present):
        h = 0.0
        for k, branch in enumerate(self.branches):
            cond = (beta[:, k : k + 1], snr_db[:, k : k + 1])
            h = h + present[:, k : k + 1] * branch(received[:, k], *cond)
        beta_all, snr_all = self.pooled_condition(beta, snr_db, present)
        h = F.relu(self.fc2(F.relu(h), beta_all, snr_all))
        return self.out(h)
