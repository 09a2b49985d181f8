"""EdgeDecoder with a multi-link model, without sockets: the K links of one observation meet
in a group, decode once (all arrived, or the group timeout with the missing links zeroed),
every link gets the decision; groups interleave; bad group fields are INVALID_ARGUMENT."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time

import grpc
import numpy as np
import pytest

from edge_server.service import EdgeDecoder
from shared.rpc import coinference_pb2 as pb
from shared.service.errors import ServiceError
from tests.edge_server.test_edge_service import D, make_manifest, running, transmission

K = 2
TIMEOUT_S = 0.3


def multi_manifest(k: int = K):
    views = [{"top": 0, "left": 2 * i, "height": 4, "width": 2} for i in range(k)]
    links = [{"index": i, "encoder": f"encoder-link{i}.onnx", "view": views[i]} for i in range(k)]
    return dataclasses.replace(make_manifest(), raw={"multi_link": {"n_links": k, "links": links}})


class FusionFake:
    """(received [N, K, d], beta, snr_db, present [N, K]) -> probabilities over 3 classes:
    the class is argmax of the summed features of the present links; records its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[np.ndarray, np.ndarray]] = []
        self.lock = threading.Lock()

    def __call__(self, received, beta, snr_db, present):
        with self.lock:
            self.calls.append((received.copy(), present.copy()))
        assert np.all(received[present == 0] == 0.0)  # missing links arrive as zeros
        logits = (received * present[:, :, None]).sum(axis=1)[:, :3]
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


def link_tx(group: str, link: int, symbols, **overrides) -> pb.Transmission:
    fields = dict(group_id=group, link_index=link, n_links=K, symbols=symbols)
    return transmission(**(fields | overrides))


def multi(**kwargs):
    fake = FusionFake()
    ctx = running(fake, multi_manifest(), group_timeout_s=TIMEOUT_S, **kwargs)
    return fake, ctx


async def test_a_full_group_decodes_once_and_answers_every_link() -> None:
    fake, ctx = multi()
    async with ctx as edge:
        replies = await asyncio.gather(
            edge.decode(link_tx("g1", 0, [2.0, 0.0, 0.0])),
            edge.decode(link_tx("g1", 1, [0.0, 0.0, 0.5])),
        )
    assert len(fake.calls) == 1
    received, present = fake.calls[0]
    np.testing.assert_array_equal(present, [[1.0, 1.0]])
    assert received.shape == (1, K, D) and received[0, 1, 2] == 0.5
    assert [r.link_index for r in replies] == [0, 1]
    for reply in replies:
        assert reply.group_id == "g1" and reply.n_links == K and reply.label == 0
        assert not reply.partial and list(reply.missing_links) == []
    assert list(replies[0].probabilities) == list(replies[1].probabilities)


async def test_a_missing_link_is_zeroed_after_the_group_timeout() -> None:
    fake, ctx = multi()
    async with ctx as edge:
        start = time.perf_counter()
        reply = await edge.decode(link_tx("g1", 1, [0.0, 0.0, 3.0]))
        waited = time.perf_counter() - start
    assert reply.partial and list(reply.missing_links) == [0]
    assert reply.label == 2 and TIMEOUT_S <= waited < TIMEOUT_S + 0.5
    assert edge.metrics.groups.labels(outcome="partial")._value.get() == 1
    assert reply.group_wait_s == pytest.approx(waited, abs=0.05)
    np.testing.assert_array_equal(fake.calls[0][1], [[0.0, 1.0]])


async def test_a_slow_link_holds_up_only_its_own_group() -> None:
    fake, ctx = multi()
    async with ctx as edge:
        stuck = asyncio.ensure_future(edge.decode(link_tx("slow", 0, [1.0])))  # link 1 never comes
        await asyncio.sleep(0.02)
        start = time.perf_counter()
        fast = await asyncio.gather(edge.decode(link_tx("fast", 1, [0.0, 1.0])),
                                    edge.decode(link_tx("fast", 0, [0.0, 1.0])))  # fmt: skip
        fast_s = time.perf_counter() - start
        assert not stuck.done()
        late = await stuck
    assert fast_s < TIMEOUT_S / 2 and not any(r.partial for r in fast)
    assert late.partial and list(late.missing_links) == [1]


async def test_a_link_arriving_after_its_group_was_decided_gets_that_decision() -> None:
    _, ctx = multi()
    async with ctx as edge:
        first = await edge.decode(link_tx("g1", 0, [1.0]))
        late = await edge.decode(link_tx("g1", 1, [0.0, 5.0]))
    assert list(late.missing_links) == [1] and late.link_index == 1
    assert list(late.probabilities) == list(first.probabilities)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"group_id": ""}, "needs a group_id"),
        ({"group_id": "x" * 129}, "bad group_id"),
        ({"group_id": "bad\nid"}, "bad group_id"),
        ({"n_links": 3}, "n_links=3"),
        ({"n_links": 0}, "n_links=0"),
        ({"link_index": 2}, "link_index=2"),
    ],
)
async def test_bad_group_fields_are_invalid_argument(overrides, message) -> None:
    _, ctx = multi()
    async with ctx as edge:
        with pytest.raises(ServiceError) as err:
            await edge.decode(link_tx("g1", 0, [1.0], **overrides))
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert message in err.value.message


async def test_the_same_link_twice_in_one_group_is_invalid_argument() -> None:
    _, ctx = multi()
    async with ctx as edge:
        first = asyncio.ensure_future(edge.decode(link_tx("g1", 0, [1.0])))
        await asyncio.sleep(0.01)
        with pytest.raises(ServiceError) as err:
            await edge.decode(link_tx("g1", 0, [1.0]))
        assert (await first).partial
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and "already sent" in str(err.value)


async def test_single_device_edge_refuses_a_group_of_several_links() -> None:
    from tests.edge_server.test_edge_service import LinearSoftmaxDecoder

    async with running(LinearSoftmaxDecoder()) as edge:
        with pytest.raises(ServiceError) as err:
            await edge.decode(transmission(group_id="g", link_index=0, n_links=2))
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_info_reports_links_and_group_timeout() -> None:
    edge = EdgeDecoder(FusionFake(), multi_manifest(), group_timeout_s=0.25)
    info = edge.info()
    assert (info.n_links, info.group_timeout_s) == (K, 0.25)


async def test_interleaved_groups_each_get_their_own_decision() -> None:
    fake, ctx = multi()
    order = [(g, k) for g in range(12) for k in range(K)]
    np.random.default_rng(0).shuffle(order)

    def symbols(g: int, k: int) -> list[float]:  # group g's features point at class g % 3
        out = [0.0, 0.0, 0.0]
        out[g % 3] = 1.0 + k
        return out

    async with ctx as edge:
        replies = await asyncio.gather(
            *(edge.decode(link_tx(f"g{g}", k, symbols(g, k), request_id=f"r{g}-{k}"))
              for g, k in order)
        )  # fmt: skip
    for (g, k), reply in zip(order, replies, strict=True):
        assert (reply.group_id, reply.link_index, reply.request_id) == (f"g{g}", k, f"r{g}-{k}")
        assert reply.label == g % 3 and not reply.partial
    assert sum(len(received) for received, _ in fake.calls) == 12  # one decode per group
