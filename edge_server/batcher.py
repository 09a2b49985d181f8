"""Adaptive batching on asyncio (Triton's dynamic batcher with no queue delay is the model).

An idle decoder runs a request at once; whatever arrives while a batch runs forms the next
batch, up to ``max_batch_size``. ``max_queue_delay_s`` > 0 adds an optional wait for a batch
to fill. The batched call runs in one decoder thread, so the event loop stays free; with
``inline_max`` > 0 a batch of at most that many items runs on the event loop itself instead
(no thread hop, no hand-back: cheaper when one decoder call takes microseconds, as a small
model on the CPU does).

A caller that gives up (its deadline passed, or its RPC was cancelled) never affects anyone
else: its request is dropped before the batch is formed, or its result is discarded.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shared.service.checks import check_at_least

log = logging.getLogger(__name__)


class QueueFullError(RuntimeError):
    """The batching queue is at capacity (the caller should back off)."""


class DeadlineExpired(TimeoutError):
    """The caller's deadline passed before its batch finished."""


class WorkerStopped(RuntimeError):
    """The batcher's worker is not running (not started, closed or crashed)."""


@dataclass
class BatchResult:
    value: Any
    queue_s: float  # time from submit to the start of the batched call (s)
    run_s: float  # duration of the batched call (s)
    batch_size: int


@dataclass
class _Pending:
    item: Any
    submitted: float  # time.perf_counter() at submit
    deadline: float | None  # time.perf_counter() after which the caller has given up
    future: asyncio.Future


class DecoderThread:
    """One thread that runs submitted calls in order, for one event loop.

    Handing the result back to the loop is the thread's last step before it waits for the
    next call, so the woken event loop does not then wait for the GIL while the thread
    does its bookkeeping (``ThreadPoolExecutor`` does that after the hand-back; at batch 1
    it cost about 0.04 ms per request, docs/SERVING.md).
    """

    def __init__(self, name: str = "decoder") -> None:
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def run(self, function: Callable[..., Any], *args: Any) -> asyncio.Future:
        """``function(*args)`` in the thread; its result (or exception) in the future."""
        if self._closed or not self._thread.is_alive():
            raise WorkerStopped("decoder thread stopped")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._calls.put((loop, future, function, args))
        return future

    def shutdown(self, wait: bool = True) -> None:
        """Stop after the calls already submitted; ``wait`` joins the thread."""
        self._closed = True
        self._calls.put(None)
        if wait:
            self._thread.join()

    def _serve(self) -> None:
        calls = self._calls
        while (call := calls.get()) is not None:
            loop, future, function, args = call
            call = None
            try:
                outcome, value = _resolve, function(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                outcome, value = _reject, exc
            try:
                loop.call_soon_threadsafe(outcome, future, value)
            except RuntimeError:  # the loop closed meanwhile: nobody waits
                pass
            loop = future = function = args = value = None


def _resolve(future: asyncio.Future, value: Any) -> None:
    if not future.done():  # its caller may have given up
        future.set_result(value)


def _reject(future: asyncio.Future, error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


# on_batch(batch_size, error): awaited after every batched call; error is None on success.
BatchHook = Callable[[int, BaseException | None], Awaitable[None]]


class AdaptiveBatcher:
    """One asyncio worker task takes what is queued (up to ``max_batch_size``) and calls
    ``run_batch(items) -> results`` in a single :class:`DecoderThread`, one batch at a time.

    ``max_batch_size=1`` turns batching off; batches of at most ``inline_max`` items
    (0 = none) run on the event loop instead of the thread. Call :meth:`start` inside the
    event loop.
    """

    def __init__(
        self,
        run_batch: Callable[[Sequence[Any]], Sequence[Any]],
        max_batch_size: int = 32,
        max_queue_delay_s: float = 0.0,
        max_queue: int = 1024,
        on_batch: BatchHook | None = None,
        inline_max: int = 0,
    ) -> None:
        check_at_least("max_batch_size", max_batch_size, 1)
        check_at_least("max_queue_delay_s", max_queue_delay_s, 0)
        check_at_least("inline_max", inline_max, 0)
        self.inline_max = inline_max
        self.run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_queue_delay_s = max_queue_delay_s
        self.max_queue = max_queue
        self.on_batch = on_batch
        self.worker: asyncio.Task | None = None
        self._queue: asyncio.Queue[_Pending] | None = None
        self._arrived: asyncio.Event | None = None
        self._decoder: DecoderThread | None = None

    # -- life cycle ----------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker task and the decoder thread (inside a running event loop)."""
        if self.worker is not None:
            raise RuntimeError("batcher already started")
        self._queue = asyncio.Queue(self.max_queue)
        self._arrived = asyncio.Event()
        self._decoder = DecoderThread("decoder")
        self.worker = asyncio.get_running_loop().create_task(self._work(), name="batcher")

    @property
    def running(self) -> bool:
        return self.worker is not None and not self.worker.done()

    async def close(self) -> None:
        """Stop the worker, fail what is still queued, wait for the decoder thread."""
        if self.worker is not None:
            self.worker.cancel()
            await asyncio.gather(self.worker, return_exceptions=True)
        if self._queue is not None:
            while not self._queue.empty():
                pending = self._queue.get_nowait()
                _fail(pending, WorkerStopped("edge is shutting down"))
        if self._decoder is not None:
            self._decoder.shutdown(wait=True)

    async def run_in_decoder_thread(self, function: Callable[[], Any]) -> Any:
        """Run ``function()`` in the decoder thread, between batches (e.g. a health probe)."""
        if self._decoder is None:
            raise WorkerStopped("batcher not started")
        return await self._decoder.run(function)

    # -- callers -------------------------------------------------------------------------
    async def submit(self, item: Any, timeout_s: float | None = None) -> BatchResult:
        """Queue one item and wait for its :class:`BatchResult` (at most ``timeout_s``).

        Raises :class:`QueueFullError`, :class:`DeadlineExpired`, :class:`WorkerStopped`, or
        the exception ``run_batch`` raised for this item's batch.
        """
        if not self.running:
            raise WorkerStopped("decoder worker is not running")
        now = time.perf_counter()
        deadline = None if timeout_s is None else now + timeout_s
        pending = _Pending(item, now, deadline, asyncio.get_running_loop().create_future())
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            raise QueueFullError(f"edge queue full ({self.max_queue} requests waiting)") from None
        self._arrived.set()
        if timeout_s is None:
            return await pending.future
        # a timer fails the future at the deadline (a cancelled caller cancels it); either
        # way the worker skips or discards it. Lighter than asyncio.wait_for's extra waiter.
        expiry = asyncio.get_running_loop().call_later(
            max(timeout_s, 0.0), _expire, pending.future, timeout_s
        )
        try:
            return await pending.future
        finally:
            expiry.cancel()

    async def submit_many(
        self, items: Sequence[Any], timeout_s: float | None = None
    ) -> list[BatchResult | BaseException]:
        """:meth:`submit` for several items at once (they may share a batch) with one timer
        for all: each item's :class:`BatchResult`, or the exception :meth:`submit` would
        raise for it (an item the full queue cannot take fails alone)."""
        if not self.running:
            return [WorkerStopped("decoder worker is not running") for _ in items]
        loop = asyncio.get_running_loop()
        now = time.perf_counter()
        deadline = None if timeout_s is None else now + timeout_s
        futures = []
        for item in items:
            pending = _Pending(item, now, deadline, loop.create_future())
            try:
                self._queue.put_nowait(pending)
            except asyncio.QueueFull:
                _fail(pending, QueueFullError(f"edge queue full ({self.max_queue} requests "
                                              "waiting)"))  # fmt: skip
            futures.append(pending.future)
        self._arrived.set()
        expiry = None
        if timeout_s is not None:
            expiry = loop.call_later(max(timeout_s, 0.0), _expire_all, futures, timeout_s)
        try:
            return [await _outcome(future) for future in futures]
        except asyncio.CancelledError:  # the caller gave up: the worker skips the rest
            _abandon(futures)
            raise
        finally:
            if expiry is not None:
                expiry.cancel()

    # -- worker --------------------------------------------------------------------------
    async def _run(self, live: list[_Pending]) -> Sequence[Any]:
        """``run_batch`` of the live items: on the event loop for a batch of at most
        ``inline_max``, else in the decoder thread."""
        items = [pending.item for pending in live]
        if len(items) <= self.inline_max:
            return self.run_batch(items)
        return await self._decoder.run(self.run_batch, items)

    async def _gather(self) -> list[_Pending]:
        """Wait for one request, then take what else is queued (waiting the optional delay)."""
        batch = [await self._queue.get()]
        until = batch[0].submitted + self.max_queue_delay_s
        while len(batch) < self.max_batch_size:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = until - time.perf_counter()
            if remaining <= 0:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                break
        return batch

    def _live(self, batch: list[_Pending]) -> list[_Pending]:
        """Drop requests whose caller gave up or whose deadline already passed."""
        now = time.perf_counter()
        live = []
        for pending in batch:
            if pending.future.done():  # cancelled by its caller
                continue
            if pending.deadline is not None and now >= pending.deadline:
                _fail(pending, DeadlineExpired("deadline passed while queued"))
                continue
            live.append(pending)
        return live

    async def _work(self) -> None:
        while True:
            live = self._live(await self._gather())
            if not live:
                continue
            start = time.perf_counter()
            error: BaseException | None = None
            try:
                values = list(await self._run(live))
                if len(values) != len(live):
                    raise RuntimeError(f"batch returned {len(values)} results for {len(live)}")
            except asyncio.CancelledError:
                for pending in live:
                    _fail(pending, WorkerStopped("edge is shutting down"))
                raise
            except Exception as exc:  # only this batch fails; the worker lives on
                error = exc
                for pending in live:
                    _fail(pending, exc)
            else:
                run_s = time.perf_counter() - start
                for pending, value in zip(live, values, strict=True):
                    if not pending.future.done():
                        pending.future.set_result(
                            BatchResult(value, start - pending.submitted, run_s, len(live))
                        )
            if self.on_batch is not None:
                await asyncio.sleep(0)  # the callers answer first; the hook is bookkeeping
                try:
                    await self.on_batch(len(live), error)
                except Exception:
                    log.exception("on_batch hook failed")


def _expire(future: asyncio.Future, timeout_s: float) -> None:
    _reject(future, DeadlineExpired(f"decode did not finish in {timeout_s:.3g} s"))


def _expire_all(futures: list[asyncio.Future], timeout_s: float) -> None:
    for future in futures:
        _expire(future, timeout_s)


async def _outcome(future: asyncio.Future) -> BatchResult | BaseException:
    """The future's result, or its exception (a caller's cancellation still raises)."""
    try:
        return await future
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return exc


def _abandon(futures: list[asyncio.Future]) -> None:
    """Cancel what is still waiting; mark the exceptions of the others as seen."""
    for future in futures:
        if not future.done():
            future.cancel()
        elif not future.cancelled():
            future.exception()


def _fail(pending: _Pending, error: BaseException) -> None:
    _reject(pending.future, error)
