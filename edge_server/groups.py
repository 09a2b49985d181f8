"""Multi-device groups at the edge (QML-IB eq. 3/15, DESIGN §7): the K transmissions of one
observation meet here, keyed by ``group_id``; the group is decoded once when all K links have
arrived or ``timeout_s`` after its first link (then with the missing links zeroed), and every
waiting link gets the same decision. Groups are independent: each has its own timer, so a
slow link holds up only its own group. A link that arrives after its group was decided gets
that decision (with itself among the missing links), from a bounded memory of recent groups.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
import numpy as np

from shared.service.checks import check_positive
from shared.service.errors import ServiceError


@dataclass(frozen=True)
class LinkJob:
    """One link's validated transmission."""

    received: np.ndarray  # float32 [n <= d], the received prefix
    beta: float  # linear
    snr_db: float  # the decoder's SNR input for this link, dB


@dataclass(frozen=True)
class GroupJob:
    """What the fusion decoder gets for one observation (missing links zero, present 0)."""

    received: np.ndarray  # float32 [K, d]
    beta: np.ndarray  # float32 [K]
    snr_db: np.ndarray  # float32 [K]
    present: np.ndarray  # float32 [K], 1.0 arrived / 0.0 missing


@dataclass(frozen=True)
class GroupDecision:
    value: object  # what ``decide`` returned (the batcher's result)
    missing: tuple[int, ...]  # links decoded as zeros


@dataclass
class _Group:
    created: float
    jobs: dict[int, LinkJob] = field(default_factory=dict)
    future: asyncio.Future | None = None
    timer: asyncio.TimerHandle | None = None


def group_job(jobs: dict[int, LinkJob], n_links: int, d: int) -> GroupJob:
    """Stack the arrived links; a missing link's features, β and SNR are placeholders that
    its ``present`` = 0 keeps out of the decision (shared.nn.decoders.FusionDecoder)."""
    received = np.zeros((n_links, d), dtype=np.float32)
    beta = np.ones(n_links, dtype=np.float32)
    snr_db = np.zeros(n_links, dtype=np.float32)
    present = np.zeros(n_links, dtype=np.float32)
    for k, job in jobs.items():
        received[k, : job.received.size] = job.received
        beta[k], snr_db[k], present[k] = job.beta, job.snr_db, 1.0
    mean_beta = float(np.exp(np.log(beta[present > 0]).mean()))
    beta[present == 0] = mean_beta  # keeps log β finite; ignored for a missing link
    return GroupJob(received, beta, snr_db, present)


class GroupAssembler:
    """Collects links into groups and decodes each group once via ``decide(GroupJob)``."""

    def __init__(
        self,
        n_links: int,
        d: int,
        timeout_s: float,
        decide: Callable[[GroupJob], Awaitable[object]],
        max_groups: int = 10000,
        remember: int = 4096,
    ) -> None:
        if n_links < 2:
            raise ValueError(f"a group has at least 2 links, got {n_links}")
        check_positive("group timeout", timeout_s, "s")
        self.n_links, self.d, self.timeout_s = n_links, d, timeout_s
        self.decide = decide
        self.max_groups = max_groups
        self.remember = remember
        self._pending: dict[str, _Group] = {}
        self._decided: OrderedDict[str, asyncio.Future] = OrderedDict()
        self._tasks: set[asyncio.Task] = set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def submit(self, group_id: str, link: int, job: LinkJob) -> tuple[GroupDecision, float]:
        """Add one link and wait for its group's decision; returns (decision, wait_s).

        Raises ServiceError: INVALID_ARGUMENT for a link already in its group,
        RESOURCE_EXHAUSTED when too many groups are open."""
        start = time.perf_counter()
        decided = self._decided.get(group_id)
        if decided is not None:  # late: the group was decided without this link
            return await asyncio.shield(decided), 0.0
        group = self._pending.get(group_id)
        if group is None:
            if len(self._pending) >= self.max_groups:
                raise ServiceError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                   f"{self.max_groups} groups waiting for their links")  # fmt: skip
            loop = asyncio.get_running_loop()
            group = _Group(created=start, future=loop.create_future())
            group.timer = loop.call_later(self.timeout_s, self._close, group_id)
            self._pending[group_id] = group
        if link in group.jobs:
            raise ServiceError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"link {link} already sent for group {group_id!r}")  # fmt: skip
        group.jobs[link] = job
        future = group.future
        if len(group.jobs) == self.n_links:
            self._close(group_id)
        # shield: a caller that gives up does not cancel the group for the other links
        decision = await asyncio.shield(future)
        return decision, time.perf_counter() - start

    def _close(self, group_id: str) -> None:
        """All links arrived or the timer fired: decode the group once, in a task."""
        group = self._pending.pop(group_id, None)
        if group is None:
            return
        group.timer.cancel()
        self._decided[group_id] = group.future
        while len(self._decided) > self.remember:
            self._decided.popitem(last=False)
        task = asyncio.get_running_loop().create_task(self._decode(group))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _decode(self, group: _Group) -> None:
        missing = tuple(k for k in range(self.n_links) if k not in group.jobs)
        try:
            value = await self.decide(group_job(group.jobs, self.n_links, self.d))
        except BaseException as exc:  # every waiting link sees the failure
            if not group.future.done():
                group.future.set_exception(exc)
            group.future.exception()  # retrieved: no "never retrieved" warning when unawaited
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        if not group.future.done():
            group.future.set_result(GroupDecision(value, missing))

    async def close(self) -> None:
        for group in self._pending.values():
            group.timer.cancel()
            if not group.future.done():
                group.future.set_exception(
                    ServiceError(grpc.StatusCode.UNAVAILABLE, "edge is shutting down")
                )
                group.future.exception()
        self._pending.clear()
        for task in list(self._tasks):
            task.cancel()
