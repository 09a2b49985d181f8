"""Hyper layers: a plain layer whose outputs are scaled by tiny condition-driven gates.

- β module, Hyper-VIB eq. (12)-(14): sigmoid(u·log β + v) per output unit (FC), and for a
  conv either per output channel (``conv_gate="channel"``) or, as in eq. (14), one gate per
  filter-by-input-channel kernel block plus one per bias (``conv_gate="kernel"``).
- SNR module, Hyper-AJSCC eq. (11)-(16): per output unit/channel, (ω·ν + c), with
  ν = snr_db / snr_norm (dB scaled to about [0, 1] for the default 0-25 dB range).

β and snr_db are per example, shape [N, 1] (β linear, > 0; snr_db in dB). With both
modules off a hyper layer is exactly its plain layer (the baselines' layer).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

DEFAULT_SNR_NORM = 25.0


# sigmoid(4) = 0.98: a new gate passes its layer almost unchanged. At v = 0 every gated layer
# would halve its output at the start, which starves deep hyper models.
BETA_GATE_V_INIT = 4.0


class BetaGate(nn.Module):
    """sigmoid(u·log β + v) per output unit, Hyper-VIB eq. (13); starts at u = 0, v = 4.

    ``scale`` s > 0 stores the gate's parameters as u = s·u', v = s·v' (the gate is the same
    function of β): Adam's step on u' and v' is about the learning rate whatever the gradient's
    size, so u and v move s times as fast as the layer weights, a learning rate s times the
    model's for the β module alone (the hypernetwork). s = 1 is eq. (13) exactly.
    """

    def __init__(self, features: int, v_init: float = BETA_GATE_V_INIT, scale: float = 1.0):
        super().__init__()
        if not scale > 0:
            raise ValueError(f"beta gate scale must be > 0, got {scale!r}")
        self.scale = float(scale)
        self.u = nn.Parameter(torch.zeros(features))
        self.v = nn.Parameter(torch.full((features,), float(v_init) / self.scale))

    def forward(self, beta: torch.Tensor) -> torch.Tensor:
        logit = torch.log(beta) * self.u + self.v
        if self.scale != 1.0:
            logit = self.scale * logit
        return torch.sigmoid(logit)  # [N, features]


class SnrScale(nn.Module):
    """ω·ν + c per output unit, Hyper-AJSCC eq. (12); starts as the identity (ω=0, c=1)."""

    def __init__(self, features: int, snr_norm: float = DEFAULT_SNR_NORM):
        super().__init__()
        self.omega = nn.Parameter(torch.zeros(features))
        self.c = nn.Parameter(torch.ones(features))
        self.snr_norm = snr_norm

    def forward(self, snr_db: torch.Tensor) -> torch.Tensor:
        return (snr_db / self.snr_norm) * self.omega + self.c  # [N, features]


CONV_GATES = ("channel", "kernel")


def check_conv_gate(conv_gate: str) -> str:
    if conv_gate not in CONV_GATES:
        raise ValueError(f"conv_gate must be one of {CONV_GATES}, got {conv_gate!r}")
    return conv_gate


class _Gated(nn.Module):
    """Shared gate logic: scale [N, F, ...] outputs by the enabled modules."""

    def _init_gates(
        self, features: int, beta_gate: bool, snr_scale: bool, snr_norm: float, gate_scale: float
    ):
        self.beta_gate = BetaGate(features, scale=gate_scale) if beta_gate else None
        self.snr_scale = SnrScale(features, snr_norm) if snr_scale else None

    def _gate(self, out: torch.Tensor, beta: torch.Tensor | None, snr_db: torch.Tensor | None):
        """Multiply ``out`` once by the product of the enabled gates ([N, F] before broadcast).

        The gates are combined at [N, F] first so a conv output [N, F, H, W] is touched by one
        multiply (forward and backward), not one per module.
        """
        scale = None
        if self.beta_gate is not None:
            if beta is None:
                raise ValueError("this layer has a β module: pass beta [N, 1]")
            scale = self.beta_gate(beta)
        if self.snr_scale is not None:
            if snr_db is None:
                raise ValueError("this layer has an SNR module: pass snr_db [N, 1]")
            snr = self.snr_scale(snr_db)
            scale = snr if scale is None else scale * snr
        if scale is None:
            return out
        return out * scale.view(out.shape[0], -1, *(1,) * (out.dim() - 2))


class HyperLinear(_Gated):
    """nn.Linear with β and SNR gates per output unit, Hyper-VIB eq. (12), Hyper-AJSCC eq. (11).

    ``conv_gate`` is checked and otherwise unused (an FC layer has one β gate per output unit
    in either mode); it is accepted so that one ``**gates`` dict configures every hyper layer.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        beta_gate: bool = True,
        snr_scale: bool = True,
        snr_norm: float = DEFAULT_SNR_NORM,
        conv_gate: str = "channel",
        beta_gate_scale: float = 1.0,
    ):
        super().__init__()
        check_conv_gate(conv_gate)
        self.linear = nn.Linear(in_features, out_features)
        self._init_gates(out_features, beta_gate, snr_scale, snr_norm, beta_gate_scale)

    def forward(self, x, beta=None, snr_db=None):
        return self._gate(self.linear(x), beta, snr_db)


class HyperConv2d(_Gated):
    """nn.Conv2d with β and SNR gates, Hyper-VIB eq. (14), Hyper-AJSCC eq. (11).

    ``conv_gate``:
    - "channel": one β gate per output channel, scaling that channel's output (bias included);
    - "kernel": Hyper-VIB eq. (14): one β gate per (filter o, input channel i) scaling the
      k×k kernel slice W[o, i], and one per bias b[o]. With per-example β every example has
      its own kernel, so the conv runs as a grouped conv with the batch folded into the
      groups (weights [N·out, in, k, k]). Cost on CPU, batch 128, 32->32 channels, 14×14,
      one thread: about 1.5× the forward and 1.6× the forward+backward time of "channel"
      mode (3.7 vs 2.5 ms, 10.7 vs 6.8 ms). An ONNX Conv needs a static group count, so
      under ``torch.export`` (the ONNX path, dynamic batch) the same product runs as
      unfold + batched matmul instead (about 7× slower than "channel", fine for the device).
      When every example of a batch has the same β (Hyper-VIB Alg. 1 samples one β^(t) per
      minibatch; an evaluation at one β) the kernel is the same for all of them and one plain
      conv with the gated kernel runs instead: the same numbers at the "channel" mode's cost.
    The SNR module scales output channels in both modes.
    """

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
        conv_gate: str = "channel",
        beta_gate_scale: float = 1.0,
    ):
        super().__init__()
        self.conv_gate = check_conv_gate(conv_gate)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding)
        kernel_mode = beta_gate and conv_gate == "kernel"
        self._init_gates(
            out_channels, beta_gate and not kernel_mode, snr_scale, snr_norm, beta_gate_scale
        )
        # eq. (14): one gate per kernel block W[o, i] (flattened o-major) and one per bias
        kernel = (
            BetaGate(out_channels * in_channels, scale=beta_gate_scale) if kernel_mode else None
        )
        self.beta_gate_kernel = kernel
        self.beta_gate_bias = BetaGate(out_channels, scale=beta_gate_scale) if kernel_mode else None

    def forward(self, x, beta=None, snr_db=None):
        if self.beta_gate_kernel is None:
            return self._gate(self.conv(x), beta, snr_db)
        if beta is None:
            raise ValueError("this layer has a β module: pass beta [N, 1]")
        return self._gate(self._kernel_gated_conv(x, beta), None, snr_db)

    def _kernel_gated_conv(self, x: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        """conv(x_n, W ⊙ G_n) + b ⊙ g_n per example n, G_n [out, in] broadcast over k×k."""
        n, in_ch, height, width = x.shape
        out_ch, _, kh, kw = self.conv.weight.shape
        stride, padding = self.conv.stride, self.conv.padding
        if not torch.compiler.is_exporting() and bool((beta == beta[:1]).all()):
            # one β for the whole batch: one kernel W ⊙ G, one plain conv
            gates = self.beta_gate_kernel(beta[:1]).view(out_ch, in_ch, 1, 1)
            bias = self.conv.bias * self.beta_gate_bias(beta[:1])[0]
            return F.conv2d(x, self.conv.weight * gates, bias, stride, padding)
        parts = None if torch.compiler.is_exporting() else equal_parts(beta)
        if parts is not None and 1 < parts < n:
            return self._parts_gated_conv(x, beta, parts)
        gates = self.beta_gate_kernel(beta).view(n, out_ch, in_ch, 1, 1)
        weight = self.conv.weight.unsqueeze(0) * gates  # [N, out, in, kh, kw]
        bias = self.conv.bias * self.beta_gate_bias(beta)  # [N, out]
        if torch.compiler.is_exporting():
            cols = F.unfold(x, (kh, kw), padding=padding, stride=stride)  # [N, in·kh·kw, L]
            out = torch.bmm(weight.flatten(2), cols) + bias.unsqueeze(2)
            out_h = (height + 2 * padding[0] - kh) // stride[0] + 1
            return out.view(n, out_ch, out_h, -1)
        out = F.conv2d(
            x.reshape(1, n * in_ch, height, width),
            weight.reshape(n * out_ch, in_ch, kh, kw),
            bias.reshape(-1),
            stride,
            padding,
            groups=n,
        )
        return out.view(n, out_ch, *out.shape[2:])

    def _parts_gated_conv(self, x: torch.Tensor, beta: torch.Tensor, parts: int) -> torch.Tensor:
        """The batch in ``parts`` interleaved parts, one β each (Hyper-VIB Alg. 1 with T draws
        per update; example i belongs to part i mod T): one kernel per part, a grouped conv
        with the parts as the groups (weights [T·out, in, k, k]), so the cost grows with T, not
        with the batch. Interleaving makes [N, in, H, W] → [N/T, T·in, H, W] a view of the
        same memory (no copy in or out), which is what keeps T = 8 near the one-β cost."""
        n, in_ch, height, width = x.shape
        out_ch, _, kh, kw = self.conv.weight.shape
        first = beta[:parts]  # [T, 1]: each part's β
        gates = self.beta_gate_kernel(first).view(parts, out_ch, in_ch, 1, 1)
        weight = (self.conv.weight.unsqueeze(0) * gates).reshape(parts * out_ch, in_ch, kh, kw)
        bias = (self.conv.bias * self.beta_gate_bias(first)).reshape(-1)  # [T·out]
        out = F.conv2d(
            x.reshape(n // parts, parts * in_ch, height, width),
            weight,
            bias,
            self.conv.stride,
            self.conv.padding,
            groups=parts,
        )
        return out.reshape(n, out_ch, *out.shape[2:])


def equal_parts(beta: torch.Tensor) -> int | None:
    """How many interleaved parts, each with one β, make up the batch (``beta`` [N, 1]): the
    smallest T dividing N with β_i = β_(i mod T) for every example i; 1 when the whole batch
    has one β, None when no T < N does it (then every example is on its own)."""
    values = beta.reshape(-1)
    n = len(values)
    # the period T repeats β_0 at T: only those places are candidates
    for parts in (torch.nonzero(values[1:] == values[0]).reshape(-1) + 1).tolist():
        if n % parts == 0 and bool((values.view(n // parts, parts) == values[:parts]).all()):
            return parts
    return None
