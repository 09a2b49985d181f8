"""Small builders shared by the device tests (real objects, no mocks)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from shared.manifest import Manifest


def make_manifest(
    input_shape=(1, 28, 28),
    mean=(0.286,),
    std=(0.353,),
    variable_length: bool = False,
    beta_range=(1e-5, 1.0),
    snr_db_range=(0.0, 25.0),
) -> Manifest:
    """A manifest like the trainer writes, for tests that need no model files."""
    return Manifest(
        model_id="test-model",
        task="classification",
        dataset="fashion-mnist",
        input_shape=tuple(input_shape),
        input_mean=tuple(mean),
        input_std=tuple(std),
        class_names=tuple(f"class{i}" for i in range(10)),
        d=16,
        bits=None,
        levels=None,
        breakpoints=None,
        variable_length=variable_length,
        beta_range=tuple(beta_range),
        snr_db_range=tuple(snr_db_range),
    )


def encode(image: Image.Image, fmt: str = "PNG", **save_args) -> bytes:
    """An image's file bytes in ``fmt``."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save_args)
    return buffer.getvalue()


def grey_ramp(width: int, height: int) -> np.ndarray:
    """uint8 [height, width] with distinct values, for exact comparisons."""
    return (np.arange(width * height).reshape(height, width) * 7 % 256).astype(np.uint8)
