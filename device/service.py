"""The device's work, without HTTP: pre-process, encode, transmit, assemble the reply.

:class:`DeviceService` is what ``device/app.py`` exposes over FastAPI; it can be used and
tested without a socket. All latencies are seconds measured with ``time.perf_counter``.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import numpy as np

from device.channel_client import ChannelClient
from device.encoder import OnnxEncoder
from device.knobs import KnobStore, SnrDecision, decide_snr
from device.metrics import DeviceMetrics
from device.preprocess import decode_image, pixels_to_input
from shared.channel import psnr_from_noise_var
from shared.manifest import Manifest
from shared.quantizer import pack_indices
from shared.rpc import coinference_pb2 as pb


class DeviceService:
    """Encoder + knobs + channel client; one instance per device process."""

    def __init__(
        self,
        encoder: OnnxEncoder,
        channel: ChannelClient,
        knobs: KnobStore,
        metrics: DeviceMetrics | None = None,
    ):
        self.encoder = encoder
        self.manifest: Manifest = encoder.manifest
        self.channel = channel
        self.knobs = knobs
        self.metrics = metrics or DeviceMetrics()
        self._feedback_lock = threading.Lock()
        self._feedback_psnr_db: float | None = None  # last CSI PSNR from the channel, dB
        self.metrics.beta.set(knobs.get().beta)

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

    def channel_state(self) -> dict[str, Any]:
        """The channel's GetState as a dict (dB / linear variance); also refreshes feedback."""
        state = self.channel.get_state()
        self._remember_psnr(state.psnr_db)
        return state_to_dict(state)

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """(ready, report): ready when the channel answers, the edge behind it is serving,
        and the edge's model id is this device's. Raises ChannelError when a call fails."""
        state = self.channel_state()
        edge = self.channel.get_edge_info()
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

    def set_channel_psnr(self, psnr_db: float) -> dict[str, Any]:
        """Change the channel's PSNR (dB) via SetPsnr; feedback mode follows at once."""
        state = self.channel.set_psnr(psnr_db)
        self._remember_psnr(state.psnr_db)
        return state_to_dict(state)

    def _decide_snr(self) -> SnrDecision:
        knobs = self.knobs.get()
        feedback = self.feedback_psnr_db
        if knobs.snr_mode == "feedback" and feedback is None:
            self.channel_state()  # before any reply: ask the channel
            feedback = self.feedback_psnr_db
        return decide_snr(knobs, feedback, self.manifest)

    # --- inference -------------------------------------------------------------------------
    def infer_image(self, data: bytes) -> dict[str, Any]:
        """Classify an image file's bytes (PNG/JPEG/...)."""
        start = time.perf_counter()
        x = decode_image(data, self.manifest)
        return self._infer(x, start, time.perf_counter() - start)

    def infer_pixels(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Classify a JSON pixel payload (see device.preprocess.pixels_to_input)."""
        start = time.perf_counter()
        x = pixels_to_input(payload, self.manifest)
        return self._infer(x, start, time.perf_counter() - start)

    def _infer(self, x: np.ndarray, start: float, preprocess_s: float) -> dict[str, Any]:
        knobs = self.knobs.get()
        decision = self._decide_snr()

        t_encode = time.perf_counter()
        encoded = self.encoder.encode(x[None], knobs.beta, decision.snr_db)
        sent = self.encoder.transmit(encoded, 0, knobs.variable_length)
        encode_s = time.perf_counter() - t_encode

        request_id = uuid.uuid4().hex
        bits = self.encoder.manifest.bits
        transmission = pb.Transmission(
            request_id=request_id,
            model_id=self.manifest.model_id,
            beta=knobs.beta,
            snr_db=decision.snr_db,
            bits_per_symbol=int(bits or 0),
            d=self.manifest.d,
            symbols=sent.symbols.tolist(),
            level_indices=b"" if sent.levels is None else pack_indices(sent.levels, int(bits)),
            timings=pb.Timings(preprocess_s=preprocess_s, encode_s=encode_s),
        )
        t_rpc = time.perf_counter()
        reply = self.channel.transmit(transmission)
        rpc_s = time.perf_counter() - t_rpc
        if reply.HasField("csi"):
            self._remember_psnr(reply.csi.psnr_db)
        total_s = time.perf_counter() - start

        result = self._reply_to_dict(reply, knobs, decision, sent, request_id)
        t = reply.timings
        channel_total_s = t.channel_total_s
        result["latency_s"] = {
            "preprocess": preprocess_s,
            "encode": encode_s,
            "device_to_channel": max(0.0, rpc_s - channel_total_s),
            "channel": t.channel_s,
            "airtime": reply.airtime_s or t.airtime_s,
            "channel_to_edge": t.channel_to_edge_s,
            "edge_queue": t.edge_queue_s,
            "decode": t.decode_s,
            "edge_total": t.edge_total_s,
            "channel_total": channel_total_s,
            "rpc": rpc_s,
            "total": total_s,
        }
        self._observe(result)
        return result

    def _reply_to_dict(self, reply, knobs, decision: SnrDecision, sent, request_id) -> dict:
        manifest = self.manifest
        csi = reply.csi if reply.HasField("csi") else None
        result: dict[str, Any] = {"request_id": request_id, "model_id": manifest.model_id}
        if manifest.task == "classification":
            probabilities = [float(p) for p in reply.probabilities]
            label = int(np.argmax(probabilities)) if probabilities else int(reply.label)
            result["label"] = label
            names = manifest.class_names
            result["class_name"] = names[label] if label < len(names) else str(label)
            result["probabilities"] = probabilities
        else:
            result["regression_value"] = float(reply.regression_value)
        pilot_var = csi.noise_var_estimate if csi is not None and csi.has_pilot_estimate else None
        result.update(
            {
                "symbols_sent": sent.n_symbols,
                "bits_sent": sent.bits,
                "bits_per_symbol": self.encoder.bits_per_symbol,
                "d": manifest.d,
                "variable_length": knobs.variable_length,
                "beta": knobs.beta,
                "snr_db": decision.snr_db,
                "snr_mode": knobs.snr_mode,
                "feedback_psnr_db": decision.feedback_psnr_db,
                "snr_out_of_range": decision.out_of_range,
                "snr_note": decision.note,
                "channel_psnr_db": None if csi is None else csi.psnr_db,
                "channel_noise_var": None if csi is None else csi.noise_var,
                "pilot_noise_var_estimate": pilot_var,
                "pilot_psnr_estimate_db": (
                    None if not pilot_var else float(psnr_from_noise_var(pilot_var))
                ),
                "decoder_snr_db": reply.decoder_snr_db,
                "airtime_s": reply.airtime_s,
            }
        )
        return result

    def _observe(self, result: dict[str, Any]) -> None:
        m = self.metrics
        m.observe_latency(result["latency_s"])
        m.beta.set(result["beta"])
        m.snr_db.set(result["snr_db"])
        m.symbols_sent.inc(result["symbols_sent"])
        m.bits_sent.inc(result["bits_sent"])


def state_to_dict(state: pb.ChannelState) -> dict[str, Any]:
    """ChannelState as JSON-friendly dict: psnr_db (dB), noise_var (linear), pilots, baud."""
    return {
        "psnr_db": state.psnr_db,
        "noise_var": state.noise_var,
        "noise_var_estimate": state.noise_var_estimate if state.has_pilot_estimate else None,
        "n_pilots": state.n_pilots,
        "baud": state.baud,
        "profile": state.profile,
        "edge_target": state.edge_target,
    }
