"""Multi-device channel: a PSNR (profile) per link; links without their own use the default."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from channel.service import ChannelService
from shared.rpc import coinference_pb2 as pb
from shared.service.errors import ServiceError


async def _no_edge(transmission, timeout_s):  # corrupt() never calls the edge
    raise AssertionError("not called")


def _group_tx(link: int, n: int = 20000) -> pb.Transmission:
    return pb.Transmission(model_id="m", symbols=np.zeros(n).tolist(), group_id="g",
                           link_index=link, n_links=2)  # fmt: skip


def test_each_link_gets_its_own_psnr_and_noise():
    service = ChannelService(_no_edge, seed=0)
    service.set_psnr(20.0)
    state = service.set_psnr(0.0, link=1)
    assert state.link == 1 and state.psnr_db == 0.0 and dict(state.link_psnr_db) == {1: 0.0}
    good, bad = service.corrupt(_group_tx(0)), service.corrupt(_group_tx(1))
    assert (good.psnr_db, bad.psnr_db) == (20.0, 0.0)
    assert np.var(good.symbols) == pytest.approx(0.01, rel=0.05)
    assert np.var(bad.symbols) == pytest.approx(1.0, rel=0.05)
    single = service.corrupt(pb.Transmission(model_id="m", symbols=[0.0], link_index=1))
    assert single.psnr_db == 20.0  # no group id: the default profile
    assert service.state().psnr_db == 20.0


def test_a_link_outside_the_range_is_refused():
    service = ChannelService(_no_edge)
    with pytest.raises(ServiceError) as err:
        service.set_psnr(10.0, link=64)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_a_link_can_have_its_own_profile():
    from channel.profiles import RandomWalkProfile

    service = ChannelService(_no_edge, seed=0)
    state = service.set_profile(RandomWalkProfile(5.0, 15.0, 1.0, 0.1, seed=0), link=2)
    assert state.link == 2 and 5.0 <= state.psnr_db <= 15.0
    assert "random" in state.profile.lower() and service.state().psnr_db == 20.0
