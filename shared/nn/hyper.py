"""Hyper layers: a plain layer whose outputs are scaled by tiny condition-driven gates.

- β module, Hyper-VIB eq. (12)-(14): per output unit/channel, sigmoid(u·log β + v).
- SNR module, Hyper-AJSCC eq. (11)-(16): per output unit/channel, (ω·ν + c), with
  ν = snr_db / snr_norm (dB scaled to about [0, 1] for the default 0-25 dB range).

β and snr_db are per example, shape [N, 1] (β linear, > 0; snr_db in dB). With both
modules off a hyper layer is exactly its plain layer (the baselines' layer).
"""

from __future__ import annotations

import torch
from torch import nn

DEFAULT_SNR_NORM = 25.0


class BetaGate(nn.Module):
    """sigmoid(u·log β + v) per output unit, Hyper-VIB eq. (13)."""

    def __init__(self, features: int):
        super().__init__()
        self.u = nn.Parameter(torch.zeros(features))
        self.v = nn.Parameter(torch.zeros(features))

    def forward(self, beta: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(torch.log(beta) * self.u + self.v)  # [N, features]


class SnrScale(nn.Module):
    """ω·ν + c per output unit, Hyper-AJSCC eq. (12); starts as the identity (ω=0, c=1)."""

    def __init__(self, features: int, snr_norm: float = DEFAULT_SNR_NORM):
        super().__init__()
        self.omega = nn.Parameter(torch.zeros(features))
        self.c = nn.Parameter(torch.ones(features))
        self.snr_norm = snr_norm

    def forward(self, snr_db: torch.Tensor) -> torch.Tensor:
        return (snr_db / self.snr_norm) * self.omega + self.c  # [N, features]


class _Gated(nn.Module):
    """Shared gate logic: scale [N, F, ...] outputs by the enabled modules."""

    def _init_gates(self, features: int, beta_gate: bool, snr_scale: bool, snr_norm: float):
        self.beta_gate = BetaGate(features) if beta_gate else None
        self.snr_scale = SnrScale(features, snr_norm) if snr_scale else None

    def _gate(self, out: torch.Tensor, beta: torch.Tensor | None, snr_db: torch.Tensor | None):
        extra = (1,) * (out.dim() - 2)
        if self.beta_gate is not None:
            if beta is None:
                raise ValueError("this layer has a β module: pass beta [N, 1]")
            out = out * self.beta_gate(beta).view(out.shape[0], -1, *extra)
        if self.snr_scale is not None:
            if snr_db is None:
                raise ValueError("this layer has an SNR module: pass snr_db [N, 1]")
            out = out * self.snr_scale(snr_db).view(out.shape[0], -1, *extra)
        return out


class HyperLinear(_Gated):
    """nn.Linear with β and SNR gates per output unit, Hyper-VIB eq. (12), Hyper-AJSCC eq. (11)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        beta_gate: bool = True,
        snr_scale: bool = True,
        snr_norm: float = DEFAULT_SNR_NORM,
    ):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self._init_gates(out_features, beta_gate, snr_scale, snr_norm)

    def forward(self, x, beta=None, snr_db=None):
        return self._gate(self.linear(x), beta, snr_db)


class HyperConv2d(_Gated):
    """nn.Conv2d with β and SNR gates per output channel, Hyper-VIB eq. (14)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        beta_gate: bool = True,
        snr_scale: bool = True,
        snr_norm: float = DEFAULT_SNR_NORM,
    ):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding)
        self._init_gates(out_channels, beta_gate, snr_scale, snr_norm)

    def forward(self, x, beta=None, snr_db=None):
        return self._gate(self.conv(x), beta, snr_db)
