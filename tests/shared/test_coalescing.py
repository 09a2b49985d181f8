"""The coalescing rule the device and the channel share (shared/service/coalescing.py),
against a stand-in sender whose calls take a fixed time."""

from __future__ import annotations

import asyncio

import pytest

from shared.service.coalescing import Coalescer


class Sender:
    """Answers item * 10 after ``delay_s``; items < 0 fail alone; ``fail_batch`` fails whole
    batch calls; records every call's items."""

    def __init__(self, delay_s: float = 0.02, fail_batch: bool = False) -> None:
        self.delay_s, self.fail_batch = delay_s, fail_batch
        self.calls: list[list[int]] = []
        self.timeouts: list[float] = []

    async def one(self, item: int, timeout_s: float) -> int:
        self.calls.append([item])
        self.timeouts.append(timeout_s)
        await asyncio.sleep(self.delay_s)
        if item < 0:
            raise ValueError(f"item {item} refused")
        return item * 10

    async def batch(self, items: list[int], timeout_s: float) -> list:
        self.calls.append(list(items))
        self.timeouts.append(timeout_s)
        await asyncio.sleep(self.delay_s)
        if self.fail_batch:
            raise ConnectionError("peer died mid-batch")
        return [ValueError(f"item {i} refused") if i < 0 else i * 10 for i in items]


async def submit_all(coalescer: Coalescer, items, timeout_s: float = 5.0) -> list:
    return await asyncio.gather(
        *(coalescer.submit(item, timeout_s) for item in items), return_exceptions=True
    )


def test_an_idle_sender_sends_each_item_alone_at_once() -> None:
    sender = Sender(delay_s=0.0)
    coalescer = Coalescer(sender.one, sender.batch, max_batch=8, max_in_flight=2)

    async def one_by_one() -> list[int]:
        return [await coalescer.submit(i, 1.0) for i in range(5)]

    assert asyncio.run(one_by_one()) == [0, 10, 20, 30, 40]
    assert sender.calls == [[0], [1], [2], [3], [4]]


def test_items_that_arrive_while_calls_are_out_go_together() -> None:
    sender = Sender()
    coalescer = Coalescer(sender.one, sender.batch, max_batch=8, max_in_flight=2)
    results = asyncio.run(submit_all(coalescer, range(30)))
    assert results == [i * 10 for i in range(30)]
    # two go at once, the other 28 in batches of at most 8, never more than 2 calls out
    assert [len(c) for c in sender.calls[:2]] == [1, 1]
    assert all(len(c) <= 8 for c in sender.calls) and len(sender.calls) == 2 + 4
    assert sorted(i for c in sender.calls for i in c) == list(range(30))


def test_an_invalid_item_fails_alone() -> None:
    sender = Sender()
    coalescer = Coalescer(sender.one, sender.batch, max_batch=16, max_in_flight=1)
    items = [3, 4, -5, 6, -7, 8]
    results = asyncio.run(submit_all(coalescer, items))
    assert [r for r in results if not isinstance(r, Exception)] == [30, 40, 60, 80]
    failed = [str(r) for r in results if isinstance(r, Exception)]
    assert failed == ["item -5 refused", "item -7 refused"]


def test_a_failed_batch_call_fails_only_the_items_it_carried() -> None:
    sender = Sender(fail_batch=True)
    coalescer = Coalescer(sender.one, sender.batch, max_batch=4, max_in_flight=1)
    results = asyncio.run(submit_all(coalescer, range(9)))
    assert results[0] == 0  # went alone, before the others arrived
    batches = sender.calls[1:]
    assert [len(b) for b in batches] == [4, 4]
    assert all(isinstance(r, ConnectionError) for r in results[1:])


def test_a_waiting_item_times_out_at_its_own_deadline_and_is_never_sent() -> None:
    sender = Sender(delay_s=0.3)
    coalescer = Coalescer(sender.one, sender.batch, max_batch=8, max_in_flight=1)

    async def run() -> list:
        first = asyncio.ensure_future(coalescer.submit(1, 5.0))
        await asyncio.sleep(0.01)  # the first call is out: the next ones wait
        short = asyncio.ensure_future(coalescer.submit(2, 0.05))
        long = asyncio.ensure_future(coalescer.submit(3, 5.0))
        return await asyncio.gather(first, short, long, return_exceptions=True)

    first, short, long = asyncio.run(run())
    assert first == 10 and long == 30 and isinstance(short, TimeoutError)
    assert sender.calls == [[1], [3]]  # the expired item was skipped
    assert 4.0 < sender.timeouts[1] <= 5.0  # the batch's call gets what is left of 5 s


def test_close_fails_waiting_and_in_flight_callers_at_once() -> None:
    sender = Sender(delay_s=10.0)
    coalescer = Coalescer(sender.one, sender.batch, max_batch=8, max_in_flight=1,
                          closed_error=lambda: ConnectionAbortedError("stopping"))  # fmt: skip

    async def run() -> tuple[list, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        first = asyncio.ensure_future(coalescer.submit(1, 30.0))
        await asyncio.sleep(0.01)
        second = asyncio.ensure_future(coalescer.submit(2, 30.0))
        third = asyncio.ensure_future(coalescer.submit(3, 30.0))
        await asyncio.sleep(0.01)
        await coalescer.close()
        second_third = await asyncio.gather(second, third, return_exceptions=True)
        first.cancel()  # the direct call is its caller's own coroutine
        return second_third, loop.time() - start

    (second, third), elapsed_s = asyncio.run(run())
    assert isinstance(second, ConnectionAbortedError) and isinstance(third, ConnectionAbortedError)
    assert elapsed_s < 1.0
    with pytest.raises(ConnectionAbortedError):
        asyncio.run(coalescer.submit(4, 1.0))


def test_a_batch_reply_of_the_wrong_length_fails_every_item() -> None:
    async def short_batch(items, timeout_s):
        await asyncio.sleep(0.01)
        return [1]

    sender = Sender()
    coalescer = Coalescer(sender.one, short_batch, max_batch=8, max_in_flight=1)
    results = asyncio.run(submit_all(coalescer, range(4)))
    assert results[0] == 0
    assert all(isinstance(r, RuntimeError) and "answered 1 items for 3" in str(r)
               for r in results[1:])  # fmt: skip


def test_bad_limits_are_refused() -> None:
    sender = Sender()
    with pytest.raises(ValueError, match="max_batch and max_in_flight must be >= 1"):
        Coalescer(sender.one, sender.batch, max_batch=0)


def test_with_a_delay_items_wait_for_others_until_the_timer_or_a_full_batch() -> None:
    sender = Sender(delay_s=0.0)
    coalescer = Coalescer(sender.one, sender.batch, max_batch=3, max_in_flight=2,
                          max_delay_s=0.1)  # fmt: skip

    async def run() -> tuple[list, list[float]]:
        loop = asyncio.get_running_loop()
        start, done_at = loop.time(), []

        async def submit(item: int, after_s: float):
            await asyncio.sleep(after_s)
            result = await coalescer.submit(item, 5.0)
            done_at.append(loop.time() - start)
            return result

        # 1, 2, 3 fill a batch at once; 4 and 5 wait for the timer (0.1 s after 4 came)
        results = await asyncio.gather(*(submit(i, 0.01 * (i > 3)) for i in (1, 2, 3, 4, 5)))
        return results, sorted(done_at)

    results, done_at = asyncio.run(run())
    assert results == [10, 20, 30, 40, 50]
    assert sender.calls == [[1, 2, 3], [4, 5]]
    assert done_at[2] < 0.05 and 0.1 <= done_at[4] < 0.3


def test_a_delay_outside_zero_to_one_second_is_refused() -> None:
    sender = Sender()
    with pytest.raises(ValueError, match="max_delay_s must be within"):
        Coalescer(sender.one, sender.batch, max_delay_s=-0.001)
