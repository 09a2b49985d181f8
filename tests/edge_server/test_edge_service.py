"""EdgeDecoder without sockets: validation, zero-fill, micro-batching, pilot CSI.

The decoder here is a small NumPy linear-softmax model with the runtime's call signature
(received [N, d], beta [N], snr_db [N]) -> probabilities [N, C]; the torch runtime is
exercised by tests/integration/test_channel_edge.py.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest

from edge_server.batcher import MicroBatcher
from edge_server.config import parse_settings
from edge_server.service import EdgeDecoder, EdgeError
from shared.manifest import Manifest
from shared.rpc import coinference_pb2 as pb

D = 8


def make_manifest(task: str = "classification", bits: int | None = None) -> Manifest:
    return Manifest(
        model_id="model-a",
        task=task,
        dataset="unit",
        input_shape=(1, 4, 4),
        input_mean=(0.0,),
        input_std=(1.0,),
        class_names=("a", "b", "c") if task == "classification" else (),
        d=D,
        bits=bits,
        levels=None,
        breakpoints=None,
        variable_length=True,
        beta_range=(1e-5, 1.0),
        snr_db_range=(0.0, 25.0),
    )


class LinearSoftmaxDecoder:
    """softmax(y W + b) with b from beta and SNR; records the shapes it was called with."""

    def __init__(self, n_out: int = 3, delay_s: float = 0.0) -> None:
        self.weights = np.random.default_rng(0).normal(size=(D, n_out)).astype(np.float32)
        self.calls: list[np.ndarray] = []
        self.inputs: list[tuple[np.ndarray, np.ndarray]] = []
        self.delay_s = delay_s
        self.lock = threading.Lock()

    def __call__(self, received, beta, snr_db):
        with self.lock:
            self.calls.append(received.copy())
            self.inputs.append((beta.copy(), snr_db.copy()))
        time.sleep(self.delay_s)
        logits = received @ self.weights + 0.01 * snr_db[:, None] + np.log(beta)[:, None]
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def decoder():
    return LinearSoftmaxDecoder()


@pytest.fixture
def edge(decoder):
    service = EdgeDecoder(decoder, make_manifest(), max_batch_size=8, max_queue_delay_us=500)
    yield service
    service.close()


def transmission(**overrides) -> pb.Transmission:
    fields = dict(
        request_id="r1", model_id="model-a", beta=1e-3, snr_db=10.0, d=D, symbols=[0.5, -0.25, 1.7]
    )
    fields.update(overrides)
    return pb.Transmission(**fields)


def test_decode_zero_fills_to_d(edge, decoder) -> None:
    reply = edge.decode(transmission())
    (received,) = decoder.calls
    assert received.shape == (1, D)
    np.testing.assert_allclose(received[0, :3], [0.5, -0.25, 1.7])
    assert not received[0, 3:].any()
    assert len(reply.probabilities) == 3
    assert sum(reply.probabilities) == pytest.approx(1.0, abs=1e-5)
    assert reply.label == int(np.argmax(reply.probabilities))
    assert reply.model_id == "model-a" and reply.request_id == "r1" and reply.n_symbols == 3
    assert reply.timings.decode_s > 0 and reply.timings.edge_total_s >= reply.timings.decode_s


def test_decoder_gets_encoder_snr_by_default(edge, decoder) -> None:
    edge.decode(transmission(snr_db=12.0, psnr_db=3.0))
    assert decoder.inputs[0][1][0] == 12.0


def test_decoder_snr_csi_uses_channel_psnr(decoder) -> None:
    edge = EdgeDecoder(decoder, make_manifest(), decoder_snr="csi")
    try:
        reply = edge.decode(transmission(snr_db=12.0, psnr_db=3.0))
        assert decoder.inputs[0][1][0] == 3.0 and reply.decoder_snr_db == 3.0
        with pytest.raises(EdgeError) as info:
            edge.decode(transmission())  # never went through a channel
        assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        edge.close()


def test_regression_returns_value(decoder) -> None:
    regression = LinearSoftmaxDecoder(n_out=1)
    edge = EdgeDecoder(regression, make_manifest("regression"))
    try:
        reply = edge.decode(transmission())
        assert reply.regression_value == pytest.approx(1.0) and not reply.probabilities
    finally:
        edge.close()


def test_pilot_estimate_in_csi(edge) -> None:
    rng = np.random.default_rng(1)
    pilots = np.where(np.arange(4000) % 2 == 0, 1.0, -1.0) + rng.normal(0, 0.1, 4000)
    reply = edge.decode(transmission(pilots_received=pilots.tolist(), psnr_db=20.0, noise_var=0.01))
    assert reply.csi.has_pilot_estimate
    assert reply.csi.noise_var_estimate == pytest.approx(0.01, rel=0.08)
    assert reply.csi.psnr_db == 20.0 and reply.csi.n_pilots == 4000


def test_no_pilots_no_estimate(edge) -> None:
    assert not edge.decode(transmission()).csi.has_pilot_estimate


@pytest.mark.parametrize(
    ("overrides", "code", "message"),
    [
        ({"model_id": "model-b"}, "FAILED_PRECONDITION", "model id mismatch"),
        ({"symbols": []}, "INVALID_ARGUMENT", "no symbols"),
        ({"symbols": [0.1] * (D + 1)}, "INVALID_ARGUMENT", "more than the model's d=8"),
        ({"symbols": [0.1, float("nan")]}, "INVALID_ARGUMENT", "NaN or infinity"),
        ({"symbols": [float("inf")]}, "INVALID_ARGUMENT", "NaN or infinity"),
        ({"pilots_received": [1.0, float("nan")]}, "INVALID_ARGUMENT", "pilots_received"),
        ({"beta": 0.0}, "INVALID_ARGUMENT", "beta=0.0 outside"),
        ({"beta": -1.0}, "INVALID_ARGUMENT", "beta=-1.0 outside"),
        ({"beta": 2.0}, "INVALID_ARGUMENT", "beta=2.0 outside the trained range"),
        ({"beta": float("nan")}, "INVALID_ARGUMENT", "beta=nan"),
        ({"snr_db": 40.0}, "INVALID_ARGUMENT", "snr_db=40.0 outside the trained range"),
        ({"d": 16}, "INVALID_ARGUMENT", "d=16 does not match"),
        ({"bits_per_symbol": 2}, "INVALID_ARGUMENT", "bits_per_symbol=2"),
    ],
)
def test_validation_errors(edge, decoder, overrides, code, message) -> None:
    with pytest.raises(EdgeError, match=message) as info:
        edge.decode(transmission(**overrides))
    assert info.value.code.name == code
    assert not decoder.calls
    assert edge.metrics.failures.labels(code=code)._value.get() == 1


def test_received_amplitude_is_not_bounded(edge) -> None:
    edge.decode(transmission(symbols=[3.5, -4.0]))  # noise can push symbols past 1


def test_concurrent_requests_share_a_batch() -> None:
    decoder = LinearSoftmaxDecoder(delay_s=0.02)
    edge = EdgeDecoder(decoder, make_manifest(), max_batch_size=16, max_queue_delay_us=20_000)
    try:
        with ThreadPoolExecutor(16) as pool:
            replies = list(
                pool.map(lambda i: edge.decode(transmission(request_id=str(i))), range(16))
            )
        assert [r.request_id for r in replies] == [str(i) for i in range(16)]
        assert max(call.shape[0] for call in decoder.calls) > 1
        assert len(decoder.calls) < 16
        assert all(r.timings.edge_queue_s >= 0 for r in replies)
    finally:
        edge.close()


def test_batch_results_go_to_the_right_request(edge) -> None:
    with ThreadPoolExecutor(8) as pool:
        symbols = [[0.1 * i] * (1 + i % D) for i in range(24)]
        replies = list(pool.map(lambda s: edge.decode(transmission(symbols=s)), symbols))
    single = EdgeDecoder(LinearSoftmaxDecoder(), make_manifest(), max_batch_size=1)
    try:
        for s, reply in zip(symbols, replies, strict=True):
            np.testing.assert_allclose(
                reply.probabilities,
                single.decode(transmission(symbols=s)).probabilities,
                rtol=1e-5,
            )
    finally:
        single.close()


def test_batching_off_means_one_per_call() -> None:
    decoder = LinearSoftmaxDecoder(delay_s=0.005)
    edge = EdgeDecoder(decoder, make_manifest(), max_batch_size=1)
    try:
        with ThreadPoolExecutor(6) as pool:
            list(pool.map(lambda i: edge.decode(transmission()), range(6)))
        assert [call.shape[0] for call in decoder.calls] == [1] * 6
    finally:
        edge.close()


def test_decoder_failure_is_internal_and_worker_survives() -> None:
    calls = {"n": 0}

    def flaky(received, beta, snr_db):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("CUDA fell over")
        return np.full((received.shape[0], 3), 1 / 3, dtype=np.float32)

    edge = EdgeDecoder(flaky, make_manifest(), max_batch_size=1)
    try:
        with pytest.raises(EdgeError, match="CUDA fell over") as info:
            edge.decode(transmission())
        assert info.value.code == grpc.StatusCode.INTERNAL
        assert len(edge.decode(transmission()).probabilities) == 3
    finally:
        edge.close()


def test_batcher_waits_at_most_the_delay() -> None:
    batcher = MicroBatcher(lambda items: items, max_batch_size=64, max_delay_s=0.01)
    try:
        start = time.perf_counter()
        result = batcher.submit("x").result(timeout=2)
        assert time.perf_counter() - start < 0.5
        assert result.value == "x" and result.batch_size == 1 and result.queue_s >= 0.009
    finally:
        batcher.close()


def test_info_reports_manifest(edge) -> None:
    info = edge.info()
    assert (info.model_id, info.d, info.task) == ("model-a", D, "classification")
    assert (info.beta_min, info.beta_max, info.snr_db_max) == (1e-5, 1.0, 25.0)
    assert list(info.class_names) == ["a", "b", "c"] and info.decoder_snr == "transmission"


def test_settings_environment_fallbacks() -> None:
    settings = parse_settings(
        ["--max-batch-size", "4"],
        env={
            "EDGE_MODEL": "artifacts/x",
            "EDGE_PORT": "7000",
            "EDGE_MAX_BATCH_SIZE": "9",
            "EDGE_DECODER_SNR": "csi",
        },
    )
    assert str(settings.model) == "artifacts/x" and settings.port == 7000
    assert settings.max_batch_size == 4 and settings.decoder_snr == "csi"


def test_settings_reject_zero_batch(capsys) -> None:
    with pytest.raises(SystemExit):
        parse_settings(["--max-batch-size", "0"], env={})
    assert "--max-batch-size must be >= 1" in capsys.readouterr().err
