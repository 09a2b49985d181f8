"""The separation baseline: WebP bitstreams without their RIFF wrapper, the quality fit, and
real LDPC + QAM blocks (trainer/image_separation.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from shared.image_metrics import psnr_db
from shared.link.modes import MCS_TABLE
from trainer.image_separation import (
    QUALITIES,
    best_fit,
    bitstreams,
    decode_bitstream,
    send_images,
    webp_bitstream,
)


def _images(n=4, channels=1):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:28, 0:28] / 27.0
    base = np.stack([0.5 + 0.4 * np.sin(6 * xx + k) * yy for k in range(n)])
    noise = rng.normal(0, 0.02, (n, channels, 28, 28))
    return np.clip(base[:, None] + noise, 0, 1).astype(np.float32)


@pytest.mark.parametrize("channels", [1, 3])
def test_the_rebuilt_wrapper_decodes_as_pillows_own_file(channels):
    image = _images(1, channels)[0]
    stream = webp_bitstream(image, 50)
    buf = io.BytesIO()
    pixels = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
    pil = Image.fromarray(pixels[0] if channels == 1 else pixels.transpose(1, 2, 0))
    pil.save(buf, format="WEBP", quality=50, method=6)
    assert len(buf.getvalue()) - len(stream) in (20, 21)  # the wrapper (and a pad byte)
    reference = Image.open(buf).convert("L" if channels == 1 else "RGB")
    expected = np.asarray(reference, np.float32) / 255
    expected = expected[None] if channels == 1 else expected.transpose(2, 0, 1)
    assert np.array_equal(decode_bitstream(stream, channels), expected)


def test_best_fit_takes_the_highest_quality_that_fits():
    streams = bitstreams(_images(1))[0]
    sizes = {q: len(s) for q, s in streams.items()}
    budget = sizes[50]
    quality, stream = best_fit(streams, budget)
    assert len(stream) <= budget and quality >= 50
    assert all(sizes[q] > budget for q in QUALITIES if q > quality)
    assert best_fit(streams, min(sizes.values()) - 1) is None


def test_blocks_arrive_at_high_snr_and_are_lost_below_the_threshold():
    images = _images(6)
    mean = np.full((1, 28, 28), 0.5, np.float32)
    mcs = next(m for m in MCS_TABLE if m.name == "16-QAM 1/2")
    good = send_images(images, bitstreams(images), mean, 392, mcs, 20.0, seed=0)
    assert good["fit_fraction"] == 1.0 and good["bler"] == 0.0
    assert good["delivered_fraction"] == 1.0
    mean_psnr = float(np.mean(psnr_db(images, np.repeat(mean[None], 6, axis=0))))
    assert good["psnr_db"] > mean_psnr + 5
    bad = send_images(images, bitstreams(images), mean, 392, mcs, 2.0, seed=0)
    assert bad["bler"] == 1.0 and bad["delivered_fraction"] == 0.0
    assert bad["psnr_db"] == pytest.approx(mean_psnr)
    # 8 complex uses cannot carry a 28×28 WebP: nothing is sent, the mean image is shown
    none = send_images(images, bitstreams(images), mean, 8, mcs, 20.0, seed=0)
    assert none["fit_fraction"] == 0.0 and none["bler"] is None
