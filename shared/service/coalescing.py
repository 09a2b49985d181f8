"""Coalescing of concurrent calls into batch calls: the one rule the device (toward the
channel) and the channel (toward the edge) both follow.

A caller's item is sent at once, from the caller's own coroutine, while fewer than
``max_in_flight`` calls are out and nothing waits; items that arrive meanwhile wait and
leave together, up to ``max_batch`` per call, as soon as a call returns. An idle sender
therefore adds no wait (Triton's dynamic batcher with no queue delay is the model, DESIGN
§8), and under load the per-call gRPC work is paid once per batch. Each item keeps its own
deadline (its caller stops waiting at it, and a sender skips an item whose caller has gone)
and its own outcome: ``send_batch`` answers one result or exception per item, and an
exception raised by the whole call is every item's outcome.

``max_delay_s`` > 0 is an option beside the rule (Triton's ``max_queue_delay``): an item
then waits up to that long for others, even while a call slot is free, unless a full batch
is ready first; fewer, larger calls for a bounded wait.

The coalescer holds no event loop of its own: futures and tasks belong to the loop that
submits, so one instance serves the loop it is used from.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# await send_one(item, timeout_s) -> result (raises the item's failure)
SendOne = Callable[[Item, float], Awaitable[Result]]
# await send_batch(items, timeout_s) -> one result or exception per item, in order (raises
# when the whole call failed: every item's outcome)
SendBatch = Callable[[list[Item], float], Awaitable[Sequence["Result | BaseException"]]]

MIN_TIMEOUT_S = 1e-3  # an item sent at its deadline still gets a call that can fail cleanly


@dataclass
class _Waiting(Generic[Item]):
    """An item waiting for a call (alone or in a batch)."""

    item: Item
    deadline: float  # loop.time() after which its caller has given up
    future: asyncio.Future


class Coalescer(Generic[Item, Result]):
    """Sends items through ``send_one`` / ``send_batch`` by the rule of the module docstring.

    ``closed_error()`` is what waiting callers get when :meth:`close` runs."""

    def __init__(
        self,
        send_one: SendOne,
        send_batch: SendBatch,
        max_batch: int = 32,
        max_in_flight: int = 2,
        closed_error: Callable[[], BaseException] = lambda: RuntimeError("coalescer closed"),
        max_delay_s: float = 0.0,
    ) -> None:
        if max_batch < 1 or max_in_flight < 1:
            raise ValueError(
                f"max_batch and max_in_flight must be >= 1, got {max_batch}, {max_in_flight}"
            )
        if not 0.0 <= max_delay_s <= 1.0:
            raise ValueError(f"max_delay_s must be within [0, 1] s, got {max_delay_s}")
        self.max_delay_s = float(max_delay_s)
        self._timer: asyncio.TimerHandle | None = None
        self.send_one, self.send_batch = send_one, send_batch
        self.max_batch, self.max_in_flight = int(max_batch), int(max_in_flight)
        self.closed_error = closed_error
        self._waiting: deque[_Waiting] = deque()
        self._in_flight = 0
        self._senders: set[asyncio.Task] = set()
        self._closed = False

    @property
    def in_flight(self) -> int:
        """Calls out now."""
        return self._in_flight

    async def submit(self, item: Item, timeout_s: float) -> Result:
        """``item``'s result, sent alone or in a batch within ``timeout_s`` (s); raises the
        item's failure, or :class:`TimeoutError` when it waited past its deadline."""
        if self._closed:
            raise self.closed_error()
        if not self._waiting and self._in_flight < self.max_in_flight and not self.max_delay_s:
            # nothing waits and a call slot is free: send from this coroutine (no hand-off)
            self._in_flight += 1
            try:
                return await self.send_one(item, timeout_s)
            finally:
                self._in_flight -= 1
                self._send_waiting()
        loop = asyncio.get_running_loop()
        waiting = _Waiting(item, loop.time() + timeout_s, loop.create_future())
        self._waiting.append(waiting)
        if self.max_delay_s and self._timer is None:
            self._timer = loop.call_later(self.max_delay_s, self._due)
        self._send_waiting()
        # on timeout or cancellation the future is cancelled: a sender skips it
        return await asyncio.wait_for(waiting.future, timeout_s)

    def _send_waiting(self) -> None:
        """Start a call for what waits while fewer than ``max_in_flight`` are out (with a
        ``max_delay_s``: once a full batch waits, or the delay of the oldest has passed)."""
        while self._waiting and self._in_flight < self.max_in_flight and not self._closed:
            if self._timer is not None and len(self._waiting) < self.max_batch:
                return  # waiting for more, until the timer
            batch: list[_Waiting] = []
            while self._waiting and len(batch) < self.max_batch:
                waiting = self._waiting.popleft()
                if not waiting.future.done():  # its caller may have given up already
                    batch.append(waiting)
            if not self._waiting and self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if not batch:
                return
            self._in_flight += 1
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._senders.add(task)
            task.add_done_callback(self._senders.discard)

    def _due(self) -> None:
        self._timer = None
        self._send_waiting()

    async def _send(self, batch: list[_Waiting]) -> None:
        """One call for ``batch``: ``send_one`` for one item, ``send_batch`` for several."""
        now = asyncio.get_running_loop().time()
        timeout_s = max(max(w.deadline for w in batch) - now, MIN_TIMEOUT_S)
        try:
            if len(batch) == 1:
                outcomes = [await _outcome(self.send_one(batch[0].item, timeout_s))]
            else:
                outcomes = await _outcomes(
                    self.send_batch([w.item for w in batch], timeout_s), len(batch)
                )
            for waiting, outcome in zip(batch, outcomes, strict=True):
                _settle(waiting.future, outcome)
        except asyncio.CancelledError:  # close(): the callers learn at once, not at timeout
            for waiting in batch:
                _settle(waiting.future, self.closed_error())
            raise
        finally:
            self._in_flight -= 1
            self._send_waiting()

    async def close(self) -> None:
        """Stop sending: calls out are cancelled, and their callers and every waiting one
        get ``closed_error()``."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in list(self._senders):
            task.cancel()
        await asyncio.gather(*self._senders, return_exceptions=True)
        while self._waiting:
            _settle(self._waiting.popleft().future, self.closed_error())


async def _outcome(call: Awaitable):
    """The call's result, or the exception it raised (cancellation propagates)."""
    try:
        return await call
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return exc


async def _outcomes(call: Awaitable[Sequence], n_items: int) -> list:
    """One outcome per item of a batch call: its results, or its exception ``n_items`` times;
    a reply with another number of items is every item's RuntimeError."""
    outcome = await _outcome(call)
    if isinstance(outcome, BaseException):
        return [outcome] * n_items
    outcomes = list(outcome)
    if len(outcomes) != n_items:
        error = RuntimeError(f"a batch call answered {len(outcomes)} items for {n_items}")
        return [error] * n_items
    return outcomes


def _settle(future: asyncio.Future, outcome) -> None:
    """Complete ``future`` with ``outcome`` (an exception is raised to its caller), unless
    its caller has given up."""
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
