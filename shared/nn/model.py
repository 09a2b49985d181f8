"""The jointly trained pair: encoder -> (quantizer) -> (variable length) -> AWGN -> decoder.

``CoInferenceModel.forward`` is the training path (returns a dict, CompressAI-style);
``encode`` is the device's inference path exported to ONNX; ``decode`` is the edge's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import torch
from torch import nn

from shared.nn.channel import awgn, noise_var_from_snr
from shared.nn.decoders import CnnDecoder, MlpDecoder
from shared.nn.encoders import Encoder
from shared.nn.hyper import CONV_GATES
from shared.nn.losses import (
    KL_BOUNDS,
    PRIORS,
    gaussian_kl,
    learned_gaussian_kl,
    log_uniform_kl,
    quantized_kl_bound,
)
from shared.nn.quantizer import LearnedQuantizer
from shared.nn.variable_length import active_mask, apply_mask


@dataclass
class ModelConfig:
    task: str = "classification"  # "classification" | "regression"
    input_shape: tuple[int, ...] = (1, 28, 28)
    n_outputs: int = 10
    arch: str = "mlp"  # "mlp" | "cnn" | "fc" (VL-VFE Table I: one FC + tanh on the device)
    d: int = 64
    hidden: int = 512
    head: str = "gaussian"  # "gaussian" | "deterministic"
    prior: str = "gaussian"  # "gaussian" | "log-uniform" | "gaussian-learned" | "none"
    bits: int | None = None  # None = no quantizer; else 1, 2, 4, 8
    quantizer_train: str = "soft"  # "soft" (QML-IB eq. 12) | "ste"
    variable_length: bool = False
    gamma0: float = 0.02  # VL-VFE pruning threshold on γ_i
    # fixed length: prune the dimensions with γ_i ≤ γ0 (VL-VFE Alg. 1, static VFE); the pruned
    # set is the same for every input, so both ends know it without sending indices
    prune: bool = False
    beta_gate: bool = True  # Hyper-VIB β module on every hyper layer
    snr_scale: bool = True  # Hyper-AJSCC SNR module on every hyper layer
    snr_norm: float = 25.0
    conv_gate: str = "channel"  # "channel" | "kernel" (Hyper-VIB eq. 14 kernel-block gates)
    # the β modules' parameters stored as s·(u', v') (shared.nn.hyper.BetaGate): with Adam a
    # learning rate s times the model's for the hypernetwork alone; 1 = eq. (13) as written
    beta_gate_scale: float = 1.0
    kl_bound: str = "eq14"  # "eq14" (QML-IB D*_KL) | "mixture" (its tighter first term)
    target_mean: float = 0.0  # regression target normalisation
    target_std: float = 1.0
    # QML-IB multi-device (shared/nn/multi_link.py): K links, each seeing one view
    n_links: int = 1
    overlap: int = 0  # pixels each view extends past its equal share (shared/views.py)
    link_dropout: float = 0.0  # training: probability a link is dropped (never all of them)
    # the model family of shared/nn/zoo.py; None: "hyper-vib", or "multi-link" when n_links > 1
    family: str | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.input_shape = tuple(self.input_shape)
        if self.prior not in PRIORS:
            raise ValueError(f"prior must be one of {PRIORS}, got {self.prior!r}")
        if self.prior in ("log-uniform", "gaussian-learned") and self.head != "deterministic":
            raise ValueError(f"prior={self.prior!r} needs head='deterministic' (VL-VFE eq. 6, 8)")
        if self.prune and (self.head != "deterministic" or self.variable_length):
            raise ValueError("prune is VL-VFE Alg. 1: a fixed-length deterministic head")
        if self.task not in ("classification", "regression"):
            raise ValueError(f"task must be classification or regression, got {self.task!r}")
        if self.conv_gate not in CONV_GATES:
            raise ValueError(f"conv_gate must be one of {CONV_GATES}, got {self.conv_gate!r}")
        if not self.beta_gate_scale > 0:
            raise ValueError(f"beta_gate_scale must be > 0, got {self.beta_gate_scale!r}")
        if self.kl_bound not in KL_BOUNDS:
            raise ValueError(f"kl_bound must be one of {KL_BOUNDS}, got {self.kl_bound!r}")
        if not 0.0 <= self.link_dropout < 1.0:
            raise ValueError(f"link_dropout must be in [0, 1), got {self.link_dropout}")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["input_shape"] = list(self.input_shape)
        return out

    @classmethod
    def from_dict(cls, raw: dict) -> ModelConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})


class CoInferenceModel(nn.Module):
    """One device and its decoder; with ``with_decoder=False``, one link of a multi-device
    model (shared/nn/multi_link.py), whose fusion decoder sits at the edge."""

    def __init__(self, config: ModelConfig, with_decoder: bool = True):
        super().__init__()
        self.config = config
        gates = {
            "beta_gate": config.beta_gate,
            "snr_scale": config.snr_scale,
            "snr_norm": config.snr_norm,
            "conv_gate": config.conv_gate,
            "beta_gate_scale": config.beta_gate_scale,
        }
        self.encoder = Encoder(
            config.input_shape,
            config.d,
            arch=config.arch,
            head=config.head,
            hidden=config.hidden,
            variable_length=config.variable_length,
            prune=config.prune,
            **gates,
        )
        self.quantizer = (
            LearnedQuantizer(config.bits, train_mode=config.quantizer_train)
            if config.bits
            else None
        )
        if not with_decoder:
            self.decoder = None
        elif config.arch in ("mlp", "fc"):
            self.decoder = MlpDecoder(config.d, config.n_outputs, **gates)
        else:
            side = (((config.input_shape[1] + 1) // 2) + 1) // 2
            self.decoder = CnnDecoder(config.d, config.n_outputs, side=side, **gates)
        if config.prior == "gaussian-learned":  # q(z) = N(m, diag(s²)), VL-VFE §V-D
            self.prior_mean = nn.Parameter(torch.zeros(config.d))
            self.prior_log_var = nn.Parameter(torch.zeros(config.d))

    def _mask(self, gamma, like, training: bool = False):
        if self.config.prune and training:
            # VL-VFE Alg. 1 as its code runs it: every dimension is sent while training (the
            # rate term keeps pushing a small γ_i down) and those with γ_i ≤ γ0 are pruned
            return torch.ones_like(like)
        if self.config.variable_length or self.config.prune:
            return active_mask(gamma, self.config.gamma0)
        return torch.ones_like(like)

    def forward(
        self, x, beta, snr_db, sample: bool | None = None, channel=None, decoder_snr_db=None
    ) -> dict:
        """Training path. x [N, ...], beta and snr_db [N, 1]. Returns a dict of tensors.

        ``sample`` draws z = μ + θ·ε (default: in training only); in eval mode with
        sample=True it gives the rate and the accuracy of the stochastic encoder.
        ``channel`` (symbols -> received) replaces the AWGN layer, e.g. the block-fading
        channel of ``shared/nn/fading.py``; the decoder's SNR gates then take
        ``decoder_snr_db`` [N, 1] (the receiver's instantaneous SNR), the encoder's ``snr_db``
        (the SNR the device was told)."""
        out = self.transmit(x, beta, snr_db, sample, channel)
        decoder_snr = snr_db if decoder_snr_db is None else decoder_snr_db
        out["outputs"] = self.decoder(out.pop("received"), beta, decoder_snr)
        return out

    def transmit(self, x, beta, snr_db, sample: bool | None = None, channel=None) -> dict:
        """Encoder, quantizer, mask and the channel (AWGN at ``snr_db`` unless ``channel``):
        the dict of ``forward`` with the ``received`` symbols in place of the decoder's
        ``outputs`` (one link of a multi-device model)."""
        noise_var = noise_var_from_snr(snr_db)
        enc = self.encoder(x, beta, snr_db, noise_var)
        mu, theta, gamma = enc["mu"], enc["theta"], enc["gamma"]
        sample = self.training if sample is None else sample
        z = mu + theta * torch.randn_like(mu) if sample else mu
        encoded = self.quantizer(z) if self.quantizer is not None else z
        mask = self._mask(gamma, mu, self.training)
        symbols = apply_mask(encoded, mask)  # straight-through: pruned dims still get gradient
        received = awgn(symbols, snr_db) if channel is None else channel(symbols)
        if self.config.variable_length or self.config.prune:
            # only the active prefix crosses the channel: the decoder gets zeros past it, as
            # the edge zero-fills what was not sent (VL-VFE's code masks the training noise);
            # the gradient still reaches a pruned dimension's symbol (straight-through)
            received = torch.where(mask > 0, received, symbols)
        return {
            "received": received,
            "symbols": symbols,
            "n_active": mask.sum(dim=1),
            "kl": self._rate(mu, theta, gamma, encoded, symbols, mask, noise_var),
            "gamma": gamma,
        }

    def _rate(self, mu, theta, gamma, encoded, symbols, mask, noise_var) -> torch.Tensor:
        """The rate term of ``transmit``. A variable-length model in training pays for every
        encoded dimension, pruned ones included, as VL-VFE's authors' code takes eq. (6) on
        the encoder's output before the prune mask (Alg. 2 step 13 does not say which): a
        pruned dimension that cost nothing would come back for free through the
        straight-through gradient. Otherwise (evaluation; every other model) the rate is that
        of the symbols sent."""
        if self.training and self.config.variable_length:
            return self.kl(mu, theta, gamma, encoded, noise_var)
        return self.kl(mu * mask, theta * mask, gamma, symbols, noise_var)

    def kl(self, mu, theta, gamma, symbols, noise_var) -> torch.Tensor:
        """Rate term per example: eq. (9) of Hyper-VIB, eq. (6) of VL-VFE or D*_KL of QML-IB;
        with prior "none" (cross-entropy only: VL-VFE's DeepJSCC) a zero with no gradient."""
        if self.config.prior == "none":
            return torch.zeros(symbols.shape[0], device=symbols.device)
        if self.config.prior == "log-uniform":
            return log_uniform_kl(symbols, noise_var)
        if self.config.prior == "gaussian-learned":
            return learned_gaussian_kl(symbols, noise_var, self.prior_mean, self.prior_log_var)
        if self.quantizer is None or self.config.head == "deterministic":
            # deterministic head: the "mixture" D*_KL of a one-point level distribution =
            # eq. (9), theta 0 ("eq14" would add the constant d·log K, no gradient)
            source = symbols if self.quantizer is not None else mu
            return gaussian_kl(source, theta, noise_var)
        probs = self.quantizer.level_probabilities(mu, theta.clamp_min(1e-4))
        return quantized_kl_bound(
            probs, self.quantizer.levels(), noise_var, kl_bound=self.config.kl_bound
        )

    @torch.no_grad()
    def encode(self, x, beta, snr_db) -> dict:
        """Device inference path (exported to ONNX): symbols [N, d] (zero past the prefix),
        n_active [N] int64 and, when quantized, level indices [N, d] int64."""
        noise_var = noise_var_from_snr(snr_db)
        enc = self.encoder(x, beta, snr_db, noise_var)
        mu = enc["mu"]
        mask = self._mask(enc["gamma"], mu)
        out = {}
        if self.quantizer is not None:
            levels = self.quantizer.indices(mu)
            symbols = self.quantizer.levels()[levels]
            out["levels"] = levels
        else:
            symbols = mu
        out["symbols"] = symbols * mask
        out["n_active"] = mask.sum(dim=1).to(torch.int64)
        return out

    def decode(self, received, beta, snr_db) -> torch.Tensor:
        """Edge path: logits [N, classes] or normalised regression value [N, 1]."""
        return self.decoder(received, beta, snr_db)
