"""ChannelService without sockets: noise statistics, pilots, air-time, timings, errors.

The service is async (it forwards with a grpc.aio stub); each test runs it with asyncio.run.
"""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest

from channel.profiles import RandomWalkProfile
from channel.service import ChannelService
from channel.settings import parse_settings
from shared.channel import airtime_seconds, estimate_noise_var, pilot_symbols
from shared.rpc import coinference_pb2 as pb
from shared.service.errors import ServiceError
from tests.stand_ins import RpcStatusError, StandInHop


def failing_edge(code: grpc.StatusCode, details: str = "edge says no"):
    async def call(transmission, timeout_s):
        raise RpcStatusError(code, details)

    return call


def transmission(symbols) -> pb.Transmission:
    return pb.Transmission(
        request_id="r",
        model_id="m",
        beta=1e-3,
        snr_db=10,
        d=len(symbols),
        symbols=symbols,
        timings=pb.Timings(preprocess_s=0.01, encode_s=0.02),
    )


@pytest.mark.parametrize("psnr_db", [0.0, 10.0, 20.0, 30.0])
def test_noise_variance_matches_psnr(psnr_db: float) -> None:
    edge = StandInHop()
    service = ChannelService(edge, seed=1234)
    service.set_psnr(psnr_db)
    sent = np.where(np.arange(50_000) % 3 == 0, 0.8, -0.4).astype(np.float32)
    asyncio.run(service.transmit(transmission(sent.tolist())))
    received = np.asarray(edge.received[0].symbols, dtype=np.float64)
    noise = received - sent
    expected = 10 ** (-psnr_db / 10)
    assert abs(noise.mean()) < 4 * np.sqrt(expected / noise.size)
    assert noise.var() == pytest.approx(expected, rel=0.03)
    assert edge.received[0].psnr_db == psnr_db
    assert edge.received[0].noise_var == pytest.approx(expected)


def test_pilots_carry_the_same_noise() -> None:
    edge = StandInHop()
    service = ChannelService(edge, pilots=20_000, seed=5)
    service.set_psnr(13.0)
    reply = asyncio.run(service.transmit(transmission([0.1, 0.2])))
    pilots = np.asarray(edge.received[0].pilots_received)
    estimate = estimate_noise_var(pilots, pilot_symbols(pilots.size))
    assert estimate == pytest.approx(10**-1.3, rel=0.03)
    assert reply.csi.n_pilots == 20_000


def test_airtime_counts_symbols_and_pilots() -> None:
    service = ChannelService(StandInHop(), pilots=8, baud=1000.0, seed=0)
    reply = asyncio.run(service.transmit(transmission([0.5] * 24)))
    assert reply.n_symbols == 24
    assert reply.airtime_s == pytest.approx(airtime_seconds(32, 1000.0))
    assert reply.timings.airtime_s == reply.airtime_s


def test_reply_merges_timings_and_csi() -> None:
    service = ChannelService(StandInHop(), seed=0)
    service.set_psnr(17.0)
    reply = asyncio.run(service.transmit(transmission([0.5, -0.5])))
    t = reply.timings
    assert t.preprocess_s == pytest.approx(0.01) and t.encode_s == pytest.approx(0.02)
    assert t.channel_s > 0 and t.channel_total_s >= t.channel_s
    assert t.channel_total_s >= t.channel_to_edge_s
    assert reply.csi.psnr_db == 17.0
    assert reply.csi.noise_var == pytest.approx(10**-1.7)
    assert list(reply.probabilities) == [0.25, 0.75]


def test_edge_deadline_is_the_smaller_of_own_and_callers() -> None:
    edge = StandInHop()
    service = ChannelService(edge, deadline_s=2.0, seed=0)
    asyncio.run(service.transmit(transmission([0.1])))
    asyncio.run(service.transmit(transmission([0.1]), time_remaining_s=0.5))
    assert edge.timeouts[0] == 2.0
    assert 0 < edge.timeouts[1] <= 0.5


@pytest.mark.parametrize(
    "code", [grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION]
)
def test_caller_errors_pass_through_with_edge_message(code) -> None:
    service = ChannelService(failing_edge(code, "beta=5 outside the trained range"), seed=0)
    with pytest.raises(ServiceError) as info:
        asyncio.run(service.transmit(transmission([0.1])))
    assert info.value.code == code
    assert info.value.message == "beta=5 outside the trained range"


def test_edge_down_is_unavailable() -> None:
    service = ChannelService(
        failing_edge(grpc.StatusCode.UNAVAILABLE, "connection refused"),
        edge_target="edge:50052",
        seed=0,
    )
    with pytest.raises(ServiceError) as info:
        asyncio.run(service.transmit(transmission([0.1])))
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    assert "edge:50052" in info.value.message


def test_unexpected_edge_error_is_internal() -> None:
    service = ChannelService(failing_edge(grpc.StatusCode.DATA_LOSS), seed=0)
    with pytest.raises(ServiceError) as info:
        asyncio.run(service.transmit(transmission([0.1])))
    assert info.value.code == grpc.StatusCode.INTERNAL


@pytest.mark.parametrize("psnr_db", [float("nan"), float("inf"), -11.0, 61.0])
def test_set_psnr_rejects_bad_values(psnr_db) -> None:
    service = ChannelService(StandInHop(), seed=0)
    with pytest.raises(ServiceError, match="psnr_db") as info:
        service.set_psnr(psnr_db)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert service.state().psnr_db == 20.0


def test_state_reports_profile() -> None:
    service = ChannelService(StandInHop(), seed=0, edge_target="edge:1")
    state = service.set_profile(RandomWalkProfile(5, 15, 1, 10))
    assert state.profile.startswith("random walk") and state.psnr_db == 10.0
    assert state.edge_target == "edge:1"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--psnr", "nan"], "--psnr"),
        (["--pilots", "-1"], "--pilots"),
        (["--profile", "trace"], "--trace FILE"),
        (["--profile", "random-walk", "--walk-low", "9", "--walk-high", "3"], "low_db < high_db"),
        (["--edge", "nohostport"], "HOST:PORT"),
        (["--fading", "nakagami"], "--fading"),
        (["--fading", "rician", "--k-factor", "-1"], "--k-factor"),
        (["--fading", "rayleigh", "--coherence", "0"], "--coherence"),
        (["--fading", "rayleigh", "--k-factor", "3"], "--k-factor applies to --fading rician"),
        (["--coherence", "4"], "need --fading rayleigh or rician"),
        (["--fading", "rayleigh", "--fading-pilots", "0"], "--fading-pilots"),
    ],
)
def test_settings_errors_are_clear(argv, message, capsys) -> None:
    with pytest.raises(SystemExit):
        parse_settings(argv, env={})
    assert message in capsys.readouterr().err


def test_emulate_airtime_sleeps_the_modelled_time() -> None:
    service = ChannelService(StandInHop(), baud=1000.0, emulate_airtime=True, seed=0)
    reply = asyncio.run(service.transmit(transmission([0.1] * 50)))  # 50 symbols at 1000 Bd = 50 ms
    assert reply.airtime_s == pytest.approx(0.05)
    assert reply.timings.channel_total_s >= 0.05
    assert reply.timings.channel_s < 0.05  # the wait is air-time, not channel work


def test_edge_info_is_forwarded_with_a_deadline() -> None:
    timeouts = []

    async def info_call(timeout_s: float) -> pb.EdgeInfo:
        timeouts.append(timeout_s)
        return pb.EdgeInfo(model_id="m", serving=True)

    service = ChannelService(StandInHop(), deadline_s=2.0, edge_info_call=info_call, seed=0)
    assert asyncio.run(service.edge_info()).model_id == "m"
    assert asyncio.run(service.edge_info(0.5)).serving
    assert timeouts[0] == 2.0 and 0 < timeouts[1] <= 0.5


def test_edge_info_from_a_down_edge_is_unavailable() -> None:
    async def info_call(timeout_s: float) -> pb.EdgeInfo:
        raise RpcStatusError(grpc.StatusCode.UNAVAILABLE, "connection refused")

    service = ChannelService(StandInHop(), edge_info_call=info_call, edge_target="edge:1", seed=0)
    with pytest.raises(ServiceError) as info:
        asyncio.run(service.edge_info())
    assert info.value.code == grpc.StatusCode.UNAVAILABLE and "edge:1" in info.value.message


def test_a_transmissions_own_link_psnr_overrides_the_profile() -> None:
    edge = StandInHop()
    service = ChannelService(edge, seed=7)
    service.set_psnr(30.0)
    sent = np.zeros(50_000, dtype=np.float32)
    request = transmission(sent.tolist())
    request.link_psnr_db = 5.0
    reply = asyncio.run(service.transmit(request))
    noise = np.asarray(edge.received[0].symbols, dtype=np.float64)
    assert noise.var() == pytest.approx(10 ** (-0.5), rel=0.03)
    assert edge.received[0].psnr_db == 5.0 and reply.csi.psnr_db == 5.0
    assert service.current_psnr_db() == 30.0  # the profile is untouched


@pytest.mark.parametrize("link_psnr_db", [float("nan"), 61.0, -11.0])
def test_bad_link_psnr_is_invalid_argument(link_psnr_db: float) -> None:
    edge = StandInHop()
    request = transmission([0.1])
    request.link_psnr_db = link_psnr_db
    with pytest.raises(ServiceError) as info:
        asyncio.run(ChannelService(edge, seed=0).transmit(request))
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "link_psnr_db" in info.value.message and not edge.received


def test_group_id_that_cannot_be_a_header_is_invalid_argument() -> None:
    request = transmission([0.1])
    request.group_id = "caméra"
    with pytest.raises(ServiceError) as info:
        asyncio.run(ChannelService(StandInHop(), seed=0).transmit(request))
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_replies_are_counted_by_edge_replica() -> None:
    service = ChannelService(StandInHop(), seed=0)
    asyncio.run(service.transmit(transmission([0.1])))
    replies = service.metrics.edge_replies.labels(replica="unnamed")._value.get()
    assert replies == 1


def batch_of(*request_ids: str, group: str = "") -> pb.TransmissionBatch:
    items = []
    for request_id in request_ids:
        t = transmission([0.5, -0.5, 1.0])
        t.request_id = request_id
        t.group_id = group if request_id.startswith("g") else ""
        items.append(t)
    return pb.TransmissionBatch(items=items)


def test_a_batch_is_one_edge_call_and_each_item_keeps_its_outcome() -> None:
    edge = StandInHop()
    service = ChannelService(edge, seed=0, pilots=4, edge_batch_call=edge.batch)
    reply = asyncio.run(service.transmit_batch(batch_of("a", "bad-b", "g-c", "d", group="o")))
    assert edge.batch_sizes == [3]  # the grouped item never reaches the edge in a batch
    codes = [item.code for item in reply.items]
    assert codes == [0, grpc.StatusCode.INVALID_ARGUMENT.value[0],
                     grpc.StatusCode.INVALID_ARGUMENT.value[0], 0]  # fmt: skip
    assert "Transmit, not TransmitBatch" in reply.items[2].message
    for item, request_id in ((reply.items[0], "a"), (reply.items[3], "d")):
        assert item.reply.request_id == request_id
        assert item.reply.csi.n_pilots == 4 and item.reply.timings.preprocess_s == 0.01
        assert item.reply.n_symbols == 3 and item.reply.timings.channel_total_s > 0
    noisy = [t.symbols for t in edge.batches[0]]
    assert noisy[0] != noisy[1]  # each item got its own noise draw


def test_a_failed_edge_batch_call_is_every_forwarded_items_status() -> None:
    edge = StandInHop(down=(grpc.StatusCode.UNAVAILABLE, "connection refused"))
    service = ChannelService(edge, seed=0, edge_batch_call=edge.batch)
    reply = asyncio.run(service.transmit_batch(batch_of("a", "b")))
    assert {item.code for item in reply.items} == {grpc.StatusCode.UNAVAILABLE.value[0]}
    assert all("unavailable" in item.message for item in reply.items)


def test_an_edge_without_decode_batch_gets_one_decode_per_item() -> None:
    edge = StandInHop(no_batches=True)
    service = ChannelService(edge, seed=0, edge_batch_call=edge.batch)
    for _ in range(2):
        reply = asyncio.run(service.transmit_batch(batch_of("a", "b", "c")))
        assert [item.reply.request_id for item in reply.items] == ["a", "b", "c"]
    assert edge.batch_sizes == [3] and service.edge.edge_batch_call is None  # once, then unary
    assert len(edge.received) == 6


def test_an_oversized_batch_is_refused_whole() -> None:
    from shared.service.errors import MAX_BATCH_ITEMS

    edge = StandInHop()
    service = ChannelService(edge, seed=0, edge_batch_call=edge.batch)
    with pytest.raises(ServiceError) as failed:
        asyncio.run(
            service.transmit_batch(batch_of(*[f"r{i}" for i in range(MAX_BATCH_ITEMS + 1)]))
        )
    assert failed.value.code == grpc.StatusCode.INVALID_ARGUMENT and edge.batches == []


def test_reply_metrics_are_recorded_after_the_reply_is_returned() -> None:
    service = ChannelService(StandInHop(), seed=0)
    symbols = service.metrics.symbols

    async def transmit_and_count() -> tuple[float, float]:
        await service.transmit(transmission([0.5, -0.5, 0.25]))
        right_after = symbols._value.get()
        await asyncio.sleep(0)  # the loop's next turn
        return right_after, symbols._value.get()

    assert asyncio.run(transmit_and_count()) == (0.0, 3.0)


def test_fading_settings_build_the_channel() -> None:
    settings = parse_settings(
        ["--fading", "rician", "--k-factor", "3", "--coherence", "8", "--fading-csi", "ls",
         "--fading-pilots", "2", "--equalizer", "mmse"], env={},
    )  # fmt: skip
    fading = settings.build_fading()
    assert (fading.kind, fading.k_factor, fading.coherence) == ("rician", 3.0, 8)
    assert (fading.csi, fading.pilots, fading.equalizer) == ("ls", 2, "mmse")
    assert parse_settings([], env={}).build_fading().kind == "none"


def test_faded_transmissions_carry_gain_and_instantaneous_snr() -> None:
    from shared.fading import Fading, fade

    edge = StandInHop()
    service = ChannelService(edge, seed=5, fading=Fading("rayleigh", csi="ls", pilots=2,
                                                         coherence=4))  # fmt: skip
    symbols = np.linspace(-1, 1, 16).astype(np.float32)
    reply = asyncio.run(service.transmit(transmission(symbols.tolist())))
    received = edge.received[0]
    expected, fading_draw = fade(symbols[None], 20.0, service.fading, np.random.default_rng(5))
    assert np.allclose(received.symbols, expected[0], atol=1e-6)
    assert received.receiver_snr_db == pytest.approx(fading_draw.instantaneous_snr_db()[0])
    assert reply.csi.channel_gain == pytest.approx(fading_draw.gain.mean())
    assert reply.csi.instantaneous_snr_db == received.receiver_snr_db
    assert reply.csi.psnr_db == 20.0  # the average stays the channel's PSNR
    # 16 real symbols = 8 complex uses = 2 blocks of 4, 2 LS pilots each = 8 real pilot uses
    assert reply.airtime_s == pytest.approx(float(airtime_seconds(16 + 8)))
    assert service.state().fading.startswith("rayleigh, coherence 4")
    service.set_fading(Fading("none"))
    asyncio.run(service.transmit(transmission(symbols.tolist())))
    assert not edge.received[1].HasField("receiver_snr_db")


def test_digital_link_under_fading_counts_outages() -> None:
    pytest.importorskip("sionna.phy")
    from shared.fading import Fading

    edge = StandInHop()
    service = ChannelService(edge, seed=3, link_mode="ldpc-qam", fading=Fading("rayleigh"))
    service.set_psnr(8.0)
    lost = 0
    n = 60
    for k in range(n):
        t = pb.Transmission(request_id=f"r{k}", model_id="m", beta=1e-3, snr_db=8, d=4,
                            coded_indices=bytes(range(16)), n_coded=4)  # fmt: skip
        asyncio.run(service.transmit(t))
        received = edge.received[-1]
        assert received.HasField("channel_gain")
        lost += received.link_lost
        if received.link_lost:  # a lost block met a fade below the MCS's threshold
            assert received.receiver_snr_db < 8.0
    state = service.state()
    assert state.fading_outages == lost == state.blocks_failed
    # MCS for 8 dB has its threshold near 5 dB: P(|h|² < 10^(-0.3)) ≈ 0.39 under Rayleigh
    assert 0.15 < lost / n < 0.7
