"""The device's HTTP reply, assembled from the edge's reply (through the channel): the
task's answer, the rate figures, the channel's CSI, the digital link's figures and, when
asked, the constellation of the last transmission (sent beside received symbols).

Units as in ``protos/coinference.proto``: dB for SNR/PSNR, linear variance per real
dimension, seconds for times.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from device.encoder import Transmit
from device.knobs import Knobs, SnrDecision
from shared.channel import psnr_from_noise_var
from shared.manifest import Manifest
from shared.rpc import coinference_pb2 as pb


def reply_fields(
    reply: pb.InferenceReply,
    manifest: Manifest,
    bits_per_symbol: int,
    knobs: Knobs,
    decision: SnrDecision,
    sent: Transmit,
    request_id: str,
) -> dict[str, Any]:
    """The HTTP reply of one inference from the edge's reply (through the channel): the
    task's answer, what was sent (symbols, bits, knobs, SNR decision), the channel's CSI and,
    on a digital link, its figures (:func:`digital_fields`)."""
    csi = reply.csi if reply.HasField("csi") else None
    result: dict[str, Any] = {"request_id": request_id, "model_id": manifest.model_id}
    if manifest.task == "classification":
        probabilities = [float(p) for p in reply.probabilities]
        label = int(np.argmax(probabilities)) if probabilities else int(reply.label)
        result["label"] = label
        names = manifest.class_names
        result["class_name"] = names[label] if label < len(names) else str(label)
        result["probabilities"] = probabilities
    elif manifest.task == "regression":
        result["regression_value"] = float(reply.regression_value)
    pilot_var = csi.noise_var_estimate if csi is not None and csi.has_pilot_estimate else None
    result.update(
        {
            "symbols_sent": sent.n_symbols,
            "bits_sent": sent.bits,
            "bits_per_symbol": bits_per_symbol,
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
            # block fading (the channel's SetFading): this transmission's mean gain |h|
            # and the receiver's instantaneous SNR (dB); None without fading
            "channel_gain": (
                csi.channel_gain if csi is not None and csi.HasField("channel_gain") else None
            ),
            "instantaneous_snr_db": (
                csi.instantaneous_snr_db
                if csi is not None and csi.HasField("instantaneous_snr_db")
                else None
            ),
            "airtime_s": reply.airtime_s,
            "edge_replica": reply.replica_id or None,
        }
    )
    if reply.group_id:
        result["group"] = {
            "group_id": reply.group_id,
            "link_index": reply.link_index,
            "n_links": reply.n_links,
            "missing_links": list(reply.missing_links),
            "partial": reply.partial,
            "group_wait_s": reply.group_wait_s,
        }
    result.update(digital_fields(reply, csi))
    return result


def digital_fields(reply: pb.InferenceReply, csi) -> dict[str, Any]:
    """The link's figures: mode, and on a digital link the coded bits that went on the air
    (they replace symbols_sent/bits_sent), block losses and entropy coding times."""
    mode = reply.link_mode or "analog"
    out: dict[str, Any] = {"link_mode": mode}
    if mode == "analog":
        return out
    out.update(
        {
            "symbols_sent": reply.channel_uses,
            "bits_sent": reply.bits,
            "predicted_bits": reply.predicted_bits,
            "link_lost": reply.link_lost,
            "mcs": reply.mcs or None,
            "block_error_rate": None if csi is None else csi.block_error_rate,
            "blocks_sent": None if csi is None else csi.blocks_sent,
            "entropy_encode_us": 1e6 * reply.entropy_encode_s,
            "entropy_decode_us": 1e6 * reply.entropy_decode_s,
        }
    )
    return out


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
        "link_mode": state.link_mode or "analog",
        "block_error_rate": state.block_error_rate,
        "mcs": state.mcs or None,
        "fading": state.fading or "none (AWGN)",
        "fading_outages": state.fading_outages,
    }


def latency_fields(
    reply: pb.InferenceReply, preprocess_s: float, encode_s: float, rpc_s: float, total_s: float
) -> dict[str, float]:
    """The reply's ``latency_s``: seconds per stage, each measured where it happens (the
    device's own spans, the channel's and the edge's from the reply's timings); the
    device-to-channel hop is the RPC span less the channel's reported total."""
    t = reply.timings
    return {
        "preprocess": preprocess_s,
        "encode": encode_s,
        "device_to_channel": max(0.0, rpc_s - t.channel_total_s),
        "channel": t.channel_s,
        "airtime": reply.airtime_s or t.airtime_s,
        "channel_to_edge": t.channel_to_edge_s,
        "edge_queue": t.edge_queue_s,
        "decode": t.decode_s,
        "edge_total": t.edge_total_s,
        "channel_total": t.channel_total_s,
        "rpc": rpc_s,
        "total": total_s,
    }


def constellation_fields(
    reply: pb.InferenceReply, sent_symbols: np.ndarray, power: str
) -> dict[str, Any]:
    """The symbols of one transmission for a constellation plot (the web page's debug view).

    ``sent``: the real symbols the encoder transmitted (the active prefix; a quantized
    model's are its levels); ``received``: the same symbols as the edge got them (AWGN, and
    under block fading the equalised ones), copied by the channel into the reply
    (``InferenceReply.received_symbols``, asked for with ``Transmission.echo_received``).
    Consecutive real symbols are the I and Q of one complex channel use (the proto's
    convention; VL-VFE sends real symbols with peak amplitude 1, power "peak", the image model
    complex ones with mean power 1 per real symbol, power "average"). On a digital link the
    coded bits travel instead of these symbols: ``received`` is empty and ``note`` says why.
    """
    received = [float(v) for v in reply.received_symbols]
    fields: dict[str, Any] = {
        "sent": [float(v) for v in sent_symbols],
        "received": received,
        "pairing": "consecutive real symbols as I/Q",
        "power": power,
        "note": None,
    }
    if (reply.link_mode or "analog") != "analog":
        fields["note"] = (
            f"the {reply.link_mode} link carries the entropy-coded bits, not these symbols"
        )
    elif len(received) != len(fields["sent"]):
        fields["note"] = "the channel did not return the received symbols"
    return fields
