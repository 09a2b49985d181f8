"""Property-based fuzzing (Hypothesis) of the device's input parsers.

Thousands of generated inputs: the image decoder and the JSON pixel parser either return the
model input (float32 [C, H, W], finite) or raise PreprocessError with a 4xx status and a
message; nothing else ever comes out (no crash, no 500)."""

from __future__ import annotations

import io

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from device.preprocess import PreprocessError, decode_image, pixels_to_input
from tests.device.helpers import make_manifest

MANIFEST = make_manifest()
SHAPE = tuple(MANIFEST.input_shape)
FUZZ = settings(
    max_examples=1000,  # x 5 tests: 5,000 generated inputs per run
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


def outcome(parse, payload) -> str:
    """'ok' with a valid input, or the PreprocessError's status; anything else fails."""
    try:
        x = parse(payload, MANIFEST)
    except PreprocessError as exc:
        assert 400 <= exc.status < 500, (exc.status, str(exc))
        assert str(exc), "an error must say what to fix"
        return str(exc.status)
    assert x.dtype == np.float32 and x.shape == SHAPE and np.all(np.isfinite(x))
    return "ok"


def image_bytes(pixels: np.ndarray, fmt: str, mode: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, format=fmt)
    return buffer.getvalue()


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_never_crash_the_image_decoder(data):
    outcome(decode_image, data)


@FUZZ
@given(
    width=st.integers(1, 64),
    height=st.integers(1, 64),
    fmt_mode=st.sampled_from(
        [
            ("PNG", "L"),
            ("PNG", "RGB"),
            ("PNG", "RGBA"),
            ("PNG", "P"),
            ("PNG", "1"),
            ("JPEG", "L"),
            ("JPEG", "RGB"),
            ("JPEG", "CMYK"),
            ("GIF", "P"),
            ("BMP", "RGB"),
            ("TIFF", "RGB"),
            ("WEBP", "RGB"),
        ]
    ),  # fmt: skip
    cut=st.one_of(st.none(), st.integers(0, 400)),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
    seed=st.integers(0, 2**16),
)
def test_real_images_truncated_or_corrupted_give_input_or_4xx(
    width, height, fmt_mode, cut, flips, seed
):
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    data = bytearray(image_bytes(pixels, *fmt_mode))
    for position, value in flips:  # corrupt a few bytes
        if data:
            data[position % len(data)] = value
    if cut is not None:
        data = data[:cut]
    result = outcome(decode_image, bytes(data))
    if cut is None and not flips:
        assert result == "ok"  # an intact image of any format, size and mode decodes


json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.text(max_size=5),
    st.floats(allow_nan=True, allow_infinity=True),
)  # fmt: skip
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=40,
)


@FUZZ
@given(json_values)
def test_arbitrary_json_never_crashes_the_pixel_parser(payload):
    outcome(pixels_to_input, payload)


@FUZZ
@given(
    pixels=json_values,
    pixel_range=st.one_of(st.sampled_from(["0-255", "0-1"]), json_scalars),
    extra=st.dictionaries(st.sampled_from(["x", "shape", "pixel_range2"]), json_scalars),
)
def test_pixel_objects_with_junk_give_input_or_4xx(pixels, pixel_range, extra):
    outcome(pixels_to_input, {"pixels": pixels, "pixel_range": pixel_range, **extra})


@FUZZ
@given(
    seed=st.integers(0, 2**16),
    low=st.floats(-2.0, 300.0),
    span=st.floats(0.0, 300.0),
    spikes=st.lists(
        st.tuples(st.integers(0, 783), st.sampled_from([float("nan"), float("inf"), -1e-3, 256.0])),
        max_size=3,
    ),
    pixel_range=st.sampled_from(["0-255", "0-1"]),
    as_2d=st.booleans(),
)
def test_right_shape_arrays_are_valid_exactly_when_in_range(
    seed, low, span, spikes, pixel_range, as_2d
):
    array = np.random.default_rng(seed).uniform(low, low + span, 784)
    for index, value in spikes:
        array[index] = value
    array = array.reshape(SHAPE[1:] if as_2d else SHAPE)
    result = outcome(pixels_to_input, {"pixels": array.tolist(), "pixel_range": pixel_range})
    high = 255.0 if pixel_range == "0-255" else 1.0
    in_range = np.all(np.isfinite(array)) and array.min() >= 0 and array.max() <= high
    if not in_range:
        assert result == "422"


def test_every_single_byte_corruption_of_small_images_gives_input_or_4xx():
    """Deterministic sweep: each byte of small files in every format set to 0/1/2/127/255.

    Catches the exception types Pillow's plugins raise on malformed headers (a 1x1 RGB TIFF
    with byte 72 set to 2 once raised TypeError and became a 500)."""
    formats = [("PNG", "RGB"), ("PNG", "P"), ("JPEG", "RGB"), ("GIF", "P"), ("BMP", "RGB"),
               ("TIFF", "RGB"), ("TIFF", "L"), ("WEBP", "RGB")]  # fmt: skip
    pixels = np.random.default_rng(0).integers(0, 256, (2, 3, 3), dtype=np.uint8)
    for fmt, mode in formats:
        data = image_bytes(pixels[:1, :1], fmt, mode)
        for position in range(len(data)):
            for value in (0, 1, 2, 127, 255):
                corrupted = bytearray(data)
                corrupted[position] = value
                outcome(decode_image, bytes(corrupted))
    corrupted = bytearray(image_bytes(pixels[:1, :1], "TIFF", "RGB"))
    corrupted[72] = 2
    assert outcome(decode_image, bytes(corrupted)) == "400"
