"""K devices, one edge: QML-IB's multi-device co-inference (eq. 3, 7, 15, 18; Algorithm 1).

Link k is a ``CoInferenceModel`` without a decoder: its own encoder, quantizer χ_k and AWGN
link at its own β_k and SNR_k, seeing view k of the image (shared/views.py). The edge's
``FusionDecoder`` ψ takes all K received features. The per-link rate terms come back as
``kl`` [N, K], so the loss is eq. (18): task loss on the fused output + Σ_k β_k·KL*_k
(shared.nn.losses.vib_loss). K = 1 runs the single-device model's own code: the link's
``transmit`` is ``CoInferenceModel.forward`` up to the decoder, and the fusion decoder with
one link is MlpDecoder (tests/shared/nn/test_multi_link.py pins both).

Link drop-out (training only): each link is dropped with probability ``link_dropout``, never
all of them; a dropped link's received features are zeros, as VL-VFE treats inactive
dimensions, and the edge decodes the same way when a device is late or silent.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from shared.nn.decoders import FusionDecoder
from shared.nn.model import CoInferenceModel, ModelConfig
from shared.views import make_views, view_input_shape


def link_config(config: ModelConfig) -> ModelConfig:
    """The config of one link: the view's input shape, one link."""
    shape = view_input_shape(config.input_shape, config.n_links, config.overlap)
    return replace(config, input_shape=shape, n_links=1, overlap=0, link_dropout=0.0)


class MultiLinkModel(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.arch != "mlp" or config.task != "classification":
            raise ValueError("the multi-link model is an MLP classifier (arch='mlp')")
        self.config = config
        _, height, width = config.input_shape
        self.views = make_views(height, width, config.n_links, config.overlap)
        per_link = link_config(config)
        self.links = nn.ModuleList(
            CoInferenceModel(per_link, with_decoder=False) for _ in range(config.n_links)
        )
        gates = {"beta_gate": config.beta_gate, "snr_scale": config.snr_scale,
                 "snr_norm": config.snr_norm}  # fmt: skip
        self.decoder = FusionDecoder(config.d, config.n_outputs, config.n_links, **gates)

    @property
    def n_links(self) -> int:
        return self.config.n_links

    @classmethod
    def from_single(cls, model: CoInferenceModel) -> MultiLinkModel:
        """The K = 1 model carrying a single-device model's weights (same computation)."""
        multi = cls(replace(model.config, n_links=1, overlap=0))
        state = {}
        for key, value in model.state_dict().items():
            if key.startswith("decoder.fc1."):
                key = "decoder.branches.0." + key[len("decoder.fc1.") :]
            elif not key.startswith("decoder."):
                key = "links.0." + key
            state[key] = value
        multi.load_state_dict(state)
        return multi.train(model.training)

    def drop_mask(self, n: int, generator=None) -> torch.Tensor:
        """[n, K] of 1.0 (kept) / 0.0 (dropped): each link dropped with p = link_dropout,
        and where that would drop every link, one link (uniform) is kept."""
        k, p = self.n_links, self.config.link_dropout
        if k == 1 or p == 0.0:
            return torch.ones(n, k)
        present = (torch.rand(n, k, generator=generator) >= p).float()
        rescue = torch.randint(0, k, (n,), generator=generator)
        none = present.sum(dim=1) == 0
        present[none, rescue[none]] = 1.0
        return present

    def forward(self, x, beta, snr_db, present=None, sample: bool | None = None) -> dict:
        """x [N, C, H, W] (the whole image; each link crops its view); beta, snr_db [N, K];
        ``present`` [N, K] (default: all, or link drop-out in training).

        Returns outputs [N, classes], kl [N, K] (each link's rate), symbols [N, K, d],
        n_active [N, K], present [N, K]."""
        if present is None:
            present = self.drop_mask(x.shape[0]) if self.training else torch.ones_like(beta)
        present = present.to(x.device, x.dtype)
        sent = [
            link.transmit(view.crop(x), beta[:, k : k + 1], snr_db[:, k : k + 1], sample)
            for k, (link, view) in enumerate(zip(self.links, self.views, strict=True))
        ]
        received = torch.stack([s["received"] for s in sent], dim=1) * present.unsqueeze(2)
        return {
            "outputs": self.decoder(received, beta, snr_db, present),
            "kl": torch.stack([s["kl"] for s in sent], dim=1),
            "symbols": torch.stack([s["symbols"] for s in sent], dim=1),
            "n_active": torch.stack([s["n_active"] for s in sent], dim=1),
            "present": present,
        }

    @torch.no_grad()
    def encode(self, x, beta, snr_db) -> list[dict]:
        """Each device's inference path: link k's ``encode`` on view k (full image x)."""
        return [
            link.encode(view.crop(x), beta[:, k : k + 1], snr_db[:, k : k + 1])
            for k, (link, view) in enumerate(zip(self.links, self.views, strict=True))
        ]

    def decode(self, received, beta, snr_db, present=None) -> torch.Tensor:
        """Edge path: received [N, K, d] (zeros for a missing link) -> logits [N, classes]."""
        if present is None:
            present = torch.ones_like(beta)
        return self.decoder(received * present.unsqueeze(2), beta, snr_db, present)
