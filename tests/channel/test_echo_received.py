"""Transmission.echo_received (the device page's constellation): the channel copies the
symbols it delivered to the edge into the reply, only when asked and only on the analog link.
ChannelService without sockets, the in-process edge of tests/stand_ins.py."""

from __future__ import annotations

import asyncio

import numpy as np

from channel.service import ChannelService
from tests.channel.test_channel_service import transmission
from tests.stand_ins import StandInHop

SENT = [0.5, -0.25, 1.0, -1.0, 0.0, 0.75]


def test_the_reply_carries_what_the_edge_received_when_asked():
    edge = StandInHop()
    service = ChannelService(edge, seed=7)
    service.set_psnr(5.0)
    asked = transmission(SENT)
    asked.echo_received = True
    reply = asyncio.run(service.transmit(asked))
    delivered = np.asarray(edge.received[0].symbols)
    assert np.array_equal(np.asarray(reply.received_symbols), delivered)
    assert not np.allclose(delivered, SENT)  # noisy at 5 dB: not the sent symbols back


def test_nothing_extra_unless_asked():
    service = ChannelService(StandInHop(), seed=7)
    reply = asyncio.run(service.transmit(transmission(SENT)))
    assert len(reply.received_symbols) == 0
