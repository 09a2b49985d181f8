"""Fuzzing the edge's transmission validation (Hypothesis): thousands of generated
``Transmission`` messages through :meth:`EdgeDecoder.decode` (the plain class, no socket).
Each ends in a valid reply or a :class:`ServiceError` with INVALID_ARGUMENT /
FAILED_PRECONDITION, never another exception: symbols with NaN/Inf/huge values, 0..3·d of
them, any bits, d, beta, SNR, CSI and model id, in both decoder-SNR modes."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_server.service import EdgeDecoder
from shared.rpc import coinference_pb2 as pb
from shared.service.errors import ServiceError
from tests.edge_server.test_edge_service import D, make_manifest

ALLOWED = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION}
EXAMPLES = 2500  # per decoder-SNR mode: 5,000 in all

any_float = st.floats(allow_nan=True, allow_infinity=True)  # every double, NaN and Inf too
edgy_float = st.sampled_from([0.0, -0.0, 1e-5, 1.0, 25.0, -1.0, 1e-300, 1e300, float("nan"),
                              float("inf"), float("-inf")])  # fmt: skip
symbol = st.one_of(st.floats(-2, 2), any_float)
uint32 = st.one_of(st.sampled_from([0, 1, 4, D]), st.integers(0, 2**32 - 1))


FIELDS = ("model_id", "beta", "snr_db", "bits", "d", "symbols", "pilots", "csi")


@st.composite
def transmissions(draw) -> pb.Transmission:
    """Half the time every field is random; else a valid transmission with a few fields
    (maybe none) replaced by random ones, so replies and each error are all reached."""
    wild = draw(st.booleans())
    bad = set(FIELDS) if wild else draw(st.sets(st.sampled_from(FIELDS), max_size=3))

    def pick(field, good, anything):
        return draw(anything if field in bad else good)

    t = pb.Transmission(
        request_id=draw(st.text(max_size=8)),
        model_id=pick(
            "model_id",
            st.just("model-a"),
            st.one_of(st.sampled_from(["model-a", "", "model-b"]), st.text(max_size=20)),
        ),  # fmt: skip
        beta=pick("beta", st.floats(1e-5, 1.0), st.one_of(edgy_float, any_float)),
        snr_db=pick("snr_db", st.floats(0.0, 25.0), st.one_of(edgy_float, any_float)),
        bits_per_symbol=pick("bits", st.sampled_from([0, 4]), uint32),
        d=pick("d", st.sampled_from([0, D]), uint32),
        symbols=pick(
            "symbols",
            st.lists(st.floats(-2, 2), min_size=1, max_size=D),
            st.lists(symbol, max_size=3 * D),
        ),  # fmt: skip
        pilots_received=pick(
            "pilots", st.lists(st.floats(-2, 2), max_size=6), st.lists(symbol, max_size=6)
        ),  # fmt: skip
    )
    if "csi" not in bad or draw(st.booleans()):
        t.psnr_db = pick("csi", st.floats(0.0, 25.0), st.one_of(st.floats(-10, 40), edgy_float))
        t.noise_var = pick("csi", st.floats(0, 10), st.one_of(st.floats(0, 10), edgy_float))
    return t


class SoftmaxDecoder:
    """softmax of a fixed linear map of the received symbols (NumPy, like the runtime)."""

    def __init__(self) -> None:
        self.weights = np.random.default_rng(0).normal(size=(D, 3)).astype(np.float32)

    def __call__(self, received, beta, snr_db):
        logits = np.clip(received, -10, 10) @ self.weights
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("decoder_snr", ["transmission", "csi"])
def test_generated_transmissions_get_a_reply_or_a_caller_error(decoder_snr):
    loop = asyncio.new_event_loop()
    edge = EdgeDecoder(SoftmaxDecoder(), make_manifest(bits=4), decoder_snr=decoder_snr)
    assert loop.run_until_complete(edge.start())
    outcomes = {"reply": 0, **{code.name: 0 for code in ALLOWED}}

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
    @given(transmissions())
    def check(transmission: pb.Transmission) -> None:
        try:
            reply = loop.run_until_complete(edge.decode(transmission, timeout_s=5.0))
        except ServiceError as exc:
            assert exc.code in ALLOWED, exc
            assert exc.message  # says what is wrong
            outcomes[exc.code.name] += 1
            return
        outcomes["reply"] += 1
        assert reply.model_id == "model-a"
        assert len(reply.probabilities) == 3
        assert np.all(np.isfinite(reply.probabilities))
        assert reply.n_symbols == len(transmission.symbols) <= D

    try:
        check()
    finally:
        loop.run_until_complete(edge.close())
        loop.close()
    # the generator reaches every outcome, not just the first check
    assert all(count > 0 for count in outcomes.values()), outcomes
    assert edge.serving
