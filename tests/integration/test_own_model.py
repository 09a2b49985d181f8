"""Bringing one's own model: a family registered here, outside the package, is trained,
exported and served by the live stack with no change to the trainer, the exporter, the
device, the channel or the edge (docs/OWN_MODEL.md walks through the same example).

The family is a linear encoder (tanh: peak amplitude 1, so the channel's PSNR convention of
VL-VFE holds) and a two-layer decoder, without β or SNR inputs. The test trains it for a few
steps on real Fashion-MNIST, exports it, starts the three services as real processes (the
edge imports this module with ``--model-module`` to learn the family), sends test images one
at a time through a seeded channel and compares every answer with the trained PyTorch
model's own on the same noise draws, replayed in process (as ``test_live_matches_offline``).
"""

from __future__ import annotations

import math

import httpx
import numpy as np
import pytest
import torch
from torch import nn

from client.http import png_bytes
from shared.channel import awgn
from shared.idx import load_test_set
from shared.manifest import load_manifest
from shared.nn.channel import awgn as awgn_torch
from shared.nn.model import ModelConfig
from shared.nn.zoo import register
from tests.live import needs_test_set
from tests.procs import running_stack

pytestmark = needs_test_set

FAMILY = "linear-two-layer"
MODULE = "tests.integration.test_own_model"  # what the edge imports (--model-module)
PSNR_DB = 20.0
SEED = 11
N_IMAGES = 200


@register(FAMILY)
class LinearTwoLayer(nn.Module):
    """x -> tanh(W x) (d real symbols, peak <= 1) -> AWGN -> Linear-ReLU-Linear -> logits."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.encoder = nn.Linear(math.prod(config.input_shape), config.d)
        self.decoder = nn.Sequential(
            nn.Linear(config.d, config.hidden),
            nn.ReLU(),
            nn.Linear(config.hidden, config.n_outputs),
        )

    def encode(self, x, beta, snr_db) -> dict:
        symbols = torch.tanh(self.encoder(x.flatten(1)))
        return {"symbols": symbols, "n_active": torch.ones_like(symbols).sum(1).to(torch.int64)}

    def decode(self, received, beta, snr_db) -> torch.Tensor:
        return self.decoder(received)

    def forward(self, x, beta, snr_db, **_) -> dict:
        symbols = torch.tanh(self.encoder(x.flatten(1)))
        return {
            "outputs": self.decode(awgn_torch(symbols, snr_db), beta, snr_db),
            "symbols": symbols,
            "n_active": torch.ones_like(symbols).sum(1),
            "kl": torch.zeros(len(x), device=x.device),  # no rate term: plain cross-entropy
        }


@pytest.fixture(scope="module")
def own_model(tmp_path_factory):
    """Train the family for a few steps with the project's trainer, export it."""
    from trainer.data import load_dataset
    from trainer.export import write_artifacts
    from trainer.train import TrainConfig, train

    torch.manual_seed(0)
    cfg = TrainConfig.from_options(
        family=FAMILY, arch="linear", d=16, hidden=64, epochs=1, train_subset=4096,
        batch_size=128, lr=3e-3, snr_range=(10.0, 25.0), device="cpu", progress=False,
    )  # fmt: skip
    data = load_dataset("fashion-mnist")
    out = tmp_path_factory.mktemp("own-model")
    model, log = train(cfg, data, out)
    assert type(model) is LinearTwoLayer and len(log["epochs"]) == 1  # 32 steps
    manifest = write_artifacts(model, data, cfg.trained_beta_range, cfg.trained_snr_range, out)
    assert manifest["family"] == FAMILY
    return model, out


def live_replies(model_dir, images) -> list[dict]:
    with running_stack(
        model_dir,
        PSNR_DB,
        edge_flags=["--device", "cpu", "--model-module", MODULE],
        channel_flags=["--seed", SEED],
        start_timeout_s={"edge": 90},
    ) as stack, httpx.Client(base_url=stack.url, timeout=10.0) as http:  # fmt: skip
        replies = []
        for image in images:
            files = {"file": ("image.png", png_bytes(image), "image/png")}
            response = http.post("/v1/infer", files=files)
            assert response.status_code == 200, response.text
            replies.append(response.json())
    return replies


def test_a_family_registered_outside_the_package_is_served_live(own_model):
    model, model_dir = own_model
    images, labels = load_test_set(None, N_IMAGES)
    replies = live_replies(model_dir, images)
    assert {r["symbols_sent"] for r in replies} == {16}
    # the trained PyTorch model on the channel's noise draws, replayed in order
    manifest = load_manifest(model_dir)
    mean, std = manifest.input_mean[0], manifest.input_std[0]
    x = torch.from_numpy(((images[:, None] / 255.0 - mean) / std).astype(np.float32))
    with torch.no_grad():
        symbols = model.encode(x, None, None)["symbols"].numpy()
    rng = np.random.default_rng(SEED)
    received = np.stack([awgn(s, PSNR_DB, rng) for s in symbols]).astype(np.float32)
    with torch.no_grad():
        offline = torch.softmax(model.decode(torch.from_numpy(received), None, None), 1).numpy()
    live = np.asarray([r["probabilities"] for r in replies])
    live_labels = np.asarray([r["label"] for r in replies])
    accuracy = float(np.mean(live_labels == labels))
    print(f"own family live: accuracy {accuracy:.3f} on {N_IMAGES} images, "
          f"max |p_live - p_offline| {np.max(np.abs(live - offline)):.1e}")  # fmt: skip
    assert np.max(np.abs(live - offline)) <= 1e-3
    assert accuracy >= 0.6  # it learned (chance is 0.1)
