"""AdaptiveBatcher without sockets: adaptive batches, expired and cancelled callers, failures."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from edge_server.batcher import AdaptiveBatcher, DeadlineExpired, WorkerStopped


class Recorder:
    """run_batch that records each batch, sleeps ``delay_s`` and echoes the items."""

    def __init__(self, delay_s: float = 0.0, fail_on=None) -> None:
        self.delay_s = delay_s
        self.fail_on = fail_on
        self.batches: list[list] = []
        self.running = threading.Event()

    def __call__(self, items):
        self.batches.append(list(items))
        self.running.set()
        time.sleep(self.delay_s)
        if self.fail_on is not None and self.fail_on in items:
            raise RuntimeError(f"bad item {self.fail_on}")
        return [f"out-{item}" for item in items]


@asynccontextmanager
async def running(batcher: AdaptiveBatcher) -> AsyncIterator[AdaptiveBatcher]:
    """The batcher started, and closed on the way out whatever happened."""
    batcher.start()
    try:
        yield batcher
    finally:
        await batcher.close()


async def submitted_and_running(
    batcher: AdaptiveBatcher, recorder: Recorder, item
) -> asyncio.Future:
    """Submit ``item`` and hand back its task once its batch is in the decoder."""
    task = asyncio.ensure_future(batcher.submit(item))
    while not recorder.running.is_set():
        await asyncio.sleep(0.001)
    return task


async def test_idle_request_runs_at_once() -> None:
    async with running(AdaptiveBatcher(Recorder(), max_batch_size=32)) as batcher:
        start = time.perf_counter()
        result = await batcher.submit("a", timeout_s=1.0)
        elapsed = time.perf_counter() - start
    assert result.value == "out-a" and result.batch_size == 1
    assert result.queue_s < 0.01 and elapsed < 0.1  # no batching window to wait out


async def test_requests_arriving_during_a_batch_form_the_next_batch() -> None:
    recorder = Recorder(delay_s=0.05)
    async with running(AdaptiveBatcher(recorder, max_batch_size=32)) as batcher:
        first = await submitted_and_running(batcher, recorder, "a")
        later = [asyncio.ensure_future(batcher.submit(name)) for name in "bcde"]
        results = await asyncio.gather(first, *later)
    assert recorder.batches == [["a"], ["b", "c", "d", "e"]]
    assert [r.value for r in results] == ["out-a", "out-b", "out-c", "out-d", "out-e"]
    assert [r.batch_size for r in results] == [1, 4, 4, 4, 4]


async def test_next_batch_is_capped_at_max_batch_size() -> None:
    recorder = Recorder(delay_s=0.03)
    async with running(AdaptiveBatcher(recorder, max_batch_size=4)) as batcher:
        first = await submitted_and_running(batcher, recorder, 0)
        later = [asyncio.ensure_future(batcher.submit(i)) for i in range(1, 11)]
        await asyncio.gather(first, *later)
    assert [len(b) for b in recorder.batches] == [1, 4, 4, 2]


async def test_queue_delay_gathers_a_batch_when_set() -> None:
    recorder = Recorder()
    batcher = AdaptiveBatcher(recorder, max_batch_size=8, max_queue_delay_s=0.05)
    async with running(batcher):
        first = asyncio.ensure_future(batcher.submit("a"))
        await asyncio.sleep(0.01)
        second = asyncio.ensure_future(batcher.submit("b"))
        results = await asyncio.gather(first, second)
    assert recorder.batches == [["a", "b"]]
    assert results[0].queue_s >= 0.04


async def test_expired_request_is_dropped_without_touching_others() -> None:
    recorder = Recorder(delay_s=0.1)
    async with running(AdaptiveBatcher(recorder, max_batch_size=32)) as batcher:
        first = await submitted_and_running(batcher, recorder, "a")
        expired = asyncio.ensure_future(batcher.submit("late", timeout_s=0.01))
        patient = asyncio.ensure_future(batcher.submit("b", timeout_s=2.0))
        with pytest.raises(DeadlineExpired):
            await expired
        assert (await patient).value == "out-b" and (await first).value == "out-a"
    assert recorder.batches == [["a"], ["b"]]  # "late" never reached the decoder


async def test_cancelled_callers_never_break_the_worker() -> None:
    recorder = Recorder(delay_s=0.02)
    async with running(AdaptiveBatcher(recorder, max_batch_size=4)) as batcher:
        in_decoder = await submitted_and_running(batcher, recorder, "running")
        queued = [asyncio.ensure_future(batcher.submit(f"q{i}")) for i in range(6)]
        await asyncio.sleep(0)
        in_decoder.cancel()  # its batch is in the decoder: the result is discarded
        for task in queued:
            task.cancel()  # still queued: dropped before the next batch
        timed_out = [batcher.submit(f"t{i}", timeout_s=0.001) for i in range(20)]
        outcomes = await asyncio.gather(*timed_out, return_exceptions=True)
        assert all(isinstance(o, DeadlineExpired) for o in outcomes)
        after = await asyncio.gather(*(batcher.submit(f"ok{i}", timeout_s=1.0) for i in range(8)))
        assert [r.value for r in after] == [f"out-ok{i}" for i in range(8)]
        assert batcher.running
    decoded = [item for batch in recorder.batches for item in batch]
    assert not any(str(item).startswith("q") for item in decoded)


async def test_failure_fails_only_that_batch() -> None:
    recorder = Recorder(delay_s=0.03, fail_on="bad")
    errors = []

    async def on_batch(size, error):
        errors.append((size, error))

    async with running(AdaptiveBatcher(recorder, max_batch_size=8, on_batch=on_batch)) as batcher:
        bad = await submitted_and_running(batcher, recorder, "bad")
        good = asyncio.ensure_future(batcher.submit("good"))
        with pytest.raises(RuntimeError, match="bad item"):
            await bad
        assert (await good).value == "out-good"
        assert batcher.running
    assert [size for size, _ in errors] == [1, 1]
    assert isinstance(errors[0][1], RuntimeError) and errors[1][1] is None


async def test_submit_after_close_is_worker_stopped() -> None:
    async with running(AdaptiveBatcher(Recorder())) as batcher:
        pass
    with pytest.raises(WorkerStopped):
        await batcher.submit("a")


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_batch_size"):
        AdaptiveBatcher(Recorder(), max_batch_size=0)
    with pytest.raises(ValueError, match="max_queue_delay_s"):
        AdaptiveBatcher(Recorder(), max_queue_delay_s=-1)
    with pytest.raises(ValueError, match="inline_max"):
        AdaptiveBatcher(Recorder(), inline_max=-1)


class ThreadRecorder(Recorder):
    """A :class:`Recorder` that also notes the thread each batch ran in."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.threads: list[int] = []

    def __call__(self, items):
        self.threads.append(threading.get_ident())
        return super().__call__(items)


async def test_small_batches_run_inline_on_the_event_loop() -> None:
    """Batches of at most ``inline_max`` items run on the loop's thread, larger ones in the
    decoder thread; an inline failure fails only its own batch."""
    recorder = ThreadRecorder(fail_on="bad")
    loop_thread = threading.get_ident()
    async with running(AdaptiveBatcher(recorder, max_batch_size=8, inline_max=2)) as batcher:
        assert (await batcher.submit("a", timeout_s=1.0)).value == "out-a"
        pair = await asyncio.gather(batcher.submit("b"), batcher.submit("c"))
        four = await asyncio.gather(*(batcher.submit(name) for name in "defg"))
        with pytest.raises(RuntimeError, match="bad item"):
            await batcher.submit("bad")
        assert (await batcher.submit("h")).value == "out-h" and batcher.running
    assert [len(b) for b in recorder.batches] == [1, 2, 4, 1, 1]
    assert [r.batch_size for r in (*pair, *four)] == [2, 2, 4, 4, 4, 4]
    inline = [thread == loop_thread for thread in recorder.threads]
    assert inline == [True, True, False, True, True]


async def test_decoder_thread_runs_calls_in_order_and_hands_back_errors() -> None:
    from edge_server.batcher import DecoderThread

    thread = DecoderThread("test-decoder")
    seen: list[int] = []
    try:
        results = await asyncio.gather(*(thread.run(seen.append, i) for i in range(5)))
        assert seen == [0, 1, 2, 3, 4] and results == [None] * 5
        with pytest.raises(ZeroDivisionError):
            await thread.run(lambda: 1 / 0)
        # a caller that gave up: the call still runs, its result is dropped quietly
        gate = threading.Event()
        abandoned = thread.run(gate.wait, 5)
        abandoned.cancel()
        gate.set()
        assert await thread.run(lambda: "after") == "after"
    finally:
        thread.shutdown(wait=False)
    with pytest.raises(WorkerStopped):  # at once, even before the thread has ended
        thread.run(lambda: None)


async def test_submit_many_shares_a_batch_and_keeps_each_outcome() -> None:
    """Items submitted together join one batch under one timer; a full queue, a failed batch
    or the deadline is each item's own outcome, not an exception of the whole call."""
    recorder = Recorder(delay_s=0.05)
    async with running(AdaptiveBatcher(recorder, max_batch_size=8, max_queue=3)) as batcher:
        results = await batcher.submit_many(["a", "b"], timeout_s=1.0)
        assert [r.value for r in results] == ["out-a", "out-b"] and recorder.batches == [["a", "b"]]
        recorder.running.clear()
        busy = await submitted_and_running(batcher, recorder, "busy")
        outcomes = await batcher.submit_many(["c", "d", "e", "f"], timeout_s=0.01)
        await busy
    assert [type(o).__name__ for o in outcomes] == ["DeadlineExpired"] * 3 + ["QueueFullError"]
    assert recorder.batches == [["a", "b"], ["busy"]]  # the expired items never ran
    stopped = await batcher.submit_many(["g"])
    assert isinstance(stopped[0], WorkerStopped)


async def test_a_cancelled_submit_many_leaves_its_items_out() -> None:
    recorder = Recorder(delay_s=0.05)
    async with running(AdaptiveBatcher(recorder, max_batch_size=8)) as batcher:
        busy = await submitted_and_running(batcher, recorder, "busy")
        caller = asyncio.ensure_future(batcher.submit_many(["x", "y"], timeout_s=1.0))
        await asyncio.sleep(0.01)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        await busy
        assert (await batcher.submit("z")).value == "out-z"
    assert recorder.batches == [["busy"], ["z"]]
