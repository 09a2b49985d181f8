"""The edge's reply to one decoded transmission: the model's output, the group's decision
(multi-link models), the channel state it was sent with (and the pilots' noise estimate),
and the timings of every hop with the edge's own."""

from __future__ import annotations

import time

import numpy as np

from edge_server.batcher import BatchResult
from edge_server.entropy_receiver import DIGITAL_MODES, fill_reply
from edge_server.groups import GroupDecision
from edge_server.validation import DecodeJob
from shared.channel import estimate_noise_var, pilot_symbols
from shared.manifest import Manifest
from shared.rpc import coinference_pb2 as pb


def inference_reply(
    manifest: Manifest,
    replica_id: str,
    transmission: pb.Transmission,
    job: DecodeJob,
    output: object,
) -> pb.InferenceReply:
    """The reply to ``transmission`` decoded as ``job`` into ``output`` (the decoder's row
    for it), without the timings (:func:`add_timings`, last)."""
    reply = pb.InferenceReply(
        request_id=transmission.request_id,
        model_id=manifest.model_id,
        n_symbols=len(transmission.symbols),
        decoder_snr_db=job.snr_db,
        replica_id=replica_id,
    )
    _add_output(reply, manifest, np.asarray(output, dtype=np.float64).ravel())
    if transmission.link_mode in DIGITAL_MODES:
        fill_reply(reply, transmission, job.entropy_decode_s)
    _add_csi(reply, transmission)
    return reply


def add_timings(
    reply: pb.InferenceReply, transmission: pb.Transmission, result: BatchResult, start: float
) -> pb.Timings:
    """The hops' timings as they came, with the edge's queue, decode and total time (since
    ``start``, ``time.perf_counter`` when the edge received the transmission)."""
    timings = reply.timings
    timings.CopyFrom(transmission.timings)
    timings.edge_queue_s = result.queue_s
    timings.decode_s = result.run_s
    timings.edge_total_s = time.perf_counter() - start
    return timings


def add_group(
    reply: pb.InferenceReply,
    transmission: pb.Transmission,
    n_links: int,
    decision: GroupDecision,
    wait_s: float,
) -> None:
    """The group's decision on ``reply``: which links were missing, how long it waited."""
    reply.group_id = transmission.group_id
    reply.link_index = transmission.link_index
    reply.n_links = n_links
    reply.missing_links.extend(decision.missing)
    reply.partial = bool(decision.missing)
    reply.group_wait_s = wait_s


def _add_output(reply: pb.InferenceReply, manifest: Manifest, output: np.ndarray) -> None:
    """Probabilities and label, a reconstructed image, or a regression value."""
    if manifest.task == "classification":
        reply.probabilities.extend(output.tolist())
        reply.label = int(output.argmax())
    elif manifest.task == "reconstruction":
        reply.reconstruction.extend(output.tolist())
        reply.reconstruction_shape.extend(manifest.input_shape)
    else:
        reply.regression_value = float(output[0])


def _add_csi(reply: pb.InferenceReply, transmission: pb.Transmission) -> None:
    """The channel's state as it came with the transmission, and the noise estimated from
    its received pilots."""
    if transmission.HasField("psnr_db"):
        reply.csi.psnr_db = transmission.psnr_db
    if transmission.HasField("noise_var"):
        reply.csi.noise_var = transmission.noise_var
    if transmission.pilots_received:
        pilots = np.asarray(transmission.pilots_received, dtype=np.float64)
        reply.csi.noise_var_estimate = estimate_noise_var(pilots, pilot_symbols(pilots.size))
        reply.csi.has_pilot_estimate = True
        reply.csi.n_pilots = pilots.size
