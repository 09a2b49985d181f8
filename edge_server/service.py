"""The edge server's work, transport-free: validate, batch, decode, measure, health.

:class:`EdgeDecoder` puts together the check of each transmission against the model
(:mod:`edge_server.validation`), adaptive batching (:mod:`edge_server.batcher`), the groups
of a multi-link model (:mod:`edge_server.groups`), the decoder's health
(:mod:`edge_server.health`) and the reply (:mod:`edge_server.replies`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import grpc
import numpy as np

from edge_server.batcher import (
    AdaptiveBatcher,
    BatchResult,
    DeadlineExpired,
    QueueFullError,
    WorkerStopped,
)
from edge_server.entropy_receiver import DigitalReceiver
from edge_server.groups import GroupAssembler, GroupDecision, GroupJob, LinkJob
from edge_server.health import DecoderHealth, HealthHook
from edge_server.metrics import EdgeMetrics
from edge_server.replies import add_group, add_timings, inference_reply
from edge_server.validation import DecodeJob, TransmissionValidator
from shared.manifest import Manifest
from shared.rpc import coinference_pb2 as pb
from shared.service.errors import ServiceError, check_batch_size, item_error

# decoder(received [N, d] float32, beta [N] float32, snr_db [N] float32) -> [N, C] or [N, 1]
Decoder = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


class EdgeDecoder:
    """Validates transmissions, decodes them in adaptive batches and knows whether the
    decoder can run (:attr:`serving`, kept by :class:`~edge_server.health.DecoderHealth`:
    ``on_health(serving)`` is awaited on every change, re-probed every ``probe_interval_s``
    while the decoder cannot run).
    """

    def __init__(
        self,
        decoder: Decoder,
        manifest: Manifest,
        *,
        metrics: EdgeMetrics | None = None,
        on_health: HealthHook | None = None,
        device: str = "cpu",
        replica_id: str = "",
        decoder_snr: str = "transmission",
        max_batch_size: int = 32,
        max_queue_delay_us: float = 0.0,
        inline_decode_max: int = 0,
        group_timeout_s: float = 0.5,
        probe_interval_s: float = 5.0,
    ) -> None:
        self.decoder = decoder
        self.manifest = manifest
        self.digital = DigitalReceiver(manifest)  # entropy-coded transmissions
        self.validator = TransmissionValidator(manifest, decoder_snr, self.digital)
        self.decoder_snr = decoder_snr
        self.device = device
        self.max_batch_size = max_batch_size
        self.metrics = metrics or EdgeMetrics()
        self.replica_id = replica_id  # which replica this is, in replies and GetInfo
        self.batcher = AdaptiveBatcher(
            self._run_batch,
            max_batch_size=max_batch_size,
            max_queue_delay_s=max_queue_delay_us * 1e-6,
            on_batch=self._after_batch,
            # a batch decoded on the event loop blocks it: only for the CPU's short calls
            inline_max=inline_decode_max if device == "cpu" else 0,
        )
        self.health = DecoderHealth(self.batcher, self.warm_up, probe_interval_s, on_health)
        self.n_links = manifest.n_links
        self.group_timeout_s = group_timeout_s
        # multi-link model (QML-IB): the K links of one observation meet in a group
        self.groups = (
            GroupAssembler(self.n_links, manifest.d, group_timeout_s, self._decide_group)
            if self.n_links > 1
            else None
        )

    # -- life cycle and health -----------------------------------------------------------
    @property
    def serving(self) -> bool | None:
        """Whether the decoder runs (None until :meth:`start` has probed it)."""
        return self.health.serving

    @property
    def on_health(self) -> HealthHook | None:
        """Awaited with :attr:`serving` on every change (the server's gRPC health)."""
        return self.health.on_health

    @on_health.setter
    def on_health(self, hook: HealthHook | None) -> None:
        self.health.on_health = hook

    async def start(self) -> bool:
        """Start the batch worker and probe the decoder once; returns :attr:`serving`."""
        self.batcher.start()
        self.health.watch()
        return await self.health.probe()

    async def close(self) -> None:
        self.health.close()
        if self.groups is not None:
            await self.groups.close()
        await self.batcher.close()

    def warm_up(self) -> None:
        """One decoder call on zeros: pays for lazy set-up and shows the decoder can run."""
        beta = np.sqrt(np.prod(self.manifest.beta_range))  # geometric mid of the range
        snr_db = float(np.mean(self.manifest.snr_db_range))
        if self.groups is not None:
            k = self.n_links
            self._run_batch([GroupJob(np.zeros((k, self.manifest.d), np.float32),
                                      np.full(k, beta, np.float32), np.full(k, snr_db, np.float32),
                                      np.ones(k, np.float32))])  # fmt: skip
            return
        self.decoder(
            np.zeros((1, self.manifest.d), dtype=np.float32),
            np.array([beta], dtype=np.float32),
            np.array([snr_db], dtype=np.float32),
        )

    async def probe(self) -> bool:
        """Run :meth:`warm_up` in the decoder thread; set :attr:`serving` from the outcome."""
        return await self.health.probe()

    async def _after_batch(self, batch_size: int, error: BaseException | None) -> None:
        self.metrics.batch_size.observe(batch_size)
        await self.health.after_batch(batch_size, error)

    def info(self) -> pb.EdgeInfo:
        m = self.manifest
        return pb.EdgeInfo(
            model_id=m.model_id,
            task=m.task,
            d=m.d,
            beta_min=m.beta_range[0],
            beta_max=m.beta_range[1],
            snr_db_min=m.snr_db_range[0],
            snr_db_max=m.snr_db_range[1],
            bits_per_symbol=m.bits or 0,
            variable_length=m.variable_length,
            class_names=list(m.class_names),
            device=self.device,
            max_batch_size=self.max_batch_size,
            decoder_snr=self.decoder_snr,
            serving=bool(self.serving),
            n_links=self.n_links,
            group_timeout_s=self.group_timeout_s if self.groups is not None else 0.0,
            replica_id=self.replica_id,
            entropy_coded=self.digital.available,
            power=m.power,
        )

    def validate(self, transmission: pb.Transmission) -> DecodeJob:
        """Check a transmission against the manifest; raise :class:`ServiceError` if unfit
        (:class:`~edge_server.validation.TransmissionValidator`)."""
        return self.validator.validate(transmission)

    # -- decoding ------------------------------------------------------------------------
    async def _decide_group(self, job: GroupJob):
        outcome = "complete" if job.present.all() else "partial"
        self.metrics.groups.labels(outcome=outcome).inc()
        return await self.batcher.submit(job, None)

    def _run_batch(self, jobs: Sequence[DecodeJob]) -> list[np.ndarray]:
        """Zero-fill each job to d and run one decoder call for the batch (a multi-link
        model's jobs are whole groups: [N, K, d] with a presence mask)."""
        if self.groups is not None:
            out = self.decoder(
                np.stack([job.received for job in jobs]),
                np.stack([job.beta for job in jobs]),
                np.stack([job.snr_db for job in jobs]),
                np.stack([job.present for job in jobs]),
            )
            return list(np.asarray(out, dtype=np.float32))
        received = np.zeros((len(jobs), self.manifest.d), dtype=np.float32)
        for row, job in enumerate(jobs):
            received[row, : job.received.size] = job.received
        beta = np.array([job.beta for job in jobs], dtype=np.float32)
        snr_db = np.array([job.snr_db for job in jobs], dtype=np.float32)
        out = np.asarray(self.decoder(received, beta, snr_db), dtype=np.float32)
        return list(out)

    async def decode(
        self, transmission: pb.Transmission, timeout_s: float | None = None
    ) -> pb.InferenceReply:
        """Validate, queue, decode; return the reply with edge timings and pilot CSI."""
        return await self._decode(transmission, timeout_s, time.perf_counter())

    async def decode_batch(
        self, batch: pb.TransmissionBatch, timeout_s: float | None = None
    ) -> pb.BatchReply:
        """:meth:`decode` for every item at once (the items join the batcher together, under
        one timer); an item's failure is its own status in the reply, never the other items'."""
        check_batch_size(len(batch.items), "DecodeBatch")
        start = time.perf_counter()
        items = list(batch.items)
        outcomes: list = [None] * len(items)
        queued: list[tuple[int, DecodeJob]] = []
        for index, transmission in enumerate(items):
            try:
                queued.append((index, self._batch_job(transmission)))
            except ServiceError as exc:
                outcomes[index] = exc
        results = await self.batcher.submit_many([job for _, job in queued], timeout_s)
        timings = []
        for (index, job), result in zip(queued, results, strict=True):
            if isinstance(result, BaseException):
                outcomes[index] = service_error(result)
                continue
            outcomes[index], timing = self._reply(items[index], job, result, start)
            timings.append(timing)
        self.metrics.later(self._record_all_stages, timings)  # after the reply is sent
        return pb.BatchReply(items=[self._batch_item(outcome) for outcome in outcomes])

    def _batch_job(self, transmission: pb.Transmission) -> DecodeJob:
        """The job of one DecodeBatch item (a grouped one goes through Decode)."""
        if transmission.group_id:
            raise ServiceError(
                grpc.StatusCode.INVALID_ARGUMENT,
                "grouped transmissions (group_id set) go through Decode, not DecodeBatch",
            )
        return self.validate(transmission)

    def _batch_item(self, outcome: pb.InferenceReply | ServiceError) -> pb.BatchItemReply:
        """One item of a DecodeBatch reply, counted by its status."""
        if isinstance(outcome, ServiceError):
            self.metrics.count_request("DecodeBatch.item", outcome.code.name)
            return item_error(outcome)
        self.metrics.count_request("DecodeBatch.item", "OK")
        return pb.BatchItemReply(reply=outcome)

    async def _decode(self, transmission, timeout_s, start) -> pb.InferenceReply:
        job = self.validate(transmission)
        result, decision, wait_s = await self._submit(transmission, job, timeout_s)
        reply, timings = self._reply(transmission, job, result, start, decision, wait_s)
        self.metrics.later(self._record_stages, timings)  # after the reply is sent
        return reply

    def _reply(self, transmission, job, result, start, decision=None, wait_s=0.0):
        """The reply to a decoded ``transmission`` (with its group's decision) and its
        timings."""
        reply = inference_reply(self.manifest, self.replica_id, transmission, job, result.value)
        if decision is not None:
            add_group(reply, transmission, self.n_links, decision, wait_s)
        return reply, add_timings(reply, transmission, result, start)

    async def _submit(
        self, transmission: pb.Transmission, job: DecodeJob, timeout_s: float | None
    ) -> tuple[BatchResult, GroupDecision | None, float]:
        """The batcher's result for ``job`` (through its group for a multi-link model), the
        group's decision and wait (s); a failure as the ServiceError of its status."""
        try:
            if self.groups is None:
                return await self.batcher.submit(job, timeout_s), None, 0.0
            link = LinkJob(job.received, job.beta, job.snr_db)
            decision, wait_s = await asyncio.wait_for(
                self.groups.submit(transmission.group_id, transmission.link_index, link),
                timeout_s,
            )
            return decision.value, decision, wait_s
        except Exception as exc:
            raise service_error(exc) from None

    def _record_all_stages(self, all_timings: list[pb.Timings]) -> None:
        for timings in all_timings:
            self._record_stages(timings)

    def _record_stages(self, timings: pb.Timings) -> None:
        for stage, value in (
            ("queue", timings.edge_queue_s),
            ("decode", timings.decode_s),
            ("total", timings.edge_total_s),
        ):
            self.metrics.observe_stage(stage, value)


def service_error(exc: BaseException) -> ServiceError:
    """The status of a decode that failed with ``exc``."""
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, DeadlineExpired | TimeoutError):
        return ServiceError(grpc.StatusCode.DEADLINE_EXCEEDED,
                            str(exc) or "deadline passed while waiting for the group")  # fmt: skip
    if isinstance(exc, QueueFullError):
        return ServiceError(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
    if isinstance(exc, WorkerStopped):
        return ServiceError(grpc.StatusCode.UNAVAILABLE, f"decoder unavailable: {exc}")
    return ServiceError(grpc.StatusCode.INTERNAL, f"decoder failed: {exc}")
