"""Multi-device groups over two edge replicas, real processes on loopback: a K = 2 model, two
edge replicas behind one channel, two devices. The channel routes the links of one group to
one replica (ring hash on the group id, channel/edge_client.py), so every group is decided
complete on exactly one replica, and both replicas get groups. If the links of a group were
spread over the replicas, each half would wait out the group timeout and come back partial.
"""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from client.groups import run_groups, summarise_groups
from client.http import DeviceHttp, fashion_samples
from tests.live import needs_test_set
from tests.procs import running_stack

pytestmark = needs_test_set

N_IMAGES = 40
REPLICAS = ("edge", "edge-1")


def groups_decoded(stack, replica: str) -> dict[str, float]:
    """The replica's own count of groups decoded, by outcome, from its /metrics."""
    text = httpx.get(f"http://127.0.0.1:{stack.metrics_ports[replica]}/metrics").text
    counts = {"complete": 0.0, "partial": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "coinference_edge_groups_total":
                counts[sample.labels["outcome"]] = sample.value
    return counts


def test_groups_meet_on_one_replica(quick_multi_model_dir):
    with running_stack(
        quick_multi_model_dir, 20.0, n_devices=2, edge_replicas=2, metrics_ports=True,
        edge_flags=["--device", "cpu", "--group-timeout-s", 1.0],
        channel_flags=["--seed", 0], start_timeout_s={"edge": 90},
    ) as stack:  # fmt: skip
        clients = [DeviceHttp(url, timeout_s=10.0) for url in stack.urls]
        try:
            groups = run_groups(clients, fashion_samples(N_IMAGES))
        finally:
            for client in clients:
                client.close()
        summary = summarise_groups(groups)
        counts = {name: groups_decoded(stack, name) for name in REPLICAS}

    assert summary["decided"] == N_IMAGES and summary["agree"], summary
    assert summary["partial"] == 0, (summary, counts)
    assert sum(c["partial"] for c in counts.values()) == 0, counts
    assert sum(c["complete"] for c in counts.values()) == N_IMAGES, counts
    assert all(c["complete"] > 0 for c in counts.values()), counts  # both replicas serve groups
    for group in groups:  # both links of a group answered by the same replica
        replicas = {o.reply.get("edge_replica") for o in group.answered}
        assert len(replicas) == 1 and None not in replicas, replicas
