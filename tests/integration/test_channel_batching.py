"""The channel batching toward the edge, with real processes on loopback: many devices'
unary Transmit calls (real encoder symbols of real test images) coalesced into DecodeBatch
calls; each keeps its own answer, an invalid one fails alone, an edge killed mid-batch fails
only what was in flight.

These tests take the session's quick model (``quick_model_dir``)."""

from __future__ import annotations

import asyncio
import time
import urllib.request

import grpc
import numpy as np
import pytest

from shared.rpc import coinference_pb2 as pb
from shared.rpc import coinference_pb2_grpc as pb_grpc
from tests.procs import running_stack
from tools.devices.symbols import SymbolBook

EDGE_FLAGS = ["--device", "cpu", "--grace-s", 1]
START_TIMEOUT_S = {"edge": 90, "channel": 30}
N_IMAGES = 192


@pytest.fixture(scope="module")
def book(quick_model_dir) -> SymbolBook:
    """The device's ONNX encoder run on real Fashion-MNIST test images, at β = 1e-3."""
    return SymbolBook(quick_model_dir, np.array([1e-3]), N_IMAGES)


def transmission(book: SymbolBook, image: int, psnr_db: float = 20.0, **overrides):
    fields = dict(request_id=f"img-{image}", model_id=book.manifest.model_id, beta=1e-3,
                  snr_db=20.0, d=book.manifest.d, bits_per_symbol=book.bits_per_symbol,
                  symbols=book.symbols(0, book.snr_index(20.0), image),
                  link_psnr_db=psnr_db)  # fmt: skip
    fields.update(overrides)
    return pb.Transmission(**fields)


async def send_all(target: str, transmissions, deadline_s: float = 10.0) -> list:
    """Every transmission as its own unary call at once (as many devices would)."""
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.ChannelStub(channel)

        async def one(t):
            try:
                return await stub.Transmit(t, timeout=deadline_s)
            except grpc.aio.AioRpcError as exc:
                return exc.code()

        return await asyncio.gather(*(one(t) for t in transmissions))


def edge_batch_counts(metrics_port: int) -> tuple[float, float]:
    """(transmissions, calls) the channel has sent to the edge, from its /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith("coinference_channel_edge_batch_size_"):
            name, value = line.split()
            values[name.rsplit("_", 1)[-1]] = float(value)
    return values["sum"], values["count"]


def test_batched_and_unbatched_channels_give_every_device_its_own_answer(
    quick_model_dir, book
) -> None:
    """At 40 dB the noise hardly moves a label: a batched channel must answer each image as
    the unbatched one does (an answer handed to the wrong caller would not match)."""
    labels = {}
    for batching in ("on", "off"):
        flags = ["--edge-batching", batching, "--edge-in-flight", 1, "--seed", 3]
        with running_stack(quick_model_dir, services=["edge", "channel"], edge_flags=EDGE_FLAGS,
                           channel_flags=flags, metrics_ports=True,
                           start_timeout_s=START_TIMEOUT_S) as stack:  # fmt: skip
            sent = [transmission(book, i, psnr_db=40.0) for i in range(N_IMAGES)]
            replies = asyncio.run(send_all(stack.channel_target, sent))
            items, calls = edge_batch_counts(stack.metrics_ports["channel"])
        assert all(isinstance(r, pb.InferenceReply) for r in replies), replies
        assert [r.request_id for r in replies] == [t.request_id for t in sent]
        labels[batching] = np.array([r.label for r in replies])
        assert items == N_IMAGES
        if batching == "on":
            # coalesced: at least 2 transmissions per edge call on average (about 4 on an idle
            # machine; fewer when another test worker shares the cores)
            assert calls <= N_IMAGES / 2
        else:
            assert calls == N_IMAGES
    agree = float(np.mean(labels["on"] == labels["off"]))
    accuracy = {k: float(np.mean(v == book.labels[:N_IMAGES])) for k, v in labels.items()}
    assert agree >= 0.97, (agree, accuracy)
    assert accuracy["on"] >= 0.75 and abs(accuracy["on"] - accuracy["off"]) <= 0.03


@pytest.fixture(scope="module")
def batching_stack(quick_model_dir):
    flags = ["--edge-in-flight", 1, "--deadline-s", 5, "--grace-s", 1]
    with running_stack(quick_model_dir, services=["edge", "channel"], edge_flags=EDGE_FLAGS,
                       channel_flags=flags, start_timeout_s=START_TIMEOUT_S) as stack:  # fmt: skip
        yield stack


def test_invalid_transmissions_in_a_batch_fail_alone(batching_stack, book) -> None:
    sent = [transmission(book, i) for i in range(64)]
    sent[5] = transmission(book, 5, psnr_db=99.0)  # the channel refuses it before the batch
    sent[17] = transmission(book, 17, model_id="another-model")  # the edge refuses this item
    sent[40] = transmission(book, 40, beta=5.0)  # outside the trained β range: the edge's item
    replies = asyncio.run(send_all(batching_stack.channel_target, sent))
    codes = {i: r for i, r in enumerate(replies) if not isinstance(r, pb.InferenceReply)}
    assert codes == {
        5: grpc.StatusCode.INVALID_ARGUMENT,
        17: grpc.StatusCode.FAILED_PRECONDITION,
        40: grpc.StatusCode.INVALID_ARGUMENT,
    }
    ok = [r for r in replies if isinstance(r, pb.InferenceReply)]
    assert [r.request_id for r in ok] == [
        t.request_id for i, t in enumerate(sent) if i not in codes
    ]


async def stream(target: str, book: SymbolBook, seconds: float, rate_per_s: float) -> list:
    """Open-loop transmissions at ``rate_per_s`` for ``seconds``: (answered at, s since the
    start, status) of each."""
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.ChannelStub(channel)
        start = time.perf_counter()
        outcomes = []

        async def one(k: int) -> None:
            try:
                await stub.Transmit(transmission(book, k % N_IMAGES), timeout=3.0)
                code = grpc.StatusCode.OK
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
            outcomes.append((time.perf_counter() - start, code))

        tasks = []
        for k in range(int(seconds * rate_per_s)):
            await asyncio.sleep(max(0.0, start + k / rate_per_s - time.perf_counter()))
            tasks.append(asyncio.ensure_future(one(k)))
        await asyncio.gather(*tasks)
        return outcomes


RECONNECT_S = 15.0  # gRPC's reconnect backoff after the kill, on a busy machine


def served_again_within(target: str, book: SymbolBook, seconds: float) -> bool:
    """Whether one transmission at a time is answered OK within ``seconds`` (the channel's
    connection to the restarted edge leaves its reconnect backoff)."""

    async def probe() -> bool:
        async with grpc.aio.insecure_channel(target) as channel:
            stub = pb_grpc.ChannelStub(channel)
            give_up = time.perf_counter() + seconds
            while time.perf_counter() < give_up:
                try:
                    await stub.Transmit(transmission(book, 0), timeout=2.0)
                    return True
                except grpc.aio.AioRpcError:
                    await asyncio.sleep(0.2)
            return False

    return asyncio.run(probe())


def test_an_edge_killed_mid_batch_fails_only_what_was_in_flight(quick_model_dir, book) -> None:
    """Every call answered before the kill is served; every failure is UNAVAILABLE (503 at a
    device), none hangs or gets another status; once the edge is back, every call is served."""
    flags = ["--edge-in-flight", 1, "--deadline-s", 2, "--grace-s", 1]
    with running_stack(quick_model_dir, services=["edge", "channel"], edge_flags=EDGE_FLAGS,
                       channel_flags=flags, start_timeout_s=START_TIMEOUT_S) as stack:  # fmt: skip

        async def kill_during_stream() -> tuple[list, float]:
            loop = asyncio.get_running_loop()
            start = time.perf_counter()
            load = asyncio.ensure_future(stream(stack.channel_target, book, 2.0, 300.0))
            await asyncio.sleep(1.0)
            killed_at = time.perf_counter() - start
            stack.procs["edge"].proc.kill()
            await loop.run_in_executor(None, stack.procs["edge"].proc.wait)
            return await load, killed_at

        outcomes, kill_s = asyncio.run(kill_during_stream())
        before = [code for done_s, code in outcomes if done_s < kill_s]
        failed = [code for _, code in outcomes if code != grpc.StatusCode.OK]
        assert len(before) >= 50 and set(before) == {grpc.StatusCode.OK}
        assert failed and set(failed) == {grpc.StatusCode.UNAVAILABLE}, set(failed)
        stack.start_service("edge")  # back on the same port: the channel reconnects
        assert served_again_within(stack.channel_target, book, RECONNECT_S)
        after = asyncio.run(stream(stack.channel_target, book, 1.0, 100.0))
        assert {code for _, code in after} == {grpc.StatusCode.OK}
