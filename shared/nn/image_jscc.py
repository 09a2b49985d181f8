"""Deep JSCC for images: Hyper-AJSCC's BDJSCC (Table I) with three kinds of SNR adaptation.

Architecture (Hyper-AJSCC Table I, the DeepJSCC network of its reference [6]):

- encoder: Conv×4 (5×5, PReLU; the first two stride 2) to ``filters``×8×8, then a Conv to
  ``channels``×8×8 and average power normalisation to d real symbols;
- decoder: Deconv×4 (5×5, PReLU; the last stride 2) to ``filters``×16×16, then a Deconv
  stride 2 and a sigmoid to the image in [0, 1] (Table I's tanh maps to [-1, 1]; the
  images here live in [0, 1], so the sigmoid is the same layer for that range).

The paper's width is 256 filters; a smaller ``filters`` keeps a full run on 2 cores (the
experiment says what it used). Images smaller than 32×32 (Fashion-MNIST's 28×28) are
zero-padded to 32×32 so the feature map is 8×8 as in Table I, and the decoder's 32×32
output is cropped back; the loss and every metric use the unpadded pixels only.

Adaptation (``adaptation``):

- ``"none"``: BDJSCC, trained at one SNR (the fixed-SNR baselines of Fig. 4);
- ``"hyper"``: Hyper-AJSCC eq. (15)-(16): every conv and deconv output channel scaled by
  (ω·ν + c) before its activation, ω = SNR/``snr_norm`` (``shared.nn.hyper.SnrScale``);
  2 parameters per output channel of all ten layers (Table III: 4,118 at 256 filters, c = 8);
- ``"attention"``: ADJSCC (Xu et al. 2021, Hyper-AJSCC ref. [13]): an attention feature (AF)
  module after each of the first four conv layers of the encoder and the first four deconv
  layers of the decoder: channel mean pool ⊕ SNR → FC (C+1 → C/16) → ReLU → FC (→ C) →
  sigmoid → channel-wise scale (Table III: 67,840 at 256 filters).

Channel convention (the manifest's ``power: "average"``): the d real symbols of one image
have mean power 1 (‖z‖² = d), consecutive pairs are the I/Q parts of d/2 complex channel
uses, and the SNR is 10·log10(1/σ²) with σ² the noise variance per real dimension, so the
channel adds N(0, 10^(-SNR/10)) to every real symbol. The bandwidth ratio R = (d/2)/n counts
complex channel uses per source value n = C·H·W of the unpadded image (DeepJSCC's k/n).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from shared.nn.hyper import SnrScale

ADAPTATIONS = ("none", "hyper", "attention")
POWER_CONVENTION = "average"  # mean power 1 per real symbol (the classification models: "peak")
FEATURE_SIZE = 8  # Table I: the encoder's feature map is 8×8
KERNEL = 5
DEFAULT_SNR_NORM = 20.0  # the paper trains over SNR ~ U[0, 20] dB: ω = SNR/20 in [0, 1]


def channels_for_ratio(ratio: float, image_shape: tuple[int, int, int]) -> int:
    """Symbol channels c at 8×8 closest to bandwidth ratio R = (c·64/2) / (C·H·W) (>= 1)."""
    if ratio <= 0:
        raise ValueError(f"bandwidth ratio must be > 0, got {ratio}")
    n = math.prod(image_shape)
    return max(1, round(ratio * n * 2 / FEATURE_SIZE**2))


def bandwidth_ratio(channels: int, image_shape: tuple[int, int, int]) -> float:
    """R = complex channel uses per source value for ``channels`` symbol channels at 8×8."""
    return channels * FEATURE_SIZE**2 / 2 / math.prod(image_shape)


def normalise_average_power(z: torch.Tensor) -> torch.Tensor:
    """[N, d] -> [N, d] with ‖z_n‖² = d for every row (mean power 1 per real symbol)."""
    return z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True).clamp_min(1e-12))


def average_power_awgn(
    symbols: torch.Tensor, snr_db: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """y = z + n, n ~ N(0, σ²) per real symbol, σ² = 10^(-SNR/10); snr_db [N, 1] in dB."""
    sigma = torch.pow(10.0, -snr_db / 20.0)
    noise = torch.randn(symbols.shape, generator=generator, dtype=symbols.dtype)
    return symbols + sigma * noise.to(symbols.device)


class AttentionFeature(nn.Module):
    """ADJSCC's AF module: (mean-pooled channels ⊕ SNR dB) -> FC -> ReLU -> FC -> sigmoid,
    multiplied into the feature map per channel."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(channels + 1, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, f: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        context = torch.cat([f.mean(dim=(2, 3)), snr_db], dim=1)
        scale = torch.sigmoid(self.fc2(F.relu(self.fc1(context))))
        return f * scale[:, :, None, None]


class AdaptiveLayer(nn.Module):
    """One conv/deconv of Table I with its activation and its SNR adaptation, if any."""

    def __init__(
        self,
        conv: nn.Module,
        adaptation: str,
        activation: nn.Module | None,
        attention: bool,
        snr_norm: float,
    ):
        super().__init__()
        out = conv.out_channels
        self.conv = conv
        self.snr_scale = SnrScale(out, snr_norm) if adaptation == "hyper" else None
        self.activation = activation
        use_af = adaptation == "attention" and attention
        self.af = AttentionFeature(out, max(1, out // 16)) if use_af else None

    def forward(self, f: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        f = self.conv(f)
        if self.snr_scale is not None:  # eq. (15)-(16): (ω·ν + c) ⊙ (C0 * f + b0)
            f = f * self.snr_scale(snr_db)[:, :, None, None]
        if self.activation is not None:
            f = self.activation(f)
        if self.af is not None:
            f = self.af(f, snr_db)
        return f


def _conv(cin: int, cout: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, KERNEL, stride, KERNEL // 2)


def _deconv(cin: int, cout: int, stride: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, KERNEL, stride, KERNEL // 2, output_padding=stride - 1)


class ImageEncoder(nn.Module):
    """image [N, C, H, W] in [0, 1], snr_db [N, 1] -> d real symbols [N, channels·64]."""

    def __init__(self, in_channels, image_size, filters, channels, adaptation, snr_norm):
        super().__init__()
        self.pad = (4 * FEATURE_SIZE - image_size) // 2
        strides = (2, 2, 1, 1)
        widths = (in_channels, *([filters] * 4))
        layers = [
            AdaptiveLayer(_conv(widths[i], widths[i + 1], s), adaptation, nn.PReLU(), True,
                          snr_norm)
            for i, s in enumerate(strides)
        ]  # fmt: skip
        layers.append(AdaptiveLayer(_conv(filters, channels, 1), adaptation, None, False, snr_norm))
        self.layers = nn.ModuleList(layers)

    def forward(self, image: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        f = F.pad(image, (self.pad,) * 4) if self.pad else image
        for layer in self.layers:
            f = layer(f, snr_db)
        return normalise_average_power(f.flatten(1))


class ImageDecoder(nn.Module):
    """received symbols [N, channels·64], snr_db [N, 1] -> image [N, C, H, W] in [0, 1]."""

    def __init__(self, in_channels, image_size, filters, channels, adaptation, snr_norm):
        super().__init__()
        self.channels = channels
        self.crop = (4 * FEATURE_SIZE - image_size) // 2
        self.image_size = image_size
        strides = (1, 1, 1, 2)
        widths = (channels, *([filters] * 4))
        layers = [
            AdaptiveLayer(_deconv(widths[i], widths[i + 1], s), adaptation, nn.PReLU(), True,
                          snr_norm)
            for i, s in enumerate(strides)
        ]  # fmt: skip
        layers.append(
            AdaptiveLayer(_deconv(filters, in_channels, 2), adaptation, nn.Sigmoid(), False,
                          snr_norm)
        )  # fmt: skip
        self.layers = nn.ModuleList(layers)

    def forward(self, received: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        f = received.view(received.shape[0], self.channels, FEATURE_SIZE, FEATURE_SIZE)
        for layer in self.layers:
            f = layer(f, snr_db)
        if self.crop:
            c, s = self.crop, self.image_size
            f = f[:, :, c : c + s, c : c + s]
        return f


class ImageJSCC(nn.Module):
    """Encoder, average-power AWGN channel, decoder; ``forward`` returns a dict
    (``x_hat`` [N, C, H, W], ``symbols`` and ``received`` [N, d])."""

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        filters: int = 32,
        channels: int = 2,
        adaptation: str = "hyper",
        snr_norm: float = DEFAULT_SNR_NORM,
    ):
        super().__init__()
        if adaptation not in ADAPTATIONS:
            raise ValueError(f"adaptation must be one of {ADAPTATIONS}, got {adaptation!r}")
        if not 1 <= image_size <= 4 * FEATURE_SIZE or image_size % 2:
            raise ValueError(f"image_size must be even and <= 32 (padded to 32), got {image_size}")
        self.config = {
            "in_channels": in_channels,
            "image_size": image_size,
            "filters": filters,
            "channels": channels,
            "adaptation": adaptation,
            "snr_norm": snr_norm,
        }
        args = (in_channels, image_size, filters, channels, adaptation, snr_norm)
        self.encoder = ImageEncoder(*args)
        self.decoder = ImageDecoder(*args)

    @property
    def symbols(self) -> int:
        """d: real channel symbols per image (d/2 complex channel uses)."""
        return self.config["channels"] * FEATURE_SIZE**2

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c = self.config
        return (c["in_channels"], c["image_size"], c["image_size"])

    @property
    def ratio(self) -> float:
        return bandwidth_ratio(self.config["channels"], self.image_shape)

    def decode(self, received, beta, snr_db) -> torch.Tensor:
        """Edge path: received [N, d] (real, average power 1 per symbol at the sender), snr_db
        [N, 1] -> reconstruction [N, C, H, W] in [0, 1]; ``beta`` is not used (no β gates)."""
        return self.decoder(received, snr_db)

    def forward(self, image, snr_db, generator=None, channel=None, decoder_snr_db=None) -> dict:
        """``channel`` (symbols -> received, e.g. ``shared/nn/fading.py``) replaces the AWGN
        at ``snr_db``; the decoder's SNR layers then take ``decoder_snr_db`` [N, 1]."""
        symbols = self.encoder(image, snr_db)
        if channel is None:
            received = average_power_awgn(symbols, snr_db, generator)
        else:
            received = channel(symbols)
        decoder_snr = snr_db if decoder_snr_db is None else decoder_snr_db
        return {
            "x_hat": self.decoder(received, decoder_snr),
            "symbols": symbols,
            "received": received,
        }


def adaptation_parameters(model: ImageJSCC) -> int:
    """Parameters the SNR adaptation adds to the BDJSCC backbone (Hyper-AJSCC Table III)."""
    return sum(
        p.numel() for name, p in model.named_parameters() if ".snr_scale." in name or ".af." in name
    )


CHECKPOINT_KIND = "image_jscc"


def save_image_decoder(model: ImageJSCC, path) -> None:
    """decoder.pt: the model's config and the decoder's weights only (what the edge needs)."""
    state = {k: v for k, v in model.state_dict().items() if k.startswith("decoder.")}
    torch.save({"kind": CHECKPOINT_KIND, "config": model.config, "state_dict": state}, path)
