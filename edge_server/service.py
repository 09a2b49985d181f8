"""The edge server's work, transport-free: validate, batch, decode, measure, health.

The decoder sees the received symbols zero-filled to d (VL-VFE: inactive dimensions are
zero), the transmission's beta (linear) and an SNR in dB: by default the SNR the encoder
assumed (``decoder_snr="transmission"``), or the channel's applied PSNR (``"csi"``). Under
block fading the channel sends equalised symbols with the receiver's instantaneous SNR
(``receiver_snr_db``): the zero-forced symbols are AWGN at that SNR, so the decoder takes it
(clipped to the trained range, as the offline evaluation does) in either mode.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import grpc
import numpy as np

from edge_server.batcher import AdaptiveBatcher, DeadlineExpired, QueueFullError, WorkerStopped
from edge_server.entropy_receiver import DIGITAL_MODES, ChecksumError, DigitalReceiver, fill_reply
from edge_server.groups import GroupAssembler, GroupJob, LinkJob
from edge_server.metrics import EdgeMetrics
from shared.channel import estimate_noise_var, pilot_symbols
from shared.manifest import POWER_CONVENTIONS, Manifest
from shared.rpc import coinference_pb2 as pb
from shared.service.errors import (
    ServiceError,
    check_batch_size,
    failed_precondition,
    item_error,
)
from shared.service.errors import invalid_argument as invalid

log = logging.getLogger(__name__)

DECODER_SNR_MODES = ("transmission", "csi")
MAX_GROUP_ID_LENGTH = 128

# decoder(received [N, d] float32, beta [N] float32, snr_db [N] float32) -> [N, C] or [N, 1]
Decoder = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class DecodeJob:
    """One validated request as it waits in the batching queue."""

    received: np.ndarray  # float32 [n] received symbols (the active prefix)
    beta: float  # linear
    snr_db: float  # decoder's SNR input, dB
    entropy_decode_s: float = 0.0  # digital link: range decoding time, s


def fading_decoder_snr(receiver_snr_db: float, snr_range: tuple[float, float]) -> float:
    """The decoder's SNR for a faded transmission: the receiver's instantaneous SNR clipped
    to the trained range (NaN is refused: it is not an SNR)."""
    if np.isnan(receiver_snr_db):
        raise invalid("receiver_snr_db is NaN: not an SNR")
    lo, hi = snr_range
    return float(min(max(receiver_snr_db, lo), hi))


class EdgeDecoder:
    """Validates transmissions, decodes them in adaptive batches and knows whether the
    decoder can run (:attr:`serving`).

    Health: a failed batch is followed by a probe (one decoder call on warm-up input); if the
    probe fails too, or the batch worker stopped, the edge is not serving, and the probe is
    retried every ``probe_interval_s`` until the decoder runs again. ``on_health(serving)`` is
    awaited on every change (the server sets the gRPC health status from it).
    """

    def __init__(
        self,
        decoder: Decoder,
        manifest: Manifest,
        max_batch_size: int = 32,
        max_queue_delay_us: float = 0.0,
        decoder_snr: str = "transmission",
        device: str = "cpu",
        metrics: EdgeMetrics | None = None,
        on_health: Callable[[bool], Awaitable[None]] | None = None,
        probe_interval_s: float = 5.0,
        group_timeout_s: float = 0.5,
        replica_id: str = "",
    ) -> None:
        if decoder_snr not in DECODER_SNR_MODES:
            raise ValueError(f"decoder_snr must be one of {DECODER_SNR_MODES}, got {decoder_snr!r}")
        self.decoder = decoder
        self.manifest = manifest
        self.digital = DigitalReceiver(manifest)  # entropy-coded transmissions
        self.decoder_snr = decoder_snr
        self.device = device
        self.max_batch_size = max_batch_size
        self.metrics = metrics or EdgeMetrics()
        self.on_health = on_health
        self.probe_interval_s = probe_interval_s
        self.replica_id = replica_id  # which replica this is, in replies and GetInfo
        self.serving: bool | None = None  # None until start() has run the decoder once
        self.batcher = AdaptiveBatcher(
            self._run_batch,
            max_batch_size=max_batch_size,
            max_queue_delay_s=max_queue_delay_us * 1e-6,
            on_batch=self._after_batch,
        )
        self.n_links = manifest.n_links
        self.group_timeout_s = group_timeout_s
        # multi-link model (QML-IB): the K links of one observation meet in a group
        self.groups = (
            GroupAssembler(self.n_links, manifest.d, group_timeout_s, self._decide_group)
            if self.n_links > 1
            else None
        )
        self._closing = False
        self._prober: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()

    # -- life cycle and health -----------------------------------------------------------
    async def start(self) -> bool:
        """Start the batch worker and probe the decoder once; returns :attr:`serving`."""
        self.batcher.start()
        self.batcher.worker.add_done_callback(self._worker_exited)
        return await self.probe()

    async def close(self) -> None:
        self._closing = True
        for task in (self._prober, *self._tasks):
            if task is not None:
                task.cancel()
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
        try:
            await self.batcher.run_in_decoder_thread(self.warm_up)
        except Exception as exc:
            log.error("decoder probe failed: %s: %s", type(exc).__name__, exc)
            await self._set_serving(False)
            return False
        await self._set_serving(self.batcher.running)
        return bool(self.serving)

    async def _set_serving(self, serving: bool) -> None:
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

    async def _probe_until_serving(self) -> None:
        try:
            while not self.serving and self.batcher.running:
                await asyncio.sleep(self.probe_interval_s)
                await self.probe()
        finally:
            self._prober = None

    async def _after_batch(self, batch_size: int, error: BaseException | None) -> None:
        self.metrics.batch_size.observe(batch_size)
        if error is None:
            await self._set_serving(True)
        else:  # this batch, or the decoder? a probe tells
            log.warning("batch of %d failed: %s: %s", batch_size, type(error).__name__, error)
            await self.probe()

    def _worker_exited(self, worker: asyncio.Task) -> None:
        if self._closing:
            return
        error = None if worker.cancelled() else worker.exception()
        log.error("batch worker stopped: %r", error)
        task = asyncio.get_running_loop().create_task(self._set_serving(False))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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

    # -- validation ----------------------------------------------------------------------
    def validate(self, transmission: pb.Transmission) -> DecodeJob:
        """Check a transmission against the manifest; raise :class:`ServiceError` if unfit.

        Received amplitudes are not bounded: channel noise can push them past 1.
        """
        m = self.manifest
        if not transmission.model_id:  # e.g. an empty message
            raise invalid(
                f"model_id is missing: a transmission names the model it was encoded for "
                f"(this edge serves {m.model_id!r}), with beta, snr_db and the symbols"
            )
        if transmission.model_id != m.model_id:
            raise failed_precondition(
                f"model id mismatch: transmission is for {transmission.model_id!r}, "
                f"this edge serves {m.model_id!r}",
            )
        self._validate_power(transmission)
        self._validate_group(transmission)
        if transmission.d and transmission.d != m.d:
            raise invalid(f"d={transmission.d} does not match the model's d={m.d}")
        if transmission.link_mode in DIGITAL_MODES:
            return self._digital_job(transmission)
        n = len(transmission.symbols)
        if n == 0:
            raise invalid("no symbols: a transmission carries at least one symbol")
        if n > m.d:
            raise invalid(f"{n} symbols sent, more than the model's d={m.d}")
        if m.task == "reconstruction" and n != m.d:
            raise invalid(f"{n} symbols sent: an image transmission carries all d={m.d} symbols")
        received = np.asarray(transmission.symbols, dtype=np.float32)
        if not np.all(np.isfinite(received)):
            raise invalid("symbols contain NaN or infinity")
        if transmission.pilots_received and not np.all(
            np.isfinite(np.asarray(transmission.pilots_received, dtype=np.float64))
        ):
            raise invalid("pilots_received contain NaN or infinity")
        bits = transmission.bits_per_symbol
        if bits and bits != (m.bits or 0):
            raise invalid(
                f"bits_per_symbol={bits} but the model's quantizer has "
                f"{m.bits or 0} bits (0 = unquantized)"
            )
        try:
            m.check_beta(transmission.beta)
        except ValueError as exc:
            raise invalid(str(exc)) from None
        try:
            m.check_snr_db(transmission.snr_db)
        except ValueError as exc:
            raise invalid(str(exc)) from None
        snr_db = transmission.snr_db
        if self.decoder_snr == "csi":
            if not transmission.HasField("psnr_db"):
                raise failed_precondition(
                    "decoder SNR mode 'csi' needs the channel's psnr_db (send through the channel)",
                )
            snr_db = transmission.psnr_db
            try:
                m.check_snr_db(snr_db)
            except ValueError as exc:
                raise invalid(f"channel PSNR (CSI) unusable by the decoder: {exc}") from None
        if transmission.HasField("receiver_snr_db"):
            snr_db = fading_decoder_snr(transmission.receiver_snr_db, m.snr_db_range)
        return DecodeJob(received, float(transmission.beta), float(snr_db))

    def _validate_power(self, transmission: pb.Transmission) -> None:
        """The symbols' power convention must be the model's ("" reads as "peak")."""
        m, power = self.manifest, transmission.power or "peak"
        if power not in POWER_CONVENTIONS:
            raise invalid(f"power={transmission.power!r}: use one of {POWER_CONVENTIONS}")
        if power != m.power:
            raise invalid(
                f"power convention {power!r} does not fit this edge's {m.task} model, whose "
                f"symbols use {m.power!r} power: a {m.task} transmission sets power={m.power!r}"
            )

    def _validate_group(self, transmission: pb.Transmission) -> None:
        """The multi-device fields against the model's K (DESIGN §7)."""
        k, group_id = self.n_links, transmission.group_id
        if k == 1:
            if transmission.n_links > 1:
                raise invalid(f"n_links={transmission.n_links} but this edge serves a "
                              "single-device model (n_links 0 or 1)")  # fmt: skip
            return
        if not group_id:
            raise invalid(f"this edge serves a {k}-link model: a transmission needs a group_id "
                          f"(one per observation), its link_index and n_links={k}")  # fmt: skip
        if len(group_id) > MAX_GROUP_ID_LENGTH or not group_id.isprintable():
            raise invalid(f"bad group_id: at most {MAX_GROUP_ID_LENGTH} printable characters")
        if transmission.n_links != k:
            raise invalid(f"n_links={transmission.n_links} but the model has {k} links")
        if transmission.link_index >= k:
            raise invalid(f"link_index={transmission.link_index} outside 0..{k - 1}")

    def _digital_job(self, transmission: pb.Transmission) -> DecodeJob:
        """Coded bytes -> levels (edge_server/entropy_receiver.py); DATA_LOSS when the bytes fail
        their CRC-32, INVALID_ARGUMENT when unfit."""
        try:
            self.manifest.check_beta(transmission.beta)
            received, snr_db, decode_s = self.digital.received(transmission)
        except ChecksumError as exc:
            raise ServiceError(grpc.StatusCode.DATA_LOSS, str(exc)) from None
        except ValueError as exc:
            raise invalid(str(exc)) from None
        return DecodeJob(received, float(transmission.beta), snr_db, decode_s)

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
        """:meth:`decode` for every item at once (each joins the batcher as it would alone);
        an item's failure is its own status in the reply, never the other items'."""
        check_batch_size(len(batch.items), "DecodeBatch")
        start = time.perf_counter()
        outcomes = await asyncio.gather(
            *(self._decode_item(item, timeout_s, start) for item in batch.items)
        )
        return pb.BatchReply(items=outcomes)

    async def _decode_item(self, transmission, timeout_s, start) -> pb.BatchItemReply:
        try:
            if transmission.group_id:
                raise ServiceError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "grouped transmissions (group_id set) go through Decode, not DecodeBatch",
                )
            reply = await self._decode(transmission, timeout_s, start)
        except ServiceError as exc:
            self.metrics.count_request("DecodeBatch.item", exc.code.name)
            return item_error(exc)
        self.metrics.count_request("DecodeBatch.item", "OK")
        return pb.BatchItemReply(reply=reply)

    async def _decode(self, transmission, timeout_s, start) -> pb.InferenceReply:
        job = self.validate(transmission)
        decision, wait_s = None, 0.0
        try:
            if self.groups is not None:
                link = LinkJob(job.received, job.beta, job.snr_db)
                decision, wait_s = await asyncio.wait_for(
                    self.groups.submit(transmission.group_id, transmission.link_index, link),
                    timeout_s,
                )
                result = decision.value
            else:
                result = await self.batcher.submit(job, timeout_s)
        except ServiceError:
            raise
        except (DeadlineExpired, TimeoutError) as exc:
            raise ServiceError(grpc.StatusCode.DEADLINE_EXCEEDED, str(exc) or "deadline passed "
                               "while waiting for the group") from None  # fmt: skip
        except QueueFullError as exc:
            raise ServiceError(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)) from None
        except WorkerStopped as exc:
            raise ServiceError(grpc.StatusCode.UNAVAILABLE, f"decoder unavailable: {exc}") from None
        except Exception as exc:
            raise ServiceError(grpc.StatusCode.INTERNAL, f"decoder failed: {exc}") from None

        reply = pb.InferenceReply(
            request_id=transmission.request_id,
            model_id=self.manifest.model_id,
            n_symbols=len(transmission.symbols),
            decoder_snr_db=job.snr_db,
            replica_id=self.replica_id,
        )
        if decision is not None:
            reply.group_id = transmission.group_id
            reply.link_index = transmission.link_index
            reply.n_links = self.n_links
            reply.missing_links.extend(decision.missing)
            reply.partial = bool(decision.missing)
            reply.group_wait_s = wait_s
        output = np.asarray(result.value, dtype=np.float64).ravel()
        if self.manifest.task == "classification":
            reply.probabilities.extend(output.tolist())
            reply.label = int(np.argmax(output))
        elif self.manifest.task == "reconstruction":
            reply.reconstruction.extend(output.tolist())
            reply.reconstruction_shape.extend(self.manifest.input_shape)
        else:
            reply.regression_value = float(output[0])
        if transmission.link_mode in DIGITAL_MODES:
            fill_reply(reply, transmission, job.entropy_decode_s)
        if transmission.HasField("psnr_db"):
            reply.csi.psnr_db = transmission.psnr_db
        if transmission.HasField("noise_var"):
            reply.csi.noise_var = transmission.noise_var
        if transmission.pilots_received:
            pilots = np.asarray(transmission.pilots_received, dtype=np.float64)
            reply.csi.noise_var_estimate = estimate_noise_var(pilots, pilot_symbols(pilots.size))
            reply.csi.has_pilot_estimate = True
            reply.csi.n_pilots = pilots.size
        timings = reply.timings
        timings.CopyFrom(transmission.timings)
        timings.edge_queue_s = result.queue_s
        timings.decode_s = result.run_s
        timings.edge_total_s = time.perf_counter() - start
        self.metrics.later(self._record_stages, timings)  # after the reply is sent
        return reply

    def _record_stages(self, timings: pb.Timings) -> None:
        for stage, value in (
            ("queue", timings.edge_queue_s),
            ("decode", timings.decode_s),
            ("total", timings.edge_total_s),
        ):
            self.metrics.observe_stage(stage, value)
