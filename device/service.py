"""The device's work, without HTTP: pre-process, encode, transmit, assemble the reply.

:class:`DeviceService` is what ``device/app.py`` exposes over FastAPI; it can be used and
tested without a socket. Its methods are coroutines on the server's event loop: image decode
and the ONNX encoder run in a small thread pool (``compute_threads``) and the channel call
is a ``grpc.aio`` call, so the loop never blocks. The request's deadline budget
(``deadline_s``, counted from its arrival) travels with the gRPC call to the channel and on
to the edge. Latencies are seconds measured with ``time.perf_counter`` where the work
happens (the worker thread's own span for decode and encode).

Request ids: a caller may name its request (``request_id``, HTTP header ``X-Request-Id``:
1-128 characters of ``A-Z a-z 0-9 . _ : -``); otherwise the device draws a random one. The
id travels in the ``Transmission``, the edge echoes it in its reply, and the device refuses
a reply whose id is not its request's (HTTP 502), so no caller is ever handed another
request's answer; the reply's ``request_id`` is that id. Ids need not be unique for this.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from device.channel_client import ChannelClient, ChannelError
from device.encoder import OnnxEncoder
from device.entropy import DeviceEntropyCoder
from device.knobs import KnobStore, SnrDecision, decide_snr
from device.metrics import DeviceMetrics
from device.preprocess import PreprocessError, image_to_input, open_image, pixels_to_input
from device.reconstruction import ReconstructionError, reconstruction_fields
from device.reply import constellation_fields, latency_fields, reply_fields, state_to_dict
from shared.manifest import Manifest
from shared.rpc import coinference_pb2 as pb

T = TypeVar("T")
# Work done on the event loop rather than in the compute pool: bodies up to this size whose
# image is at most INLINE_MAX_PIXELS (decoding them takes well under a millisecond).
INLINE_MAX_BYTES = 16 * 1024
INLINE_MAX_PIXELS = 256 * 256
# reconstructions of images up to this many values get their PSNR/SSIM/PNGs on the loop
INLINE_MAX_RECONSTRUCTION = 32 * 32 * 3
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_for(client_id: str | None) -> str:
    """The caller's request id when it is well formed, a random one when none is given;
    PreprocessError (HTTP 400) for a malformed one."""
    if client_id is None:
        return uuid.uuid4().hex
    if not REQUEST_ID_PATTERN.fullmatch(client_id):
        raise PreprocessError(
            "X-Request-Id must be 1-128 characters of A-Z a-z 0-9 . _ : - "
            f"(got {client_id[:40]!r}{'...' if len(client_id) > 40 else ''})",
            400,
        )
    return client_id


class DeviceService:
    """Encoder + knobs + channel client; one instance per device process."""

    def __init__(
        self,
        encoder: OnnxEncoder,
        channel: ChannelClient,
        knobs: KnobStore,
        metrics: DeviceMetrics | None = None,
        deadline_s: float | None = None,
        compute_threads: int = 2,
    ):
        self.encoder = encoder
        self.manifest: Manifest = encoder.manifest
        self.channel = channel
        self.knobs = knobs
        self.metrics = metrics or DeviceMetrics()
        # one request's budget for its gRPC calls, s (None: the client's own deadline)
        self.deadline_s = deadline_s if deadline_s is not None else channel.deadline_s
        self._compute = ThreadPoolExecutor(compute_threads, thread_name_prefix="device-compute")
        self._feedback_lock = threading.Lock()
        self._feedback_psnr_db: float | None = None  # last CSI PSNR from the channel, dB
        self.metrics.beta.set(knobs.get().beta)
        self.entropy = DeviceEntropyCoder(self.manifest)  # digital links

    # --- channel state -------------------------------------------------------------------
    @property
    def feedback_psnr_db(self) -> float | None:
        """The channel PSNR (dB) feedback mode will use next, or None before any feedback."""
        with self._feedback_lock:
            return self._feedback_psnr_db

    def _remember_psnr(self, psnr_db: float) -> None:
        with self._feedback_lock:
            self._feedback_psnr_db = float(psnr_db)
        self.metrics.channel_psnr_db.set(psnr_db)

    async def close(self) -> None:
        await self.channel.close()
        self._compute.shutdown(wait=False, cancel_futures=True)

    async def _run(self, inline: bool, function: Callable[..., T], *args) -> tuple[T, float]:
        """``function(*args)`` on the event loop when ``inline`` (small work: a thread hop
        costs more than it saves), else in the compute pool; returns (result, its span in s)."""

        def timed():
            start = time.perf_counter()
            return function(*args), time.perf_counter() - start

        if inline:
            return timed()
        return await asyncio.get_running_loop().run_in_executor(self._compute, timed)

    async def channel_state(self, timeout_s: float | None = None) -> dict[str, Any]:
        """The channel's GetState as a dict (dB / linear variance); also refreshes feedback."""
        state = await self.channel.get_state(timeout_s)
        link = self.encoder.link_index
        if link is not None:  # multi-device: this device's own link
            state.psnr_db = state.link_psnr_db.get(link, state.psnr_db)
            state.noise_var = 10 ** (-state.psnr_db / 10)
        self._remember_psnr(state.psnr_db)
        return state_to_dict(state)

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """(ready, report): ready when the channel answers, the edge behind it is serving,
        and the edge's model id is this device's. Raises ChannelError when a call fails."""
        state = await self.channel_state()
        edge = await self.channel.get_edge_info()
        model_id = self.manifest.model_id
        report: dict[str, Any] = {
            "model_id": model_id,
            "edge_model_id": edge.model_id,
            "edge_serving": edge.serving,
            "channel_psnr_db": state["psnr_db"],
        }
        if edge.model_id != model_id:
            report["detail"] = (
                f"model id mismatch: the edge serves model {edge.model_id!r}, "
                f"this device runs {model_id!r}"
            )
        elif not edge.serving:
            report["detail"] = f"the edge serving model {edge.model_id!r} is not serving"
        report["status"] = "not ready" if "detail" in report else "ready"
        return "detail" not in report, report

    async def set_channel_psnr(self, psnr_db: float, token: str | None = None) -> dict[str, Any]:
        """Change the channel's PSNR (dB) via SetPsnr, passing on the caller's admin
        ``token``; feedback mode follows at once."""
        state = await self.channel.set_psnr(psnr_db, token, link=self.encoder.link_index)
        self._remember_psnr(state.psnr_db)
        return state_to_dict(state)

    async def set_channel_fading(
        self, fading: dict[str, Any], token: str | None = None
    ) -> dict[str, Any]:
        """Set the channel's block fading via SetFading (``fading``: kind, k_factor,
        coherence, csi, pilots, equalizer), passing on the caller's admin ``token``."""
        return state_to_dict(await self.channel.set_fading(fading, token))

    async def set_channel_link_mode(self, mode: str, token: str | None = None) -> dict[str, Any]:
        """Switch the channel's link via SetLinkMode, passing on the caller's admin ``token``."""
        return state_to_dict(await self.channel.set_link_mode(mode, token))

    def _remaining_s(self, start: float) -> float:
        """What is left of this request's deadline budget, s."""
        return max(self.deadline_s - (time.perf_counter() - start), 0.001)

    async def _decide_snr(self, knobs, start: float) -> SnrDecision:
        feedback = self.feedback_psnr_db
        if knobs.snr_mode == "feedback" and feedback is None:
            await self.channel_state(self._remaining_s(start))  # before any reply: ask
            feedback = self.feedback_psnr_db
        return decide_snr(knobs, feedback, self.manifest)

    # --- inference -------------------------------------------------------------------------
    async def infer_image(
        self, data: bytes, request_id: str | None = None, constellation: bool = False
    ) -> dict[str, Any]:
        """Classify an image file's bytes (PNG/JPEG/...). ``constellation``: the reply also
        carries the sent and received symbols (:func:`device.reply.constellation_fields`)."""
        start = time.perf_counter()
        request_id = request_id_for(request_id)
        image = open_image(data)  # the header only: its declared size says where to decode
        open_s = time.perf_counter() - start
        small = len(data) <= INLINE_MAX_BYTES and image.width * image.height <= INLINE_MAX_PIXELS
        x, decode_s = await self._run(small, image_to_input, image, self.manifest)
        preprocess_s = open_s + decode_s
        return await self._infer(x, start, preprocess_s, request_id, constellation)

    async def infer_pixels(
        self, payload: dict[str, Any], request_id: str | None = None, constellation: bool = False
    ) -> dict[str, Any]:
        """Classify a JSON pixel payload (see device.preprocess.pixels_to_input)."""
        start = time.perf_counter()
        request_id = request_id_for(request_id)
        x, preprocess_s = await self._run(False, pixels_to_input, payload, self.manifest)
        return await self._infer(x, start, preprocess_s, request_id, constellation)

    async def infer_json(
        self, body: bytes, request_id: str | None = None, constellation: bool = False
    ) -> dict[str, Any]:
        """Classify a JSON body ``{"pixels": ..., "pixel_range": ...}`` (a big one is parsed in
        the compute pool, off the event loop)."""
        start = time.perf_counter()
        request_id = request_id_for(request_id)
        small = len(body) <= INLINE_MAX_BYTES
        x, preprocess_s = await self._run(small, self._json_to_input, body)
        return await self._infer(x, start, preprocess_s, request_id, constellation)

    def _json_to_input(self, body: bytes) -> np.ndarray:
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise PreprocessError(f"invalid JSON: {exc}", 400) from exc
        return pixels_to_input(payload, self.manifest)

    def _encode(self, x: np.ndarray, beta: float, snr_db: float, variable_length: bool):
        encoded = self.encoder.encode(x[None], beta, snr_db)
        sent = self.encoder.transmit(encoded, 0, variable_length)
        levels = None if encoded.levels is None else encoded.levels[0]
        return sent, self.entropy.code(levels, sent.n_symbols, beta)

    async def _infer(
        self,
        x: np.ndarray,
        start: float,
        preprocess_s: float,
        request_id: str,
        constellation: bool = False,
    ) -> dict[str, Any]:
        knobs = self.knobs.get()
        decision = await self._decide_snr(knobs, start)
        (sent, coded), encode_s = await self._run(  # one sample: ~0.1 ms of ONNX Runtime
            True, self._encode, x, knobs.beta, decision.snr_db, knobs.variable_length
        )

        bits = self.encoder.manifest.bits
        transmission = pb.Transmission(
            request_id=request_id,
            model_id=self.manifest.model_id,
            beta=knobs.beta,
            snr_db=decision.snr_db,
            bits_per_symbol=int(bits or 0),
            d=self.manifest.d,
            symbols=sent.symbols.tolist(),
            timings=pb.Timings(preprocess_s=preprocess_s, encode_s=encode_s),
            echo_received=constellation,  # the channel returns the received symbols
        )
        if self.manifest.power != "peak":  # the image model: mean power 1 per real symbol
            transmission.power = self.manifest.power
        if self.encoder.link_index is not None:
            # multi-device: the request id names the observation, shared by its K devices
            transmission.group_id = request_id
            transmission.link_index = self.encoder.link_index
            transmission.n_links = self.encoder.n_links
        if coded is not None:  # the channel carries these instead on a digital link
            transmission.coded_indices = coded.payload
            transmission.n_coded = coded.n_coded
            transmission.predicted_bits = coded.predicted_bits
            transmission.entropy_encode_s = coded.encode_s
            transmission.coded_crc32 = coded.crc32
        t_rpc = time.perf_counter()
        reply = await self.channel.transmit(transmission, self._remaining_s(start))
        rpc_s = time.perf_counter() - t_rpc
        if reply.request_id != request_id:  # never hand a caller another request's answer
            raise ChannelError(
                f"the reply through channel {self.channel.target} is for request "
                f"{reply.request_id!r}, not {request_id!r}; refused"
            )
        if reply.HasField("csi"):
            self._remember_psnr(reply.csi.psnr_db)
        total_s = time.perf_counter() - start

        result = reply_fields(
            reply, self.manifest, self.encoder.bits_per_symbol, knobs, decision, sent, request_id
        )
        if constellation:
            result["constellation"] = constellation_fields(reply, sent.symbols, self.manifest.power)
        if self.manifest.task == "reconstruction":
            try:
                fields, _ = await self._run(
                    x.size <= INLINE_MAX_RECONSTRUCTION, reconstruction_fields,
                    reply.reconstruction, reply.reconstruction_shape, x, self.manifest,
                )  # fmt: skip
            except ReconstructionError as exc:
                raise ChannelError(f"edge reply refused: {exc}") from None
            result["reconstruction"] = fields
        result["latency_s"] = latency_fields(reply, preprocess_s, encode_s, rpc_s, total_s)
        self.metrics.later(self._observe, result)  # after the reply is on its way
        return result

    def _observe(self, result: dict[str, Any]) -> None:
        m = self.metrics
        m.observe_latency(result["latency_s"])
        m.beta.set(result["beta"])
        m.snr_db.set(result["snr_db"])
        m.symbols_sent.inc(result["symbols_sent"])
        m.bits_sent.inc(result["bits_sent"])
