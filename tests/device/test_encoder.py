"""The ONNX Runtime encoder on real trained models (tests/conftest.py): the 4-bit quick model
(fixed length) and the variable-length quick model (VL-VFE)."""

from __future__ import annotations

import numpy as np
import pytest

from device.encoder import UNQUANTIZED_BITS, OnnxEncoder


@pytest.fixture(scope="module")
def encoder(quick_model_dir) -> OnnxEncoder:
    return OnnxEncoder(quick_model_dir)


@pytest.fixture(scope="module")
def vl_encoder(quick_vl_model_dir) -> OnnxEncoder:
    return OnnxEncoder(quick_vl_model_dir)


def inputs(encoder: OnnxEncoder, n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, *encoder.manifest.input_shape)).astype(np.float32)


def test_outputs_follow_the_contract(encoder):
    out = encoder.encode(inputs(encoder, 3), beta=1e-3, snr_db=10.0)
    d = encoder.manifest.d
    assert out.symbols.shape == (3, d) and out.symbols.dtype == np.float32
    assert out.n_active.shape == (3,) and np.all((out.n_active >= 1) & (out.n_active <= d))
    assert np.abs(out.symbols).max() <= 1.0 + 1e-6  # peak amplitude 1
    for row, n in zip(out.symbols, out.n_active, strict=True):
        assert np.all(row[n:] == 0)  # zero past the active prefix
    assert (out.levels is None) == (encoder.manifest.bits is None)


def test_encoding_is_deterministic_and_batch_independent(encoder):
    x = inputs(encoder, 4)
    batch = encoder.encode(x, 1e-3, 20.0)
    single = encoder.encode(x[2:3], 1e-3, 20.0)
    np.testing.assert_allclose(batch.symbols[2], single.symbols[0], atol=1e-5)


def test_transmit_sends_all_d_when_variable_length_is_off(encoder):
    out = encoder.encode(inputs(encoder, 1), 1e-3, 20.0)
    sent = encoder.transmit(out, 0, variable_length=False)
    d = encoder.manifest.d
    bits = encoder.manifest.bits or UNQUANTIZED_BITS
    assert sent.n_symbols == d and sent.symbols.shape == (d,) and sent.bits == d * bits


def test_transmit_sends_the_active_prefix_when_variable_length_is_on(vl_encoder):
    beta = vl_encoder.manifest.beta_range[0]
    out = vl_encoder.encode(inputs(vl_encoder, 2), beta, 25.0)
    d = vl_encoder.manifest.d
    assert np.all(out.n_active < d)  # a real prefix, not all d dimensions
    for row, n in zip(out.symbols, out.n_active, strict=True):
        assert np.all(row[n:] == 0) and np.all(row[:n] != 0)
    sent = vl_encoder.transmit(out, 1, variable_length=True)
    assert sent.n_symbols == int(out.n_active[1])
    np.testing.assert_array_equal(sent.symbols, out.symbols[1, : sent.n_symbols])
    assert vl_encoder.transmit(out, 1, variable_length=False).n_symbols == d


def test_prefix_shortens_as_the_snr_rises(vl_encoder):
    beta = vl_encoder.manifest.beta_range[0]
    x = inputs(vl_encoder, 8)
    n_active = [vl_encoder.encode(x, beta, snr).n_active.mean() for snr in (10.0, 17.5, 25.0)]
    assert n_active[0] > n_active[1] > n_active[2], n_active


def test_wrong_input_shape_is_refused(encoder):
    with pytest.raises(ValueError, match="shape"):
        encoder.encode(np.zeros((1, 3, 5, 5), dtype=np.float32), 1e-3, 10.0)
