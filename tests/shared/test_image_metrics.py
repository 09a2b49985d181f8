"""PSNR of Hyper-AJSCC eq. (18) and scikit-image's SSIM, per image and batched."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from shared.image_metrics import PSNR_CAP_DB, psnr_db, ssim


def test_psnr_by_hand():
    x = np.zeros((1, 8, 8))
    assert psnr_db(x, x + 0.1) == pytest.approx(20.0)  # MSE 0.01 -> 10·log10(1/0.01)
    assert psnr_db(x, x + 0.01) == pytest.approx(40.0)
    assert psnr_db(x, x) == PSNR_CAP_DB
    batch = psnr_db(np.zeros((2, 1, 8, 8)), np.stack([x + 0.1, x + 0.01]))
    assert batch == pytest.approx([20.0, 40.0])


def test_batched_ssim_equals_scikit_image_per_image():
    rng = np.random.default_rng(0)
    ref = rng.random((6, 3, 28, 28))
    dec = np.clip(ref + rng.normal(0, 0.1, ref.shape), 0, 1)
    dec[0] = ref[0]
    expected = [structural_similarity(r, d, data_range=1.0, channel_axis=0)
                for r, d in zip(ref, dec, strict=True)]  # fmt: skip
    values = ssim(ref, dec)
    assert values == pytest.approx(expected, abs=1e-12)
    assert values[0] == pytest.approx(1.0)
    assert ssim(ref[1], dec[1]) == pytest.approx(expected[1], abs=1e-12)


@pytest.mark.parametrize(
    ("a", "b"), [((1, 8, 8), (1, 8, 9)), ((8, 8), (8, 8)), ((1, 5, 5), (1, 5, 5))]
)
def test_bad_shapes_are_refused(a, b):
    with pytest.raises(ValueError):
        ssim(np.zeros(a), np.zeros(b))
