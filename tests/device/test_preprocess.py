"""Pre-processing: images of any size/mode and JSON pixels to the normalised input."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from device.preprocess import PreprocessError, decode_image, pixels_to_input
from tests.device.helpers import encode, grey_ramp, make_manifest

MANIFEST = make_manifest()
MEAN, STD = 0.286, 0.353


def expected(pixels: np.ndarray) -> np.ndarray:
    return ((pixels.astype(np.float32) / 255.0 - MEAN) / STD).astype(np.float32)[None]


def test_grey_png_at_input_size_is_normalised_exactly():
    pixels = grey_ramp(28, 28)
    x = decode_image(encode(Image.fromarray(pixels, mode="L")), MANIFEST)
    assert x.dtype == np.float32 and x.shape == (1, 28, 28)
    np.testing.assert_allclose(x, expected(pixels), atol=1e-6)


@pytest.mark.parametrize("size", [(1, 1), (5, 7), (28, 28), (300, 41), (640, 480)])
@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA", "P", "1", "I;16", "I", "CMYK"])
def test_any_size_and_mode_gives_the_input_shape(size, mode):
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    if mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65536, (size[1], size[0]), dtype=np.uint16))
    elif mode == "I":
        image = Image.fromarray(rng.integers(0, 65536, (size[1], size[0]), dtype=np.int32))
    else:
        image = rgb.convert(mode)
    fmt = "JPEG" if mode == "CMYK" else ("TIFF" if mode == "I" else "PNG")
    x = decode_image(encode(image, fmt), MANIFEST)
    assert x.shape == (1, 28, 28) and x.dtype == np.float32
    low, high = (0 - MEAN) / STD, (1 - MEAN) / STD
    assert np.all(np.isfinite(x)) and x.min() >= low - 1e-5 and x.max() <= high + 1e-5


def test_jpeg_decodes_close_to_source():
    pixels = np.full((28, 28), 200, dtype=np.uint8)
    x = decode_image(encode(Image.fromarray(pixels, mode="L"), "JPEG", quality=95), MANIFEST)
    np.testing.assert_allclose(x, expected(pixels), atol=2 / 255 / STD)


def test_resize_is_bilinear_without_crop():
    """A 56x28 image, left half black, right half white: both halves survive the resize."""
    pixels = np.zeros((28, 56), dtype=np.uint8)
    pixels[:, 28:] = 255
    image = Image.fromarray(pixels, mode="L")
    x = decode_image(encode(image), MANIFEST)
    reference = np.asarray(image.resize((28, 28), Image.Resampling.BILINEAR), dtype=np.float32)
    np.testing.assert_allclose(x, expected(reference), atol=1e-6)
    assert x[0, :, :13].max() == pytest.approx((0 - MEAN) / STD)
    assert x[0, :, 15:].min() == pytest.approx((1 - MEAN) / STD)


def test_rgb_image_becomes_luma_for_a_grey_model():
    rgb = np.zeros((28, 28, 3), dtype=np.uint8)
    rgb[..., 0] = 255  # pure red: ITU-R 601-2 luma = 0.299 * 255
    x = decode_image(encode(Image.fromarray(rgb)), MANIFEST)
    np.testing.assert_allclose(x, expected(np.full((28, 28), 76)), atol=1e-6)


def test_grey_image_becomes_three_equal_channels_for_an_rgb_model():
    manifest = make_manifest((3, 32, 32), mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))
    x = decode_image(encode(Image.fromarray(grey_ramp(32, 32), mode="L")), manifest)
    assert x.shape == (3, 32, 32)
    pixels01 = grey_ramp(32, 32) / 255.0
    for c, (m, s) in enumerate(zip((0.5, 0.4, 0.3), (0.2, 0.25, 0.3), strict=True)):
        np.testing.assert_allclose(x[c], (pixels01 - m) / s, atol=1e-5)


def test_transparency_is_composited_over_black():
    image = Image.new("RGBA", (28, 28), (255, 255, 255, 0))  # fully transparent white
    x = decode_image(encode(image), MANIFEST)
    np.testing.assert_allclose(x, expected(np.zeros((28, 28))), atol=1e-6)


def test_sixteen_bit_grey_is_scaled_to_eight_bit():
    image = Image.fromarray(np.full((28, 28), 65535, dtype=np.uint16))
    x = decode_image(encode(image), MANIFEST)
    np.testing.assert_allclose(x, expected(np.full((28, 28), 255)), atol=1e-6)


@pytest.mark.parametrize(
    "payload, status",
    [
        (b"", 400),
        (b"definitely not an image", 400),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, 400),  # PNG signature, garbage after
    ],
)
def test_bad_bytes_are_rejected_with_a_clear_error(payload, status):
    with pytest.raises(PreprocessError) as info:
        decode_image(payload, MANIFEST)
    assert info.value.status == status
    assert "image" in str(info.value)


def test_truncated_png_is_rejected():
    data = encode(Image.fromarray(grey_ramp(64, 64), mode="L"))
    with pytest.raises(PreprocessError) as info:
        decode_image(data[: len(data) // 2], MANIFEST)
    assert info.value.status == 400


def test_non_image_model_refuses_images():
    manifest = make_manifest((40,), mean=(0.0,), std=(1.0,))
    with pytest.raises(PreprocessError, match="not a 1- or 3-channel image"):
        decode_image(encode(Image.new("L", (28, 28))), manifest)


# --- JSON pixels -------------------------------------------------------------------------
def test_pixels_0_255_match_the_image_path():
    pixels = grey_ramp(28, 28)
    from_json = pixels_to_input({"pixels": pixels.tolist()}, MANIFEST)
    from_png = decode_image(encode(Image.fromarray(pixels, mode="L")), MANIFEST)
    np.testing.assert_allclose(from_json, from_png, atol=1e-6)


def test_pixels_accept_channel_first_shape():
    pixels = grey_ramp(28, 28)[None]
    x = pixels_to_input({"pixels": pixels.tolist()}, MANIFEST)
    np.testing.assert_allclose(x, expected(pixels[0]), atol=1e-6)


def test_pixels_0_1_with_declared_range():
    pixels = grey_ramp(28, 28)
    x = pixels_to_input({"pixels": (pixels / 255.0).tolist(), "pixel_range": "0-1"}, MANIFEST)
    np.testing.assert_allclose(x, expected(pixels), atol=1e-5)


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"pixels": (grey_ramp(28, 28) / 255.0).tolist()}, "ambiguous"),
        ({"pixels": np.full((28, 28), 300).tolist()}, "must lie in"),
        ({"pixels": np.full((28, 28), -1).tolist()}, "must lie in"),
        ({"pixels": np.full((28, 28), 2).tolist(), "pixel_range": "0-1"}, "must lie in"),
        ({"pixels": np.zeros((27, 28)).tolist()}, "shape"),
        ({"pixels": np.zeros((3, 28, 28)).tolist()}, "shape"),
        ({"pixels": [[1, 2], [3]]}, "rectangular"),
        ({"pixels": "abc"}, "array of numbers"),
        ({"pixels": [[float("nan")] * 28] * 28}, "NaN"),
        ({"pixels": np.zeros((28, 28)).tolist(), "pixel_range": "0-65535"}, "pixel_range"),
        ({"pixels": np.zeros((28, 28)).tolist(), "extra": 1}, "unknown JSON fields"),
        ({"image": []}, '"pixels"'),
        ([1, 2, 3], '"pixels"'),
    ],
)
def test_bad_pixels_are_rejected_with_422(payload, message):
    with pytest.raises(PreprocessError, match=message) as info:
        pixels_to_input(payload, MANIFEST)
    assert info.value.status == 422


def test_all_black_or_white_0_255_arrays_are_not_ambiguous():
    black = pixels_to_input({"pixels": np.zeros((28, 28)).tolist()}, MANIFEST)
    np.testing.assert_allclose(black, expected(np.zeros((28, 28))), atol=1e-6)
    ones = pixels_to_input({"pixels": np.ones((28, 28)).tolist()}, MANIFEST)  # integers: 1/255
    np.testing.assert_allclose(ones, expected(np.ones((28, 28))), atol=1e-6)


@pytest.mark.parametrize("fmt", ["PNG", "PNG-XMP", "JPEG", "WEBP"])
def test_exif_orientation_is_applied(fmt):
    """Orientation 6 (rotate 90 degrees clockwise to display) turns a 28x14 image into the
    14x28 one a viewer shows, before the resize; in PNG too (an eXIf chunk, or XMP's
    tiff:Orientation, which Pillow reads as well)."""
    import io

    from PIL import PngImagePlugin

    pixels = np.zeros((14, 28), dtype=np.uint8)
    pixels[:, :7] = 255  # a white band on the left of the stored image
    image = Image.fromarray(pixels, mode="L")
    buffer = io.BytesIO()
    if fmt == "PNG-XMP":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
                      'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
                      'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/>'
                      "</rdf:RDF></x:xmpmeta>")  # fmt: skip
        image.save(buffer, "PNG", pnginfo=info)
    else:
        exif = Image.Exif()
        exif[0x0112] = 6
        lossy = {"quality": 100} if fmt != "PNG" else {}
        image.save(buffer, fmt, exif=exif.tobytes(), **lossy)
    x = decode_image(buffer.getvalue(), MANIFEST)[0]
    shown = np.asarray(Image.fromarray(pixels).transpose(Image.Transpose.ROTATE_270)
                       .resize((28, 28), Image.Resampling.BILINEAR), dtype=np.float32)  # fmt: skip
    assert x[:7].mean() > x[-7:].mean()  # rotated clockwise: the band is now on top
    np.testing.assert_allclose(x, expected(shown)[0], atol=1e-5 if "PNG" in fmt else 0.25)
