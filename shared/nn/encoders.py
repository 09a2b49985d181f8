"""Device-side encoders: a backbone (MLP or CNN with hyper layers, or none) and a head.

Architectures (``arch=``): "mlp" (hyper FC + ReLU, then the head), "cnn" (reduced VL-VFE
Table II) and "fc" (VL-VFE Table I: the head's one fully connected layer + tanh is the whole
device network, as for the paper's microcontroller).

Heads (``head=``):
- "gaussian": Hyper-VIB eq. (1), mu = tanh(.) (peak <= 1) and theta = softplus(.). Training
  transmits z = mu + theta·eps; at inference the device transmits mu (deterministic).
- "deterministic": VL-VFE eq. (8), z_i = tanh(γ_i·ŵ_i·[h; 1]) where the weights and the bias
  of row i are normalised together (ŵ_i = [w_i, b_i]/||[w_i, b_i]||), so γ_i ≥ 0, the
  importance of dimension i, is the only scale. γ is a learned vector (fixed length) or comes
  from the variable-length module (a function of the channel noise, and of β in a hyper model).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from shared.nn.hyper import HyperConv2d, HyperLinear
from shared.nn.variable_length import VariableLengthImportance

HEADS = ("gaussian", "deterministic")
ARCHS = ("mlp", "cnn", "fc")


class ResidualBlock(nn.Module):
    """Two 3x3 hyper convs with a skip connection (reduced VL-VFE Table II block)."""

    def __init__(self, channels: int, **gates):
        super().__init__()
        self.conv1 = HyperConv2d(channels, channels, 3, padding=1, **gates)
        self.conv2 = HyperConv2d(channels, channels, 3, padding=1, **gates)

    def forward(self, x, beta, snr_db):
        out = F.relu(self.conv1(x, beta, snr_db))
        return F.relu(x + self.conv2(out, beta, snr_db))


class MlpBackbone(nn.Module):
    """Flatten -> hyper FC -> ReLU (the device FC of VL-VFE Table I, plus the gates)."""

    def __init__(self, input_shape, hidden: int, **gates):
        super().__init__()
        self.fc = HyperLinear(math.prod(input_shape), hidden, **gates)
        self.out_features = hidden

    def forward(self, x, beta, snr_db):
        return F.relu(self.fc(x.flatten(1), beta, snr_db))


class FlattenBackbone(nn.Module):
    """No hidden layer: the head's FC + tanh is the whole device network (VL-VFE Table I)."""

    def __init__(self, input_shape):
        super().__init__()
        self.out_features = math.prod(input_shape)

    def forward(self, x, beta, snr_db):
        return x.flatten(1)


class CnnBackbone(nn.Module):
    """conv(stride 2) -> residual block -> conv(stride 2) -> flatten (reduced Table II)."""

    def __init__(self, input_shape, channels: int = 32, **gates):
        super().__init__()
        in_ch, height, width = input_shape
        self.conv_in = HyperConv2d(in_ch, channels, 3, stride=2, padding=1, **gates)
        self.block = ResidualBlock(channels, **gates)
        self.conv_out = HyperConv2d(channels, channels // 2, 3, stride=2, padding=1, **gates)
        h, w = (height + 1) // 2, (width + 1) // 2
        self.out_features = (channels // 2) * ((h + 1) // 2) * ((w + 1) // 2)

    def forward(self, x, beta, snr_db):
        h = F.relu(self.conv_in(x, beta, snr_db))
        h = self.block(h, beta, snr_db)
        return F.relu(self.conv_out(h, beta, snr_db)).flatten(1)


class RowNormLinear(nn.Module):
    """ŵ_i·[x; 1], each row [w_i, b_i] of unit norm (weights and bias together), VL-VFE eq. (8)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x):
        weight, bias = self.linear.weight, self.linear.bias
        norm = torch.sqrt((weight**2).sum(dim=1) + bias**2)  # [out]
        return F.linear(x, weight / norm.unsqueeze(1), bias / norm)


class Encoder(nn.Module):
    """Backbone + head. forward returns a dict: mu, theta, gamma (None when unused)."""

    def __init__(
        self,
        input_shape,
        d: int,
        arch: str = "mlp",
        head: str = "gaussian",
        hidden: int = 512,
        variable_length: bool = False,
        prune: bool = False,
        **gates,
    ):
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        if variable_length and head != "deterministic":
            raise ValueError("variable_length needs head='deterministic' (VL-VFE)")
        self.head = head
        if arch == "mlp":
            self.backbone = MlpBackbone(input_shape, hidden, **gates)
        elif arch == "cnn":
            self.backbone = CnnBackbone(input_shape, **gates)
        else:  # "fc": VL-VFE Table I, one FC layer + tanh on the device
            self.backbone = FlattenBackbone(input_shape)
        features = self.backbone.out_features
        if head == "gaussian":
            self.mu = HyperLinear(features, d, **gates)
            self.theta = HyperLinear(features, d, **gates)
        else:
            self.projection = RowNormLinear(features, d)
            if variable_length:
                self.importance = VariableLengthImportance(d, beta_gate=gates["beta_gate"])
            else:
                self.importance = None
                # fixed length: one learned γ_i per dimension, softplus(raw) ≈ 3 at the start;
                # pruned (VL-VFE Alg. 1): γ_i = |raw_i| from 1, as VL-VFE's code, so Adam moves
                # γ to the threshold γ0 at the pace of the paper's runs
                self.gamma_abs = prune
                start = 1.0 if prune else 3.0
                self.gamma_raw = nn.Parameter(torch.full((d,), start))

    def forward(self, x, beta, snr_db, noise_var):
        h = self.backbone(x, beta, snr_db)
        if self.head == "gaussian":
            mu = torch.tanh(self.mu(h, beta, snr_db))
            theta = F.softplus(self.theta(h, beta, snr_db) - 3.0)
            return {"mu": mu, "theta": theta, "gamma": None}
        if self.importance is not None:
            gamma = self.importance(noise_var, beta)
        else:
            gamma = self.gamma().expand(x.shape[0], -1)
        mu = torch.tanh(gamma * self.projection(h))  # VL-VFE eq. (8): γ inside the tanh
        return {"mu": mu, "theta": torch.zeros_like(mu), "gamma": gamma}

    def gamma(self) -> torch.Tensor:
        """γ [d] of a fixed-length deterministic head (VL-VFE eq. 8)."""
        return self.gamma_raw.abs() if self.gamma_abs else F.softplus(self.gamma_raw)
