"""The edge server's work, transport-free: validate, micro-batch, decode, measure.

The decoder sees the received symbols zero-filled to d (VL-VFE: inactive dimensions are
zero), the transmission's beta (linear) and an SNR in dB: by default the SNR the encoder
assumed (``decoder_snr="transmission"``), or the channel's applied PSNR (``"csi"``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

import grpc
import numpy as np

from edge_server.batcher import MicroBatcher, QueueFullError
from edge_server.metrics import EdgeMetrics
from shared.channel import estimate_noise_var, pilot_symbols
from shared.manifest import Manifest
from shared.rpc import coinference_pb2 as pb

DECODER_SNR_MODES = ("transmission", "csi")

# decoder(received [N, d] float32, beta [N] float32, snr_db [N] float32) -> [N, C] or [N, 1]
Decoder = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


class EdgeError(Exception):
    """A failure with the gRPC status the caller should see."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(message: str) -> EdgeError:
    return EdgeError(grpc.StatusCode.INVALID_ARGUMENT, message)


@dataclass(frozen=True)
class DecodeJob:
    """One validated request as it waits in the batching queue."""

    received: np.ndarray  # float32 [n] received symbols (the active prefix)
    beta: float  # linear
    snr_db: float  # decoder's SNR input, dB


class EdgeDecoder:
    """Validates transmissions and decodes them in micro-batches."""

    def __init__(
        self,
        decoder: Decoder,
        manifest: Manifest,
        max_batch_size: int = 32,
        max_queue_delay_us: float = 2000.0,
        workers: int = 1,
        decoder_snr: str = "transmission",
        device: str = "cpu",
        metrics: EdgeMetrics | None = None,
    ) -> None:
        if decoder_snr not in DECODER_SNR_MODES:
            raise ValueError(f"decoder_snr must be one of {DECODER_SNR_MODES}, got {decoder_snr!r}")
        self.decoder = decoder
        self.manifest = manifest
        self.decoder_snr = decoder_snr
        self.device = device
        self.max_batch_size = max_batch_size
        self.metrics = metrics or EdgeMetrics()
        self.batcher = MicroBatcher(
            self._run_batch,
            max_batch_size=max_batch_size,
            max_delay_s=max_queue_delay_us * 1e-6,
            workers=workers,
            on_batch=self.metrics.batch_size.observe,
        )

    def close(self) -> None:
        self.batcher.close()

    def warm_up(self) -> None:
        """One decoder call on zeros, so the first request does not pay for lazy set-up."""
        beta = np.sqrt(np.prod(self.manifest.beta_range))  # geometric mid of the range
        snr_db = float(np.mean(self.manifest.snr_db_range))
        self.decoder(
            np.zeros((1, self.manifest.d), dtype=np.float32),
            np.array([beta], dtype=np.float32),
            np.array([snr_db], dtype=np.float32),
        )

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
        )

    # -- validation ----------------------------------------------------------------------
    def validate(self, transmission: pb.Transmission) -> DecodeJob:
        """Check a transmission against the manifest; raise :class:`EdgeError` if unfit.

        Received amplitudes are not bounded: channel noise can push them past 1.
        """
        m = self.manifest
        if transmission.model_id != m.model_id:
            raise EdgeError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"model id mismatch: transmission is for {transmission.model_id!r}, "
                f"this edge serves {m.model_id!r}",
            )
        if transmission.d and transmission.d != m.d:
            raise invalid(f"d={transmission.d} does not match the model's d={m.d}")
        n = len(transmission.symbols)
        if n == 0:
            raise invalid("no symbols: a transmission carries at least one symbol")
        if n > m.d:
            raise invalid(f"{n} symbols sent, more than the model's d={m.d}")
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
                raise EdgeError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    "decoder SNR mode 'csi' needs the channel's psnr_db (send through the channel)",
                )
            snr_db = transmission.psnr_db
            try:
                m.check_snr_db(snr_db)
            except ValueError as exc:
                raise invalid(f"channel PSNR (CSI) unusable by the decoder: {exc}") from None
        return DecodeJob(received, float(transmission.beta), float(snr_db))

    # -- decoding ------------------------------------------------------------------------
    def _run_batch(self, jobs: Sequence[DecodeJob]) -> list[np.ndarray]:
        """Zero-fill each job to d and run one decoder call for the batch."""
        received = np.zeros((len(jobs), self.manifest.d), dtype=np.float32)
        for row, job in enumerate(jobs):
            received[row, : job.received.size] = job.received
        beta = np.array([job.beta for job in jobs], dtype=np.float32)
        snr_db = np.array([job.snr_db for job in jobs], dtype=np.float32)
        out = np.asarray(self.decoder(received, beta, snr_db), dtype=np.float32)
        return list(out)

    def decode(
        self, transmission: pb.Transmission, timeout_s: float | None = None
    ) -> pb.InferenceReply:
        """Validate, queue, decode; return the reply with edge timings and pilot CSI."""
        start = time.perf_counter()
        self.metrics.requests.inc()
        try:
            reply = self._decode(transmission, timeout_s, start)
        except EdgeError as exc:
            self.metrics.failures.labels(code=exc.code.name).inc()
            raise
        return reply

    def _decode(self, transmission, timeout_s, start) -> pb.InferenceReply:
        job = self.validate(transmission)
        try:
            future = self.batcher.submit(job)
        except QueueFullError as exc:
            raise EdgeError(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)) from None
        try:
            result = future.result(timeout=timeout_s)
        except FutureTimeout:
            future.cancel()
            raise EdgeError(
                grpc.StatusCode.DEADLINE_EXCEEDED, f"decode did not finish in {timeout_s:.3g} s"
            ) from None
        except Exception as exc:
            raise EdgeError(grpc.StatusCode.INTERNAL, f"decoder failed: {exc}") from None

        reply = pb.InferenceReply(
            request_id=transmission.request_id,
            model_id=self.manifest.model_id,
            n_symbols=len(transmission.symbols),
            decoder_snr_db=job.snr_db,
        )
        output = np.asarray(result.value, dtype=np.float64).ravel()
        if self.manifest.task == "classification":
            reply.probabilities.extend(output.tolist())
            reply.label = int(np.argmax(output))
        else:
            reply.regression_value = float(output[0])
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
        for stage, value in (
            ("queue", timings.edge_queue_s),
            ("decode", timings.decode_s),
            ("total", timings.edge_total_s),
        ):
            self.metrics.latency.labels(stage=stage).observe(value)
        return reply
