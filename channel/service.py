"""The channel proxy's work, transport-free: AWGN or block fading, pilots, air-time, CSI,
edge forwarding.

y = s + n, n ~ N(0, sigma^2) per real dimension, sigma^2 = 10^(-PSNR/10), via
:func:`shared.channel.awgn`, under either power convention of the transmission (VL-VFE's
peak power 1 for the task models, mean power 1 for the image model: :func:`check_power`).
Pilots follow VL-VFE Appendix C. With fading on (:meth:`ChannelService.set_fading`,
``shared/fading.py``) each transmission meets its own block gains: the analog symbols arrive
equalised with ``receiver_snr_db`` and ``channel_gain`` set for the edge; an ldpc-qam codeword
keeps the MCS of the average PSNR and is simulated at its block's instantaneous SNR (zero
forcing with perfect CSI: y/h is AWGN at |h|²·SNR), so a deep fade is an outage.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
import numpy as np

from channel.edge_client import check_group_id
from channel.forwarding import DEFAULT_EDGE_BATCH, DEFAULT_EDGE_IN_FLIGHT, EdgeForwarder
from channel.links import DigitalLinks, LinkModeError
from channel.messages import check_power, fading_to_message
from channel.metrics import ChannelMetrics
from channel.profiles import FixedProfile, check_psnr_db
from channel.replies import finish_reply
from shared.channel import (
    DEFAULT_BAUD,
    airtime_seconds,
    awgn,
    noise_var_from_psnr,
    pilot_symbols,
)
from shared.fading import NO_FADING, Fading, draw_gains, fade
from shared.rpc import coinference_pb2 as pb
from shared.service.checks import check_at_least, check_positive
from shared.service.deadlines import forward_timeout
from shared.service.errors import ServiceError, check_batch_size, item_error, status_of

MAX_LINKS = 64  # multi-device: link ids 0..63 may have their own PSNR profile

# await decode(transmission, timeout_s) -> reply; raises grpc.RpcError like an aio stub call.
EdgeCall = Callable[[pb.Transmission, float], Awaitable[pb.InferenceReply]]
# await decode_batch(batch, timeout_s) -> BatchReply; raises grpc.RpcError like a stub call.
EdgeBatchCall = Callable[[pb.TransmissionBatch, float], Awaitable[pb.BatchReply]]
# await get_info(timeout_s) -> the edge's EdgeInfo; raises grpc.RpcError like a stub call.
EdgeInfoCall = Callable[[float], Awaitable[pb.EdgeInfo]]


@dataclass(frozen=True)
class _Sent:
    """A transmission after the link: what the edge receives, and the channel's clocks."""

    received: pb.Transmission
    airtime_s: float
    n_symbols: int
    start: float  # time.perf_counter() when the channel took it
    own_s: float  # the channel's own work so far, s


class ChannelService:
    """Corrupts transmissions at the profile's current PSNR and forwards them to the edge."""

    def __init__(
        self,
        edge_call: EdgeCall,
        profile=None,
        pilots: int = 0,
        baud: float = DEFAULT_BAUD,
        deadline_s: float = 2.0,
        emulate_airtime: bool = False,
        seed: int | None = None,
        edge_target: str = "",
        metrics: ChannelMetrics | None = None,
        edge_info_call: EdgeInfoCall | None = None,
        link_mode: str = "analog",
        edge_batch_call: EdgeBatchCall | None = None,
        fading: Fading = NO_FADING,
        edge_batching: bool = True,
        edge_batch: int = DEFAULT_EDGE_BATCH,
        edge_in_flight: int = DEFAULT_EDGE_IN_FLIGHT,
        edge_batch_delay_s: float = 0.0,
    ) -> None:
        check_at_least("pilots", pilots, 0)
        check_positive("baud", baud, "symbols/s")
        self.edge_info_call = edge_info_call
        self.pilots = int(pilots)
        self.baud = float(baud)
        self.deadline_s = float(deadline_s)
        self.emulate_airtime = emulate_airtime
        self.edge_target = edge_target
        self.metrics = metrics or ChannelMetrics()
        # Decode, or DecodeBatch of what arrives while calls are out (channel/forwarding.py)
        self.edge = EdgeForwarder(edge_call, edge_batch_call, edge_target, edge_batching,
                                  edge_batch, edge_in_flight, self.metrics,
                                  edge_batch_delay_s)  # fmt: skip
        self._profile = profile or FixedProfile(20.0)
        self._link_profiles: dict[int, object] = {}  # multi-device: a link's own profile
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()  # guards the RNG (not thread-safe) and the profile
        self.links = DigitalLinks(link_mode)  # analog, or a digital link (channel/links.py)
        self.fading = fading  # replaced whole by set_fading; read once per transmission
        self.fading_outages = 0
        self.metrics.psnr_db.set_function(self.current_psnr_db)

    # -- admin ---------------------------------------------------------------------------
    def _profile_for(self, link: int | None):
        with self._lock:
            return (
                self._link_profiles.get(link, self._profile)
                if link is not None
                else (self._profile)
            )

    def current_psnr_db(self, link: int | None = None) -> float:
        """The PSNR (dB) now: of ``link``'s own profile, else of the default profile."""
        return self._profile_for(link).current()

    @staticmethod
    def _check_link(link: int | None) -> None:
        if link is not None and not 0 <= link < MAX_LINKS:
            raise ServiceError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"link {link} outside 0..{MAX_LINKS - 1}")  # fmt: skip

    def set_profile(self, profile, link: int | None = None) -> pb.ChannelState:
        """Set the default profile, or ``link``'s own (multi-device: a PSNR per link)."""
        self._check_link(link)
        with self._lock:
            if link is None:
                self._profile = profile
            else:
                self._link_profiles[link] = profile
        return self.state(link)

    def set_psnr(self, psnr_db: float, link: int | None = None) -> pb.ChannelState:
        """Switch to a fixed PSNR; INVALID_ARGUMENT unless finite and within [-10, 60] dB."""
        try:
            profile = FixedProfile(check_psnr_db(psnr_db))
        except ValueError as exc:
            raise ServiceError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        return self.set_profile(profile, link)

    def set_link_mode(self, mode: str) -> pb.ChannelState:
        """Switch the link (analog | ideal | ldpc-qam); INVALID_ARGUMENT for another name,
        FAILED_PRECONDITION when ldpc-qam's simulator (Sionna) is not installed."""
        try:
            self.links.set_mode(mode)
        except LinkModeError as exc:
            raise ServiceError(grpc.StatusCode.FAILED_PRECONDITION, str(exc)) from None
        except ValueError as exc:
            raise ServiceError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        return self.state()

    def set_fading(self, fading: Fading) -> pb.ChannelState:
        """Switch every link's fading (NO_FADING: AWGN again); resets the outage count."""
        with self._lock:
            self.fading = fading
            self.fading_outages = 0
        return self.state()

    def state(self, link: int | None = None) -> pb.ChannelState:
        profile = self._profile_for(link)
        psnr_db = profile.current()
        with self._lock:
            links = dict(self._link_profiles)
        state = pb.ChannelState(
            psnr_db=psnr_db,
            noise_var=float(noise_var_from_psnr(psnr_db)),
            n_pilots=self.pilots,
            baud=self.baud,
            profile=profile.describe(),
            edge_target=self.edge_target,
        )
        if link is not None:
            state.link = link
        for index, own in links.items():
            state.link_psnr_db[index] = own.current()
        self.links.fill_state(state, psnr_db)
        self._fill_fading(state)
        return state

    def _fill_fading(self, state: pb.ChannelState) -> None:
        fading = self.fading
        state.fading = fading.describe()
        state.fading_settings.CopyFrom(fading_to_message(fading))
        state.fading_outages = self.fading_outages

    async def edge_info(self, time_remaining_s: float | None = None) -> pb.EdgeInfo:
        """The edge's GetInfo (model id, whether its decoder is serving), with a deadline:
        min(own ``deadline_s``, the caller's ``time_remaining_s``)."""
        if self.edge_info_call is None:
            raise ServiceError(grpc.StatusCode.UNIMPLEMENTED, "this channel has no edge info")
        timeout_s = forward_timeout(self.deadline_s, time_remaining_s)
        try:
            return await self.edge_info_call(timeout_s)
        except grpc.RpcError as exc:
            raise self.edge.map_error(exc, timeout_s) from None

    # -- data path -----------------------------------------------------------------------
    def link_psnr_db(self, transmission: pb.Transmission) -> float:
        """The PSNR (dB) this transmission meets: its own ``link_psnr_db`` when set (one
        simulated link per device, as the many-devices load mode sends; INVALID_ARGUMENT
        unless finite and within [-10, 60] dB), else its link's own profile for a group
        transmission whose link has one, else the channel's profile."""
        if transmission.HasField("link_psnr_db"):
            try:
                return check_psnr_db(transmission.link_psnr_db, "link_psnr_db")
            except ValueError as exc:
                raise ServiceError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        link = transmission.link_index if transmission.group_id else None
        return self.current_psnr_db(link)

    def corrupt(self, transmission: pb.Transmission) -> pb.Transmission:
        """The transmission as the edge receives it: noisy symbols, pilots, applied PSNR
        (analog; ``transmission`` itself, changed in place), or the coded bytes through a
        digital link (a copy, see :meth:`carry_digital`)."""
        psnr_db = self.link_psnr_db(transmission)
        mode = self.links.mode
        check_power(transmission, mode)
        if mode != "analog":
            return self.carry_digital(transmission, psnr_db, mode)[0]
        symbols = np.asarray(transmission.symbols, dtype=np.float32)
        fading, fading_draw = self.fading, None
        with self._lock:
            if fading.active and symbols.size:
                faded, fading_draw = fade(symbols[None], psnr_db, fading, self._rng)
                received = faded[0]
            else:
                received = awgn(symbols, psnr_db, self._rng)
            pilots = awgn(pilot_symbols(self.pilots), psnr_db, self._rng) if self.pilots else None
        out = transmission  # completed in place: the request is this call's own message
        if fading_draw is not None:
            out.receiver_snr_db = float(fading_draw.instantaneous_snr_db()[0])
            out.channel_gain = float(fading_draw.gain.mean())
        else:
            out.ClearField("receiver_snr_db")
            out.ClearField("channel_gain")
        out.symbols[:] = received.tolist()
        del out.pilots_received[:]
        if pilots is not None:
            out.pilots_received.extend(pilots.tolist())
        out.psnr_db = psnr_db
        out.noise_var = noise_var_from_psnr(float(psnr_db))
        out.link_mode = "analog"
        out.coded_indices = b""  # the analog link carries the symbols only
        return out

    def carry_digital(self, transmission: pb.Transmission, psnr_db: float, mode: str):
        """(received transmission, air-time s, real channel uses) over digital link ``mode``."""
        out = pb.Transmission()
        out.CopyFrom(transmission)
        out.ClearField("receiver_snr_db")
        out.ClearField("channel_gain")
        fading = self.fading
        try:
            with self._lock:
                block_psnr_db = psnr_db
                if fading.active:  # one block per codeword: the MCS knows the average only
                    gain = float(np.abs(draw_gains(fading, (1,), self._rng))[0])
                    block_psnr_db = psnr_db + 20.0 * np.log10(max(gain, 1e-15))
                    out.channel_gain, out.receiver_snr_db = gain, block_psnr_db
                outcome = self.links.carry(transmission, out, psnr_db, self._rng, self.baud,
                                           mode, channel_psnr_db=block_psnr_db)  # fmt: skip
                if fading.active and out.link_lost:
                    self.fading_outages += 1
        except LinkModeError as exc:
            raise ServiceError(grpc.StatusCode.FAILED_PRECONDITION, str(exc)) from None
        out.psnr_db = psnr_db
        out.noise_var = float(noise_var_from_psnr(psnr_db))
        out.channel_uses = outcome.channel_uses
        return out, outcome.airtime_s, outcome.channel_uses

    async def transmit(
        self, transmission: pb.Transmission, time_remaining_s: float | None = None
    ) -> pb.InferenceReply:
        """Corrupt, (optionally) wait the air-time, forward with a deadline, add timings/CSI.

        ``time_remaining_s`` is the caller's own deadline budget, if any; the edge call gets
        min(deadline_s, what is left of it). Raises :class:`ServiceError` with the status.
        """
        sent = await self._send(transmission)
        if self.emulate_airtime:
            await asyncio.sleep(sent.airtime_s)
        timeout_s = self._edge_timeout(sent.start, time_remaining_s)
        rpc_start = time.perf_counter()
        reply = await self.edge.decode(sent.received, timeout_s)
        return self._finish(transmission, sent, reply, time.perf_counter() - rpc_start)

    async def transmit_batch(
        self, batch: pb.TransmissionBatch, time_remaining_s: float | None = None
    ) -> pb.BatchReply:
        """:meth:`transmit` for every item, forwarded to the edge in one DecodeBatch call
        (per-call gRPC work paid once). An item's failure is its own status in the reply;
        a failed edge call is every forwarded item's failure."""
        check_batch_size(len(batch.items), "TransmitBatch")
        items = list(batch.items)
        outcomes: list[pb.BatchItemReply | None] = [None] * len(items)
        sends = await asyncio.gather(*(self._send_item(t) for t in items), return_exceptions=True)
        forwarded = []
        for index, sent in enumerate(sends):
            if isinstance(sent, ServiceError):
                outcomes[index] = item_error(sent)
            elif isinstance(sent, BaseException):
                raise sent
            else:
                forwarded.append(index)
        if forwarded:
            start = min(sends[i].start for i in forwarded)
            if self.emulate_airtime:  # the links carry their symbols side by side
                await asyncio.sleep(max(sends[i].airtime_s for i in forwarded))
            timeout_s = self._edge_timeout(start, time_remaining_s)
            received = pb.TransmissionBatch(items=[sends[i].received for i in forwarded])
            rpc_start = time.perf_counter()
            try:
                replies = list((await self.edge.decode_batch(received, timeout_s)).items)
            except grpc.RpcError as exc:
                replies = [item_error(self.edge.map_error(exc, timeout_s))] * len(forwarded)
            rpc_s = time.perf_counter() - rpc_start
            if len(replies) != len(forwarded):
                raise ServiceError(grpc.StatusCode.INTERNAL, f"edge answered {len(replies)} "
                                   f"items for {len(forwarded)}")  # fmt: skip
            for index, item in zip(forwarded, replies, strict=True):
                if item.code:
                    error = self.edge.map_status(status_of(item.code), item.message, timeout_s)
                    outcomes[index] = item_error(error)
                else:
                    reply = self._finish(items[index], sends[index], item.reply, rpc_s)
                    outcomes[index] = pb.BatchItemReply(reply=reply)
        for outcome in outcomes:
            self.metrics.count_request("TransmitBatch.item", status_of(outcome.code).name)
        return pb.BatchReply(items=outcomes)

    async def _send_item(self, transmission: pb.Transmission) -> _Sent:
        if transmission.group_id:
            raise ServiceError(
                grpc.StatusCode.INVALID_ARGUMENT,
                "grouped transmissions (group_id set) go through Transmit, not TransmitBatch",
            )
        return await self._send(transmission)

    async def _send(self, transmission: pb.Transmission) -> _Sent:
        """The transmission through the link: what reaches the edge, with air-time."""
        start = time.perf_counter()
        if transmission.group_id:
            try:
                check_group_id(transmission.group_id)
            except ValueError as exc:
                raise ServiceError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        mode = self.links.mode  # one snapshot: SetLinkMode may switch it meanwhile
        check_power(transmission, mode)  # before either link: an image never goes digital
        if mode == "analog":
            received = self.corrupt(transmission)
            n_symbols = len(transmission.symbols)
            fading_pilots = 2 * self.fading.pilot_uses(n_symbols) if n_symbols else 0
            airtime_s = float(airtime_seconds(n_symbols + self.pilots + fading_pilots, self.baud))
        else:
            # ldpc-qam simulates the codeword (ms of CPU): off the event loop
            received, airtime_s, n_symbols = await asyncio.to_thread(
                self.carry_digital, transmission, self.link_psnr_db(transmission), mode
            )
        return _Sent(received, airtime_s, n_symbols, start, time.perf_counter() - start)

    def _edge_timeout(self, start: float, time_remaining_s: float | None) -> float:
        spent_s = time.perf_counter() - start
        remaining_s = None if time_remaining_s is None else time_remaining_s - spent_s
        return forward_timeout(self.deadline_s, remaining_s)

    def _finish(self, transmission, sent: _Sent, reply, rpc_s: float) -> pb.InferenceReply:
        return finish_reply(self, transmission, sent, reply, rpc_s)
