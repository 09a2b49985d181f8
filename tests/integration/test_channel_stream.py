"""TransmitStream with real processes on loopback: an edge serving the session's quick model
and a channel, real encoder symbols of real test images. A stream answers each image as
unary Transmit does (the same noise, from the same seed, in the same order), matches its
replies by request_id, fails invalid items alone, and outlives an edge that is killed and
restarted under it."""

from __future__ import annotations

import asyncio
import time

import grpc
import numpy as np
import pytest

from shared.rpc import coinference_pb2 as pb
from shared.rpc import coinference_pb2_grpc as pb_grpc
from shared.service.errors import status_of
from tests.integration.test_channel_batching import (
    EDGE_FLAGS,
    N_IMAGES,
    START_TIMEOUT_S,
    send_all,
    transmission,
)
from tests.procs import running_stack
from tools.devices.symbols import SymbolBook

OK = grpc.StatusCode.OK
N_EXACT = 48  # images sent one at a time, unary then on a stream


@pytest.fixture(scope="module")
def book(quick_model_dir) -> SymbolBook:
    """The device's ONNX encoder run on real test images, at β = 1e-3."""
    return SymbolBook(quick_model_dir, np.array([1e-3]), N_IMAGES)


@pytest.fixture(scope="module")
def stack(quick_model_dir):
    flags = ["--edge-in-flight", 1, "--deadline-s", 2, "--grace-s", 1, "--seed", 3]
    with running_stack(quick_model_dir, services=["edge", "channel"], edge_flags=EDGE_FLAGS,
                       channel_flags=flags, start_timeout_s=START_TIMEOUT_S) as stack:  # fmt: skip
        yield stack


async def unary_one_by_one(target: str, transmissions) -> list[pb.InferenceReply]:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.ChannelStub(channel)
        return [await stub.Transmit(t, timeout=10) for t in transmissions]


async def stream_one_by_one(target: str, transmissions) -> list[pb.BatchItemReply]:
    """Each transmission written on one stream after the last one's reply came back."""
    async with grpc.aio.insecure_channel(target) as channel:
        call = pb_grpc.ChannelStub(channel).TransmitStream(timeout=30)
        items = []
        for t in transmissions:
            await call.write(t)
            items.append(await call.read())
        await call.done_writing()
        assert await call.read() == grpc.aio.EOF
        return items


async def stream_at_once(target: str, transmissions) -> dict[str, pb.BatchItemReply]:
    """Every transmission on one stream at once; the items by request id."""

    async def requests():
        for t in transmissions:
            yield t

    async with grpc.aio.insecure_channel(target) as channel:
        call = pb_grpc.ChannelStub(channel).TransmitStream(requests(), timeout=30)
        return {item.request_id: item async for item in call}


def test_a_stream_answers_as_unary_calls_do(stack, book) -> None:
    """Sent one at a time after a fresh start of the seeded channel, unary calls and a
    stream draw the same noise: the same probabilities. All at once (replies reordered),
    each image still gets its own answer."""
    target = stack.channel_target
    sent = [transmission(book, i, psnr_db=10.0) for i in range(N_EXACT)]
    stack.start_service("channel")  # a fresh RNG from --seed 3
    unary = asyncio.run(unary_one_by_one(target, sent))
    stack.start_service("channel")
    items = asyncio.run(stream_one_by_one(target, [transmission(book, i, psnr_db=10.0)
                                                   for i in range(N_EXACT)]))  # fmt: skip
    assert [i.code for i in items] == [0] * N_EXACT
    assert [i.request_id for i in items] == [t.request_id for t in sent]
    for item, reply in zip(items, unary, strict=True):
        assert item.reply.probabilities == pytest.approx(reply.probabilities, abs=1e-6)
        assert item.reply.label == reply.label and item.reply.csi.psnr_db == 10.0

    many = [transmission(book, i, psnr_db=40.0) for i in range(N_IMAGES)]
    replies = asyncio.run(send_all(target, many))
    streamed = asyncio.run(stream_at_once(target, many))
    assert sorted(streamed) == sorted(t.request_id for t in many)
    assert all(i.code == 0 and i.reply.request_id == rid for rid, i in streamed.items())
    labels = np.array([streamed[t.request_id].reply.label for t in many])
    agree = float(np.mean(labels == np.array([r.label for r in replies])))
    assert agree >= 0.97 and np.mean(labels == book.labels[:N_IMAGES]) >= 0.75


def test_invalid_items_on_a_stream_fail_alone(stack, book) -> None:
    sent = [transmission(book, i) for i in range(64)]
    sent[5] = transmission(book, 5, psnr_db=99.0)  # the channel refuses it
    sent[17] = transmission(book, 17, model_id="another-model")  # the edge refuses the item
    sent[40] = transmission(book, 40, beta=5.0)  # outside the trained β range
    sent[50] = transmission(book, 50, symbols=[])  # nothing to decode
    items = asyncio.run(stream_at_once(stack.channel_target, sent))
    codes = {rid: status_of(i.code) for rid, i in items.items() if i.code}
    assert codes == {
        "img-5": grpc.StatusCode.INVALID_ARGUMENT,
        "img-17": grpc.StatusCode.FAILED_PRECONDITION,
        "img-40": grpc.StatusCode.INVALID_ARGUMENT,
        "img-50": grpc.StatusCode.INVALID_ARGUMENT,
    }
    assert len(items) == 64 and all(items[rid].message for rid in codes)


RESTART_S = 120.0  # edge start-up plus gRPC's reconnect backoff, on a busy machine


def test_a_stream_outlives_an_edge_killed_and_restarted(stack, book) -> None:
    """One stream at 100 transmissions/s: the edge is SIGKILLed after 1 s and restarted.
    Items answered before the kill are served, every failure is UNAVAILABLE, and the same
    stream is served again once the edge is back."""

    async def run() -> tuple[list, float, float]:
        loop = asyncio.get_running_loop()
        outcomes: list[tuple[float, grpc.StatusCode]] = []
        stop = asyncio.Event()
        start = time.perf_counter()

        async def paced():
            k = 0
            while not stop.is_set():
                yield transmission(book, k % N_IMAGES)
                k += 1
                await asyncio.sleep(max(0.0, start + k / 100 - time.perf_counter()))

        async with grpc.aio.insecure_channel(stack.channel_target) as channel:
            call = pb_grpc.ChannelStub(channel).TransmitStream(paced())

            async def read() -> None:
                async for item in call:
                    outcomes.append((time.perf_counter() - start, status_of(item.code)))
                    served_again = restarted_at and outcomes[-1][1] == OK
                    if served_again and sum(c == OK for t, c in outcomes if t > restarted_at) > 50:
                        stop.set()

            restarted_at = 0.0
            reader = asyncio.ensure_future(read())
            await asyncio.sleep(1.0)
            killed_at = time.perf_counter() - start
            await loop.run_in_executor(None, stack.kill, "edge")
            await loop.run_in_executor(None, stack.start_service, "edge")
            restarted_at = time.perf_counter() - start
            await asyncio.wait_for(reader, RESTART_S)
        return outcomes, killed_at, restarted_at

    outcomes, killed_at, restarted_at = asyncio.run(run())
    before = {code for t, code in outcomes if t < killed_at}
    failed = [code for _, code in outcomes if code != OK]
    assert sum(t < killed_at for t, _ in outcomes) >= 50 and before == {OK}
    assert failed and set(failed) == {grpc.StatusCode.UNAVAILABLE}, set(failed)
    assert outcomes[-1][1] == OK and outcomes[-1][0] > restarted_at
