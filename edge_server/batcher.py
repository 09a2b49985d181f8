"""Micro-batching: gather requests for up to ``max_delay_s`` and run one batched call."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any


class QueueFullError(RuntimeError):
    """The batching queue is at capacity (the caller should back off)."""


@dataclass
class BatchResult:
    value: Any
    queue_s: float  # time from submit to the start of the batched call (s)
    run_s: float  # duration of the batched call (s)
    batch_size: int


@dataclass
class _Pending:
    item: Any
    submitted: float
    future: Future = field(default_factory=Future)


_STOP = object()


class MicroBatcher:
    """Worker threads take up to ``max_batch_size`` items, waiting at most ``max_delay_s``
    after the first, and call ``run_batch(items) -> results`` once per batch.

    ``max_batch_size=1`` turns batching off (each request is its own call).
    """

    def __init__(
        self,
        run_batch: Callable[[Sequence[Any]], Sequence[Any]],
        max_batch_size: int = 32,
        max_delay_s: float = 0.002,
        workers: int = 1,
        max_queue: int = 1024,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        if max_delay_s < 0:
            raise ValueError(f"max_delay_s must be >= 0, got {max_delay_s}")
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_s
        self.on_batch = on_batch
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._threads = [
            threading.Thread(target=self._work, name=f"batcher-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, item: Any) -> Future:
        """Queue one item; the future resolves to a :class:`BatchResult`."""
        pending = _Pending(item, time.perf_counter())
        try:
            self._queue.put_nowait(pending)
        except queue.Full:
            raise QueueFullError(
                f"edge queue full ({self._queue.maxsize} requests waiting)"
            ) from None
        return pending.future

    def close(self, timeout_s: float = 5.0) -> None:
        """Finish queued work, then stop the workers."""
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(timeout_s)

    def _gather(self, first: _Pending) -> tuple[list[_Pending], bool]:
        batch = [first]
        deadline = time.perf_counter() + self.max_delay_s
        while len(batch) < self.max_batch_size:
            remaining = deadline - time.perf_counter()
            try:
                nxt = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else (self._queue.get_nowait())
                )
            except queue.Empty:
                break
            if nxt is _STOP:
                return batch, True
            batch.append(nxt)
        return batch, False

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch, stop = self._gather(first)
            start = time.perf_counter()
            try:
                values = list(self.run_batch([p.item for p in batch]))
                if len(values) != len(batch):
                    raise RuntimeError(f"batch returned {len(values)} results for {len(batch)}")
            except Exception as exc:  # every waiter gets the error, the worker lives on
                for pending in batch:
                    pending.future.set_exception(exc)
            else:
                run_s = time.perf_counter() - start
                for pending, value in zip(batch, values, strict=True):
                    pending.future.set_result(
                        BatchResult(value, start - pending.submitted, run_s, len(batch))
                    )
            if self.on_batch is not None:
                self.on_batch(len(batch))
            if stop:
                return
