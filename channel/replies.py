"""The channel's part of every reply: its timings, the modelled air-time, the CSI the device
learns its PSNR from (VL-VFE's feedback; the fading gain when fading is on), and the reply's
metrics, recorded after the reply is on its way."""

from __future__ import annotations

import time

from shared.rpc import coinference_pb2 as pb


def finish_reply(
    channel, transmission: pb.Transmission, sent, reply: pb.InferenceReply, rpc_s: float
) -> pb.InferenceReply:
    """The edge's ``reply`` to ``transmission`` (completed in place: it is this call's own
    message) with ``channel``'s timings, air-time and CSI added; ``sent`` is what the link
    made of the transmission (``received``, ``airtime_s``, ``n_symbols``, its clocks) and
    ``rpc_s`` the span of the edge call (s)."""
    after = time.perf_counter()
    received, airtime_s, n_symbols = sent.received, sent.airtime_s, sent.n_symbols
    out = reply
    timings = out.timings
    edge_total_s = timings.edge_total_s
    device = transmission.timings  # the device's two stages, unless the edge set them
    if not timings.preprocess_s:
        timings.preprocess_s = device.preprocess_s
    if not timings.encode_s:
        timings.encode_s = device.encode_s
    timings.airtime_s = airtime_s
    timings.channel_to_edge_s = max(rpc_s - edge_total_s, 0.0)
    out.n_symbols = n_symbols
    out.airtime_s = airtime_s
    out.link_mode = received.link_mode
    if received.link_mode == "analog" and transmission.echo_received:  # debug: the page
        out.received_symbols[:] = received.symbols  # the constellation of what arrived
    if received.link_mode != "analog":
        out.bits = 8 * len(transmission.coded_indices)  # sent, whether or not it arrived
        out.mcs = received.mcs
        out.channel_uses = received.channel_uses
    csi = out.csi
    csi.psnr_db = received.psnr_db
    csi.noise_var = received.noise_var
    csi.n_pilots = channel.pilots
    csi.baud = channel.baud
    channel.links.fill_state(csi, received.psnr_db)
    if received.HasField("channel_gain"):
        csi.channel_gain = received.channel_gain
        csi.instantaneous_snr_db = received.receiver_snr_db
        csi.fading = channel.fading.describe()
    end = time.perf_counter()
    timings.channel_s = sent.own_s + (end - after)
    timings.channel_total_s = end - sent.start
    channel.metrics.later(record_reply, channel, out.replica_id, n_symbols,
                          received.link_mode == "analog", timings)  # fmt: skip
    return out


def record_reply(channel, replica_id: str, n_symbols: int, analog: bool, timings) -> None:
    """A reply's metrics (after it is sent: :meth:`ServiceMetrics.later`)."""
    metrics = channel.metrics
    metrics.symbols.inc(n_symbols)
    metrics.count_edge_reply(replica_id)
    if channel.pilots and analog:
        metrics.pilot_symbols.inc(channel.pilots)
    metrics.observe_stage("channel", timings.channel_s)
    metrics.observe_stage("airtime", timings.airtime_s)
    metrics.observe_stage("channel_to_edge", timings.channel_to_edge_s)
    metrics.observe_stage("total", timings.channel_total_s)
