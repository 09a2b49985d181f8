"""Whether the edge's decoder can run: the health the gRPC server reports.

A failed batch is followed by a probe (one decoder call on warm-up input); if the probe fails
too, or the batch worker stopped, the decoder is not serving, and the probe is retried every
``probe_interval_s`` until the decoder runs again. ``on_health(serving)`` is awaited on every
change (the server sets the gRPC health status from it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from edge_server.batcher import AdaptiveBatcher

log = logging.getLogger(__name__)

HealthHook = Callable[[bool], Awaitable[None]]


class DecoderHealth:
    """:attr:`serving` of the decoder behind ``batcher``, probed with ``warm_up`` (run in
    the decoder thread)."""

    def __init__(
        self,
        batcher: AdaptiveBatcher,
        warm_up: Callable[[], None],
        probe_interval_s: float = 5.0,
        on_health: HealthHook | None = None,
    ) -> None:
        self.batcher = batcher
        self.warm_up = warm_up
        self.probe_interval_s = probe_interval_s
        self.on_health = on_health
        self.serving: bool | None = None  # None until the decoder has been probed once
        self._closing = False
        self._prober: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()

    def watch(self) -> None:
        """Notice when the (started) batch worker stops: the decoder is then not serving."""
        self.batcher.worker.add_done_callback(self._worker_exited)

    def close(self) -> None:
        """Stop probing; no health change is reported from now on."""
        self._closing = True
        for task in (self._prober, *self._tasks):
            if task is not None:
                task.cancel()

    async def probe(self) -> bool:
        """Run ``warm_up`` in the decoder thread; set :attr:`serving` from the outcome."""
        try:
            await self.batcher.run_in_decoder_thread(self.warm_up)
        except Exception as exc:
            log.error("decoder probe failed: %s: %s", type(exc).__name__, exc)
            await self.set_serving(False)
            return False
        await self.set_serving(self.batcher.running)
        return bool(self.serving)

    async def set_serving(self, serving: bool) -> None:
        if self._closing or serving == self.serving:
            return
        self.serving = serving
        log.log(
            logging.INFO if serving else logging.ERROR,
            "decoder %s",
            "serving" if serving else "NOT serving",
        )
        if not serving and self.batcher.running and self._prober is None:
            self._prober = asyncio.get_running_loop().create_task(self._probe_until_serving())
        if self.on_health is not None:
            await self.on_health(serving)

    async def after_batch(self, batch_size: int, error: BaseException | None) -> None:
        """A batch ran: serving on success; on failure a probe tells whether it was this
        batch or the decoder."""
        if error is None:
            await self.set_serving(True)
        else:
            log.warning("batch of %d failed: %s: %s", batch_size, type(error).__name__, error)
            await self.probe()

    async def _probe_until_serving(self) -> None:
        try:
            while not self.serving and self.batcher.running:
                await asyncio.sleep(self.probe_interval_s)
                await self.probe()
        finally:
            self._prober = None

    def _worker_exited(self, worker: asyncio.Task) -> None:
        if self._closing:
            return
        error = None if worker.cancelled() else worker.exception()
        log.error("batch worker stopped: %r", error)
        task = asyncio.get_running_loop().create_task(self.set_serving(False))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
