"""Turn an uploaded image (or a JSON pixel array) into the encoder input ``x``.

The contract (docs/ARCHITECTURE.md): ``x`` is float32 ``[C, H, W]`` (batched by the
caller), ``(pixel / 255 - mean) / std`` per channel, with ``mean``/``std`` from the manifest.

Images (PNG, JPEG, or anything else Pillow decodes), of any size and colour mode:
1. EXIF orientation is applied; palette images are expanded;
2. transparency is composited over a black background;
3. the image is converted to the model's channels: ``L`` (ITU-R 601-2 luma) for 1 channel,
   ``RGB`` for 3; 16-bit greyscale is scaled down to 8 bit;
4. it is resized to the model's H×W with Pillow's **bilinear** filter (antialiased when
   shrinking). The aspect ratio is **not** kept and nothing is cropped;
5. pixels are scaled to [0, 1] and normalised with the manifest mean/std.

JSON pixel arrays: ``{"pixels": [...], "pixel_range": "0-255" | "0-1"}``, shaped like the
model input ``[C, H, W]`` (``[H, W]`` is accepted for 1-channel models). The default range
is ``"0-255"`` (raw 8-bit intensities, like an image file); values must lie in the declared
range. With the default range, an array whose values all lie in [0, 1] and that has
fractional values is rejected as ambiguous (it looks like a 0..1 image): say
``"pixel_range": "0-1"``. Arrays are not resized.
"""

from __future__ import annotations

import io
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from shared.manifest import Manifest

PIXEL_RANGES = ("0-255", "0-1")
MAX_IMAGE_PIXELS = 40_000_000  # decoded size cap (width × height), against decompression bombs
_SIXTEEN_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")


class PreprocessError(ValueError):
    """The payload cannot become a model input. ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


def image_shape(manifest: Manifest) -> tuple[int, int, int]:
    """(C, H, W) of an image model; PreprocessError for models whose input is not an image."""
    shape = tuple(manifest.input_shape)
    if len(shape) != 3 or shape[0] not in (1, 3):
        raise PreprocessError(
            f"model {manifest.model_id} takes input of shape {list(shape)}, not a 1- or "
            "3-channel image; send a JSON array shaped like the input"
        )
    return shape  # type: ignore[return-value]


def normalise(pixels01: np.ndarray, manifest: Manifest) -> np.ndarray:
    """(x - mean) / std per channel; ``pixels01`` is float [C, ...] in [0, 1]. Returns float32."""
    mean, std = _mean_std(manifest.input_mean, manifest.input_std, pixels01.shape[0])
    extra = (1,) * (pixels01.ndim - 1)
    out = (pixels01.astype(np.float32) - mean.reshape(-1, *extra)) / std.reshape(-1, *extra)
    return out.astype(np.float32)


@lru_cache(maxsize=64)
def _mean_std(
    input_mean: tuple[float, ...], input_std: tuple[float, ...], channels: int
) -> tuple[np.ndarray, np.ndarray]:
    """A manifest's mean/std as float32 [channels] arrays (one entry broadcasts)."""
    mean = np.asarray(input_mean, dtype=np.float32)
    std = np.asarray(input_std, dtype=np.float32)
    if mean.size == 1:
        mean, std = np.repeat(mean, channels), np.repeat(std, channels)
    if mean.size != channels or std.size != channels:
        raise PreprocessError(
            f"manifest mean/std have {mean.size} entries for {channels} channels", status=500
        )
    mean.flags.writeable = std.flags.writeable = False  # shared between calls
    return mean, std


def _to_model_mode(image: Image.Image, channels: int) -> Image.Image:
    """Convert any Pillow mode to 'L' (1 channel) or 'RGB' (3 channels)."""
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image, dtype=np.float64)
        scale = 257.0 if values.max(initial=0) > 255 or image.mode != "I" else 1.0
        image = Image.fromarray(np.clip(values / scale, 0, 255).astype(np.uint8), mode="L")
    elif image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), mode="L")
    return image.convert("L" if channels == 1 else "RGB")


@contextmanager
def _image_errors():
    """Pillow's exceptions on a client's file as PreprocessError (400, or 413 when too big)."""
    try:
        yield
    except PreprocessError:
        raise
    except Image.DecompressionBombError as exc:  # declared size far over the cap
        raise PreprocessError(
            f"image too large to decode ({exc}); at most {MAX_IMAGE_PIXELS} pixels are "
            "decoded: send a smaller image",
            status=413,
        ) from exc
    except UnidentifiedImageError as exc:
        raise PreprocessError(
            "not a decodable image: send a PNG, JPEG or other image file Pillow can read",
            status=400,
        ) from exc
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt files
        raise PreprocessError(f"corrupt or truncated image: {exc}", status=400) from exc
    except Exception as exc:  # noqa: BLE001 - Pillow's format plugins raise TypeError,
        # IndexError, struct.error, ... on malformed headers; the bytes are the client's fault
        raise PreprocessError(f"corrupt image ({type(exc).__name__}: {exc})", status=400) from exc


def open_image(data: bytes) -> Image.Image:
    """The image in ``data`` with only its header read (cheap); its size is checked against
    MAX_IMAGE_PIXELS. Pass it to :func:`image_to_input`, which does the decoding."""
    if not data:
        raise PreprocessError("empty body: send an image file (PNG/JPEG) or JSON pixels", 400)
    with _image_errors():
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_IMAGE_PIXELS:
            image.close()
            raise PreprocessError(
                f"image is {image.width}x{image.height} pixels; at most "
                f"{MAX_IMAGE_PIXELS} pixels are decoded",
                status=413,
            )
        return image


def image_to_input(image: Image.Image, manifest: Manifest) -> np.ndarray:
    """An opened image (see :func:`open_image`) to the normalised float32 input [C, H, W]."""
    channels, height, width = image_shape(manifest)
    with _image_errors(), image:
        image.load()
        if _has_orientation(image):
            image = ImageOps.exif_transpose(image) or image
        if image.mode != ("L" if channels == 1 else "RGB"):
            image = _to_model_mode(image, channels)
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        pixels = np.asarray(image, dtype=np.float32)
    pixels = pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)
    return normalise(pixels / 255.0, manifest)


# where Pillow's getexif() finds an orientation in a PNG: an eXIf chunk, a text chunk of
# raw EXIF, or XMP (tiff:Orientation)
_PNG_ORIENTATION_KEYS = ("exif", "Raw profile type exif", "XML:com.adobe.xmp", "xmp")


def _has_orientation(image: Image.Image) -> bool:
    """Whether the image may carry an orientation (the common PNG without EXIF or XMP skips
    :func:`ImageOps.exif_transpose`, which parses EXIF for every image)."""
    return image.format != "PNG" or any(key in image.info for key in _PNG_ORIENTATION_KEYS)


def decode_image(data: bytes, manifest: Manifest) -> np.ndarray:
    """Image file bytes to the normalised float32 input [C, H, W] (see module docstring)."""
    return image_to_input(open_image(data), manifest)


def pixels_to_input(payload: dict[str, Any], manifest: Manifest) -> np.ndarray:
    """``{"pixels": [...], "pixel_range": "0-255"|"0-1"}`` to the normalised input [C, H, W]."""
    if not isinstance(payload, dict) or "pixels" not in payload:
        raise PreprocessError('JSON body must be an object with a "pixels" array')
    unknown = set(payload) - {"pixels", "pixel_range"}
    if unknown:
        raise PreprocessError(
            f"unknown JSON fields {sorted(unknown)}; allowed: pixels, pixel_range"
        )
    pixel_range = payload.get("pixel_range", "0-255")
    if pixel_range not in PIXEL_RANGES:
        raise PreprocessError(f"pixel_range must be one of {PIXEL_RANGES}, got {pixel_range!r}")
    try:
        values = np.asarray(payload["pixels"], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PreprocessError(f'"pixels" must be a rectangular array of numbers ({exc})') from exc
    shape = tuple(manifest.input_shape)
    if values.shape != shape:
        if len(shape) == 3 and shape[0] == 1 and values.shape == shape[1:]:
            values = values[None]
        else:
            accepted = [list(shape)] + ([list(shape[1:])] if shape[0] == 1 else [])
            raise PreprocessError(
                f'"pixels" has shape {list(values.shape)}; this model takes '
                f"{' or '.join(map(str, accepted))} (no resizing for arrays)"
            )
    if not np.all(np.isfinite(values)):
        raise PreprocessError('"pixels" contains NaN or infinity')
    high = 255.0 if pixel_range == "0-255" else 1.0
    if values.min() < 0 or values.max() > high:
        raise PreprocessError(
            f'"pixels" must lie in [0, {high:g}] for pixel_range "{pixel_range}", got '
            f"[{values.min():g}, {values.max():g}]"
        )
    if pixel_range == "0-255" and values.max() <= 1.0 and np.any(values != np.round(values)):
        raise PreprocessError(
            'ambiguous "pixels": all values lie in [0, 1] with fractions, which looks like a '
            '0..1 image; send 0..255 intensities or set "pixel_range": "0-1"'
        )
    return normalise(values / high, manifest)
