"""The live path changes nothing: image by image, the stack's answers equal the offline path's.

The target "accuracy through the live path unchanged (within 0.5 points of offline on
1,000 images)" is checked here exactly rather than statistically. The channel runs with a
seed and the images go one at a time, so its noise generator draws, in order, one normal
per transmitted symbol of each request (``channel.service.ChannelService.corrupt``; no
pilots). The offline reference replays those draws in process: the device's ONNX encoder
and its transmitted prefix, ``shared.channel.awgn`` from a generator with the same seed,
zero-fill to d, and the edge's decoder runtime on the whole set in one batch. Any change the
serving path made (PNG round trip, preprocessing, quantizer, protobuf floats, coalescing,
batching, a different decoder input) would show up as different probabilities.

A stack of its own: the module-scoped stack of ``test_end_to_end`` has drawn noise for other
tests before any given test runs.
"""

from __future__ import annotations

import numpy as np
import pytest

from device.encoder import OnnxEncoder
from shared.channel import awgn
from shared.idx import load_test_set
from tests.live import LiveStackSpec, infer_each, model_input, needs_test_set

pytestmark = needs_test_set

PSNR_DB = 20.0
SEED = 7
N_IMAGES = 1000


def live_replies(model: str, model_dir, images: np.ndarray) -> list[dict]:
    """Each image through a fresh seeded stack, one request at a time (C=1, in order)."""
    spec = LiveStackSpec(model, PSNR_DB, seed=SEED)
    with spec.running(model_dir) as stack, spec.client(stack) as http:
        return infer_each(http, images)


def offline_probabilities(model_dir, images: np.ndarray, replies: list[dict]) -> np.ndarray:
    """The same requests in process, replaying the channel's noise draws in their order."""
    from edge_server.decoder import DecoderRuntime  # torch: test process only, never the device

    encoder = OnnxEncoder(model_dir)
    manifest = encoder.manifest
    beta = {r["beta"] for r in replies}
    snr_db = {r["snr_db"] for r in replies}
    variable_length = {r["variable_length"] for r in replies}
    assert len(beta) == len(snr_db) == len(variable_length) == 1, (beta, snr_db)
    beta, snr_db, variable_length = beta.pop(), snr_db.pop(), variable_length.pop()
    encoded = encoder.encode(model_input(manifest, images), beta, snr_db)
    rng = np.random.default_rng(SEED)
    received = np.zeros((len(images), manifest.d), np.float32)
    for i, reply in enumerate(replies):
        sent = encoder.transmit(encoded, i, variable_length)
        assert sent.n_symbols == reply["symbols_sent"], (i, sent.n_symbols, reply)
        received[i, : sent.n_symbols] = awgn(sent.symbols, PSNR_DB, rng)
    decoder = DecoderRuntime(model_dir, device="cpu")
    n = len(images)
    return np.asarray(
        decoder(received, np.full(n, beta, np.float32), np.full(n, snr_db, np.float32))
    )


@pytest.mark.parametrize("model", ["quick_model_dir", "quick_vl_model_dir"])
def test_live_answers_equal_the_offline_path_image_by_image(model, request):
    model_dir = request.getfixturevalue(model)
    images, labels = load_test_set(None, N_IMAGES)
    replies = live_replies(model, model_dir, images)
    live = np.asarray([r["probabilities"] for r in replies], np.float64)
    offline = offline_probabilities(model_dir, images, replies)
    live_labels = np.asarray([r["label"] for r in replies])
    offline_labels = np.argmax(offline, axis=1)
    live_accuracy = float(np.mean(live_labels == labels))
    offline_accuracy = float(np.mean(offline_labels == labels))
    gap = float(np.max(np.abs(live - offline)))
    disagree = int(np.sum(live_labels != offline_labels))
    print(f"{model}: accuracy live {live_accuracy:.4f}, offline {offline_accuracy:.4f} "
          f"(n={N_IMAGES}); labels differ on {disagree}; max |p_live - p_offline| "
          f"{gap:.2e}")  # fmt: skip
    assert abs(live_accuracy - offline_accuracy) <= 0.005  # within 0.5 points
    assert disagree <= 1  # a near-tie may flip with float order in a batch of 1 vs 1,000
    assert gap <= 1e-3
