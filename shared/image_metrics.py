"""Image reconstruction metrics (NumPy only, so the device can report them).

- PSNR, Hyper-AJSCC eq. (18): 10·log10(MAX² / MSE(x, x̂)) with MAX = 1 for images in [0, 1],
  per image; a perfect copy (MSE 0) is capped at ``PSNR_CAP_DB``.
- SSIM: scikit-image's ``structural_similarity`` (Wang et al. 2004, 7×7 uniform window,
  data_range 1) per image, over the channels for colour images.

Images are float arrays in [0, 1], [C, H, W] for one image or [N, C, H, W] for a batch.
"""

from __future__ import annotations

import numpy as np

PSNR_CAP_DB = 100.0
SSIM_WINDOW = 7  # scikit-image's default window (uniform, 7×7)


def psnr_db(reference: np.ndarray, decoded: np.ndarray) -> np.ndarray:
    """Per-image PSNR (dB) of eq. (18), MAX = 1: a scalar for [C, H, W], [N] for a batch."""
    reference, decoded = _check_pair(reference, decoded)
    mse = np.mean((reference - decoded) ** 2, axis=(-3, -2, -1))
    with np.errstate(divide="ignore"):
        value = 10.0 * np.log10(1.0 / mse)
    return np.minimum(value, PSNR_CAP_DB)


def ssim(reference: np.ndarray, decoded: np.ndarray) -> np.ndarray:
    """Per-image SSIM (scikit-image): a scalar for [C, H, W], [N] for a batch.

    One ``structural_similarity`` call over the whole batch (every image-channel plane as a
    channel, ``full=True``), then each image's mean of its planes' SSIM maps with the
    window's border cropped: the value scikit-image gives for that image alone.
    """
    from skimage.metrics import structural_similarity

    reference, decoded = _check_pair(reference, decoded)
    single = reference.ndim == 3
    if single:
        reference, decoded = reference[None], decoded[None]
    n, c, h, w = reference.shape
    _, ssim_map = structural_similarity(
        reference.reshape(n * c, h, w),
        decoded.reshape(n * c, h, w),
        data_range=1.0,
        channel_axis=0,
        win_size=SSIM_WINDOW,
        full=True,
    )
    pad = (SSIM_WINDOW - 1) // 2
    values = ssim_map.reshape(n, c, h, w)[:, :, pad : h - pad, pad : w - pad].mean(axis=(1, 2, 3))
    return values[0] if single else values


def _check_pair(reference, decoded) -> tuple[np.ndarray, np.ndarray]:
    reference = np.asarray(reference, dtype=np.float64)
    decoded = np.asarray(decoded, dtype=np.float64)
    if reference.shape != decoded.shape or reference.ndim not in (3, 4):
        raise ValueError(
            f"images must share a shape [C, H, W] or [N, C, H, W]: {reference.shape} vs "
            f"{decoded.shape}"
        )
    if min(reference.shape[-2:]) < 7:
        raise ValueError(f"images must be at least 7×7 for SSIM, got {reference.shape[-2:]}")
    return reference, decoded
