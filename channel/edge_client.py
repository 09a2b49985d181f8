"""How the channel reaches the edge replicas: gRPC client-side load balancing, health-checked.

The edge target may resolve to many replicas: ``dns:///edge_server:50052`` (every address of
the name, what ``docker compose --scale edge_server=N`` provides), a static list
``ipv4:127.0.0.1:p1,127.0.0.1:p2``, or one ``HOST:PORT``. gRPC resolves it and balances; this
module only chooses the policies (service configs), so no balancing is home-made:

- Ungrouped transmissions (the single-device system: stateless per request) go over a
  channel with ``round_robin``.
- Grouped transmissions (QML-IB: the K links of one observation carry one ``group_id`` and
  must meet at one replica, which fuses them) go over a second channel with ``ring_hash``,
  hashing the ``x-coinference-group`` call header that carries the group id (gRFC A76).
  Every link of a group lands on the same replica; the ring depends only on the set of
  addresses, so several channel proxies with the same target agree; when a replica leaves,
  only the groups that hashed to it move. While the connection to a group's replica is
  being (re)established, ring_hash picks the next connected replica in the ring, so a group
  that straddles that moment can be split (its links then count as lost at the edge).

Both service configs carry ``healthCheckConfig`` (gRFC A17): each channel watches the
standard health service of every replica (service ``coinference.v1.Edge``, which the edge
sets NOT_SERVING while its decoder cannot run or while it shuts down) and picks only
replicas that are connected and SERVING. A dead replica leaves with its connection.

grpcio gates the ring_hash request-hash header behind the experiment
``GRPC_EXPERIMENTAL_RING_HASH_SET_REQUEST_HASH_KEY`` (read when the first such policy is
built); :func:`enable_group_hashing` sets it for this process.
"""

from __future__ import annotations

import json
import os
import re

from shared.rpc import coinference_pb2 as pb
from shared.rpc import coinference_pb2_grpc as pb_grpc
from shared.service.security import aio_channel

GROUP_HASH_HEADER = "x-coinference-group"
RING_HASH_EXPERIMENT = "GRPC_EXPERIMENTAL_RING_HASH_SET_REQUEST_HASH_KEY"
EDGE_HEALTH_SERVICE = "coinference.v1.Edge"
SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:")
_HOST_PORT = re.compile(r"^(\[[0-9a-fA-F:]+\]|[^:\s,/]+):(\d{1,5})$")


def check_edge_target(target: str) -> str:
    """``target`` if gRPC can resolve it as given; ValueError naming the accepted forms."""
    forms = "HOST:PORT, dns:///HOST:PORT or ipv4:HOST:PORT,HOST:PORT,..."
    text = target
    if text.startswith("ipv4:"):
        parts = text[len("ipv4:") :].split(",")
        bad = [p for p in parts if not _valid_host_port(p)]
        if bad:
            raise ValueError(f"--edge: bad address {bad[0]!r} in {target!r}; expected {forms}")
        return text
    if text.startswith("dns:"):
        name = text[len("dns:") :]
        name = name.split("/", 3)[-1] if name.startswith("//") else name
        if not _valid_host_port(name):
            raise ValueError(f"--edge: {target!r} needs a HOST:PORT after dns:///; {forms}")
        return text
    if text.startswith(SCHEMES):
        return text
    if not _valid_host_port(text):
        raise ValueError(f"--edge must be one of {forms}; got {target!r}")
    return text


def edge_addresses(target: str) -> int:
    """How many replica addresses ``target`` names: those of an ``ipv4:``/``ipv6:`` list,
    else 1 (a DNS name's count is known only to the resolver)."""
    if target.startswith(("ipv4:", "ipv6:")):
        return max(1, len([part for part in target[5:].split(",") if part]))
    return 1


def _valid_host_port(text: str) -> bool:
    match = _HOST_PORT.match(text)
    return bool(match) and 0 < int(match.group(2)) <= 65535


def service_config(policy: str, health_check: bool = True) -> str:
    """The JSON service config of the edge channel: ``policy`` is ``"round_robin"`` or
    ``"ring_hash"`` (hashing :data:`GROUP_HASH_HEADER`); health-checked unless told not."""
    if policy == "round_robin":
        lb = {"round_robin": {}}
    elif policy == "ring_hash":
        lb = {"ring_hash_experimental": {"requestHashHeader": GROUP_HASH_HEADER}}
    else:
        raise ValueError(f"policy must be 'round_robin' or 'ring_hash', got {policy!r}")
    config: dict = {"loadBalancingConfig": [lb]}
    if health_check:
        config["healthCheckConfig"] = {"serviceName": EDGE_HEALTH_SERVICE}
    return json.dumps(config)


def channel_options(policy: str, health_check: bool = True) -> list[tuple[str, object]]:
    """gRPC channel options that apply :func:`service_config` (and ignore any config the
    resolver might supply, e.g. a DNS TXT record)."""
    return [
        ("grpc.service_config", service_config(policy, health_check)),
        ("grpc.service_config_disable_resolution", 1),
    ]


def enable_group_hashing() -> None:
    """Turn on grpcio's ring_hash request-hash header for this process (before the first
    grouped call; without it every grouped call fails with "hash attribute not present")."""
    os.environ[RING_HASH_EXPERIMENT] = "true"


def group_metadata(group_id: str) -> tuple[tuple[str, str], ...] | None:
    """Call metadata that routes a grouped transmission (None for an ungrouped one)."""
    return ((GROUP_HASH_HEADER, group_id),) if group_id else None


def check_group_id(group_id: str) -> None:
    """ValueError unless ``group_id`` can travel as a call header (printable ASCII, <= 256)."""
    if len(group_id) > 256 or not all(" " <= c <= "~" for c in group_id):
        raise ValueError(
            f"group_id must be printable ASCII of at most 256 characters, got {group_id[:40]!r}"
        )


class EdgeClient:
    """Two aio channels to the same edge target: ``round_robin`` for ungrouped transmissions,
    ``ring_hash`` on the group header for grouped ones; both health-checked."""

    def __init__(self, target: str, credentials=None, options=(), health_check: bool = True):
        enable_group_hashing()
        self.target = target
        self.channels = {
            policy: aio_channel(
                target, credentials, [*options, *channel_options(policy, health_check)]
            )
            for policy in ("round_robin", "ring_hash")
        }
        self.stubs = {policy: pb_grpc.EdgeStub(ch) for policy, ch in self.channels.items()}

    def decode(self, transmission: pb.Transmission, timeout_s: float):
        """The edge's Decode call (an awaitable), routed by the transmission's group id."""
        if transmission.group_id:
            return self.stubs["ring_hash"].Decode(
                transmission, timeout=timeout_s, metadata=group_metadata(transmission.group_id)
            )
        return self.stubs["round_robin"].Decode(transmission, timeout=timeout_s)

    def decode_batch(self, batch: pb.TransmissionBatch, timeout_s: float):
        """The edge's DecodeBatch (ungrouped items only), on one round-robin replica."""
        return self.stubs["round_robin"].DecodeBatch(batch, timeout=timeout_s)

    def info(self, timeout_s: float):
        """GetInfo of one (round-robin) replica."""
        return self.stubs["round_robin"].GetInfo(pb.GetInfoRequest(), timeout=timeout_s)

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()
