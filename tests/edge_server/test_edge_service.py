"""EdgeDecoder without sockets: validation, zero-fill, batching, pilot CSI, health.

The decoder here is a small NumPy linear-softmax model with the runtime's call signature
(received [N, d], beta [N], snr_db [N]) -> probabilities [N, C]; the torch runtime is
exercised by tests/integration/test_channel_edge.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from contextlib import asynccontextmanager

import grpc
import numpy as np
import pytest

from edge_server.service import EdgeDecoder
from edge_server.settings import parse_settings
from shared.manifest import Manifest
from shared.rpc import coinference_pb2 as pb
from shared.service.errors import ServiceError

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


@asynccontextmanager
async def running(decoder, manifest=None, **kwargs):
    """A started EdgeDecoder (the warm-up probe is not left in ``decoder.calls``)."""
    service = EdgeDecoder(decoder, manifest or make_manifest(), **kwargs)
    await service.start()
    for attr in ("calls", "inputs"):
        getattr(decoder, attr, []).clear()
    try:
        yield service
    finally:
        await service.close()


def transmission(**overrides) -> pb.Transmission:
    fields = dict(
        request_id="r1", model_id="model-a", beta=1e-3, snr_db=10.0, d=D, symbols=[0.5, -0.25, 1.7]
    )
    fields.update(overrides)
    return pb.Transmission(**fields)


async def test_decode_zero_fills_to_d(decoder) -> None:
    async with running(decoder) as edge:
        reply = await edge.decode(transmission())
    (received,) = decoder.calls
    assert received.shape == (1, D)
    np.testing.assert_allclose(received[0, :3], [0.5, -0.25, 1.7])
    assert not received[0, 3:].any()
    assert len(reply.probabilities) == 3
    assert sum(reply.probabilities) == pytest.approx(1.0, abs=1e-5)
    assert reply.label == int(np.argmax(reply.probabilities))
    assert reply.model_id == "model-a" and reply.request_id == "r1" and reply.n_symbols == 3
    assert reply.timings.decode_s > 0 and reply.timings.edge_total_s >= reply.timings.decode_s


async def test_decoder_gets_encoder_snr_by_default(decoder) -> None:
    async with running(decoder) as edge:
        await edge.decode(transmission(snr_db=12.0, psnr_db=3.0))
    assert decoder.inputs[0][1][0] == 12.0


async def test_decoder_snr_csi_uses_channel_psnr(decoder) -> None:
    async with running(decoder, decoder_snr="csi") as edge:
        reply = await edge.decode(transmission(snr_db=12.0, psnr_db=3.0))
        assert decoder.inputs[0][1][0] == 3.0 and reply.decoder_snr_db == 3.0
        with pytest.raises(ServiceError) as info:
            await edge.decode(transmission())  # never went through a channel
        assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION


class LinearRegressionDecoder:
    """y·w + 10 (a value in target units, as the runtime returns it): [N, 1]."""

    def __init__(self) -> None:
        self.weights = np.arange(1, D + 1, dtype=np.float32).reshape(D, 1)

    def __call__(self, received, beta, snr_db):
        return (received @ self.weights + 10.0).astype(np.float32)


async def test_regression_returns_value() -> None:
    async with running(LinearRegressionDecoder(), make_manifest("regression")) as edge:
        reply = await edge.decode(transmission(symbols=[0.5, -0.25, 1.7]))
    # 0.5·1 - 0.25·2 + 1.7·3 + 10 (the zero-filled tail adds nothing)
    assert reply.regression_value == pytest.approx(15.1, abs=1e-5) and not reply.probabilities


async def test_pilot_estimate_in_csi(decoder) -> None:
    rng = np.random.default_rng(1)
    pilots = np.where(np.arange(4000) % 2 == 0, 1.0, -1.0) + rng.normal(0, 0.1, 4000)
    async with running(decoder) as edge:
        reply = await edge.decode(
            transmission(pilots_received=pilots.tolist(), psnr_db=20.0, noise_var=0.01)
        )
    assert reply.csi.has_pilot_estimate
    assert reply.csi.noise_var_estimate == pytest.approx(0.01, rel=0.08)
    assert reply.csi.psnr_db == 20.0 and reply.csi.n_pilots == 4000


async def test_no_pilots_no_estimate(decoder) -> None:
    async with running(decoder) as edge:
        assert not (await edge.decode(transmission())).csi.has_pilot_estimate


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
async def test_validation_errors(decoder, overrides, code, message) -> None:
    async with running(decoder) as edge:
        with pytest.raises(ServiceError, match=message) as info:
            await edge.decode(transmission(**overrides))
    assert info.value.code.name == code
    assert not decoder.calls


async def test_received_amplitude_is_not_bounded(decoder) -> None:
    async with running(decoder) as edge:
        await edge.decode(transmission(symbols=[3.5, -4.0]))  # noise can push symbols past 1


async def test_concurrent_requests_share_a_batch() -> None:
    decoder = LinearSoftmaxDecoder(delay_s=0.02)
    async with running(decoder, max_batch_size=16) as edge:
        replies = await asyncio.gather(
            *(edge.decode(transmission(request_id=str(i))) for i in range(16))
        )
    assert [r.request_id for r in replies] == [str(i) for i in range(16)]
    assert max(call.shape[0] for call in decoder.calls) > 1
    assert len(decoder.calls) < 16
    assert all(r.timings.edge_queue_s >= 0 for r in replies)


async def test_batch_results_go_to_the_right_request(decoder) -> None:
    symbols = [[0.1 * i] * (1 + i % D) for i in range(24)]
    async with running(decoder, max_batch_size=8) as edge:
        replies = await asyncio.gather(*(edge.decode(transmission(symbols=s)) for s in symbols))
    assert max(call.shape[0] for call in decoder.calls) > 1
    async with running(LinearSoftmaxDecoder(), max_batch_size=1) as single:
        for s, reply in zip(symbols, replies, strict=True):
            np.testing.assert_allclose(
                reply.probabilities,
                (await single.decode(transmission(symbols=s))).probabilities,
                rtol=1e-5,
            )


async def test_batching_off_means_one_per_call() -> None:
    decoder = LinearSoftmaxDecoder(delay_s=0.005)
    async with running(decoder, max_batch_size=1) as edge:
        await asyncio.gather(*(edge.decode(transmission()) for _ in range(6)))
    assert [call.shape[0] for call in decoder.calls] == [1] * 6


async def test_caller_deadline_is_deadline_exceeded_and_others_are_served() -> None:
    decoder = LinearSoftmaxDecoder(delay_s=0.05)
    async with running(decoder) as edge:
        busy = asyncio.ensure_future(edge.decode(transmission(request_id="busy")))
        await asyncio.sleep(0.01)
        short = [edge.decode(transmission(request_id=f"s{i}"), timeout_s=0.005) for i in range(8)]
        outcomes = await asyncio.gather(*short, return_exceptions=True)
        assert {o.code for o in outcomes} == {grpc.StatusCode.DEADLINE_EXCEEDED}
        assert (await busy).request_id == "busy"
        assert (await edge.decode(transmission(request_id="ok"), timeout_s=1.0)).request_id == "ok"
        assert edge.serving


# -- health ------------------------------------------------------------------------------
class FlakyDecoder(LinearSoftmaxDecoder):
    """Raises while ``broken`` is set, or for any input whose first symbol is 9.0."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = threading.Event()

    def __call__(self, received, beta, snr_db):
        if self.broken.is_set() or (received[:, 0] == 9.0).any():
            raise RuntimeError("CUDA fell over")
        return super().__call__(received, beta, snr_db)


async def until(predicate, timeout_s: float = 2.0) -> None:
    deadline = time.perf_counter() + timeout_s
    while not predicate() and time.perf_counter() < deadline:
        await asyncio.sleep(0.005)


class HealthLog:
    def __init__(self) -> None:
        self.changes: list[bool] = []

    async def __call__(self, serving: bool) -> None:
        self.changes.append(serving)


async def test_decoder_failure_is_internal_and_worker_survives() -> None:
    decoder, health = FlakyDecoder(), HealthLog()
    async with running(decoder, max_batch_size=1, on_health=health) as edge:
        with pytest.raises(ServiceError, match="CUDA fell over") as info:
            await edge.decode(transmission(symbols=[9.0]))  # this request's batch fails ...
        assert info.value.code == grpc.StatusCode.INTERNAL
        assert len((await edge.decode(transmission())).probabilities) == 3  # ... only it
        assert edge.serving and health.changes == [True]  # the probe said the decoder runs


async def test_decoder_that_cannot_run_is_not_serving_until_it_runs_again() -> None:
    decoder, health = FlakyDecoder(), HealthLog()
    decoder.broken.set()
    async with running(decoder, on_health=health, probe_interval_s=0.02) as edge:
        assert edge.serving is False and health.changes == [False]
        assert edge.info().serving is False
        with pytest.raises(ServiceError) as info:
            await edge.decode(transmission())
        assert info.value.code == grpc.StatusCode.INTERNAL
        decoder.broken.clear()  # e.g. the GPU came back: the next probe notices
        await until(lambda: edge.serving)
        assert edge.serving and health.changes == [False, True] and edge.info().serving


async def test_decoder_breaking_while_serving_turns_not_serving() -> None:
    decoder, health = FlakyDecoder(), HealthLog()
    async with running(decoder, on_health=health, probe_interval_s=60) as edge:
        decoder.broken.set()
        with pytest.raises(ServiceError):
            await edge.decode(transmission())
        await until(lambda: edge.serving is False)  # the probe after the failed batch
        assert health.changes == [True, False]


async def test_stopped_worker_is_not_serving_and_unavailable(decoder) -> None:
    health = HealthLog()
    async with running(decoder, on_health=health) as edge:
        edge.batcher.worker.cancel()  # the worker dies (a bug, or killed)
        await until(lambda: edge.serving is False)
        assert edge.serving is False and health.changes == [True, False]
        with pytest.raises(ServiceError, match="decoder unavailable") as info:
            await edge.decode(transmission())
        assert info.value.code == grpc.StatusCode.UNAVAILABLE


def test_info_reports_manifest(decoder) -> None:
    info = EdgeDecoder(decoder, make_manifest()).info()
    assert (info.model_id, info.d, info.task) == ("model-a", D, "classification")
    assert (info.beta_min, info.beta_max, info.snr_db_max) == (1e-5, 1.0, 25.0)
    assert list(info.class_names) == ["a", "b", "c"] and info.decoder_snr == "transmission"


def test_settings_default_to_no_queue_delay() -> None:
    assert parse_settings([], env={}).max_queue_delay_us == 0


def test_inline_decoding_is_a_cpu_option_off_by_default(decoder) -> None:
    assert parse_settings([], env={}).inline_decode_max == 0
    assert parse_settings(["--inline-decode-max", "8"], env={}).inline_decode_max == 8
    on_cpu = EdgeDecoder(decoder, make_manifest(), device="cpu", inline_decode_max=8)
    on_cuda = EdgeDecoder(decoder, make_manifest(), device="cuda", inline_decode_max=8)
    assert (on_cpu.batcher.inline_max, on_cuda.batcher.inline_max) == (8, 0)


def test_settings_reject_zero_batch(capsys) -> None:
    with pytest.raises(SystemExit):
        parse_settings(["--max-batch-size", "0"], env={})
    err = capsys.readouterr().err
    assert "--max-batch-size / EDGE_MAX_BATCH_SIZE: must be >= 1" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
