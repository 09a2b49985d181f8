"""device.reply.constellation_fields on replies built by hand (no processes): what the page
plots for each link, and a channel that did not send the received symbols back."""

from __future__ import annotations

import numpy as np

from device.reply import constellation_fields
from shared.rpc import coinference_pb2 as pb

SENT = np.array([0.5, -0.25, 1.0], dtype=np.float32)


def test_analog_reply_carries_both_sides():
    reply = pb.InferenceReply(link_mode="analog", received_symbols=[0.4, -0.2, 0.9])
    fields = constellation_fields(reply, SENT, "peak")
    assert fields["sent"] == [0.5, -0.25, 1.0]
    assert np.allclose(fields["received"], [0.4, -0.2, 0.9])
    assert fields["note"] is None and fields["power"] == "peak"


def test_digital_link_has_no_received_symbols_and_says_why():
    reply = pb.InferenceReply(link_mode="ldpc-qam")
    fields = constellation_fields(reply, SENT, "peak")
    assert fields["received"] == []
    assert fields["note"] == "the ldpc-qam link carries the entropy-coded bits, not these symbols"


def test_a_channel_that_did_not_echo_is_named():
    # a channel built before Transmission.echo_received: the field stays empty
    fields = constellation_fields(pb.InferenceReply(), SENT, "average")
    assert fields["received"] == [] and fields["power"] == "average"
    assert fields["note"] == "the channel did not return the received symbols"
