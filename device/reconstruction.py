"""What the device makes of a reconstruction reply (task "reconstruction", the image model):
the decoded image beside the one it encoded, as PNGs, and the PSNR / SSIM between them.

The reply field ``reconstruction`` of ``POST /v1/infer`` is a JSON object:
``shape`` [C, H, W] (the size the model used: every input is converted to it),
``sent_png_base64`` and ``received_png_base64`` (8-bit PNGs, base64), ``psnr_db``
(Hyper-AJSCC eq. (18), MAX = 1, on the float images) and ``ssim`` (scikit-image).
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from shared.image_metrics import psnr_db, ssim
from shared.manifest import Manifest


class ReconstructionError(ValueError):
    """The edge's reconstruction does not fit the model (HTTP 502)."""


def png_base64(image: np.ndarray) -> str:
    """[C, H, W] float in [0, 1] -> base64 of an 8-bit grey or RGB PNG."""
    pixels = np.clip(np.rint(np.asarray(image) * 255.0), 0, 255).astype(np.uint8)
    pil = (
        Image.fromarray(pixels[0])
        if pixels.shape[0] == 1
        else Image.fromarray(pixels.transpose(1, 2, 0))
    )
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def sent_image(x: np.ndarray, manifest: Manifest) -> np.ndarray:
    """The encoder's input [C, H, W] back in [0, 1] (undoing the manifest's normalisation)."""
    mean = np.asarray(manifest.input_mean, np.float32).reshape(-1, 1, 1)
    std = np.asarray(manifest.input_std, np.float32).reshape(-1, 1, 1)
    return np.clip(np.asarray(x, np.float32) * std + mean, 0.0, 1.0)


def reconstruction_fields(values, shape, x: np.ndarray, manifest: Manifest) -> dict:
    """The ``reconstruction`` object of the reply from the edge's floats and shape."""
    expected = tuple(manifest.input_shape)
    if tuple(shape) != expected:
        raise ReconstructionError(
            f"the edge's reconstruction has shape {list(shape)}, the model's is {list(expected)}"
        )
    received = np.asarray(values, dtype=np.float32)
    if received.size != int(np.prod(expected)) or not np.all(np.isfinite(received)):
        raise ReconstructionError(
            f"the edge's reconstruction has {received.size} finite values, "
            f"expected {int(np.prod(expected))}"
        )
    received = np.clip(received.reshape(expected), 0.0, 1.0)
    sent = sent_image(x, manifest)
    return {
        "shape": list(expected),
        "psnr_db": float(psnr_db(sent, received)),
        "ssim": float(ssim(sent, received)),
        "sent_png_base64": png_base64(sent),
        "received_png_base64": png_base64(received),
        "format": "png",
    }
