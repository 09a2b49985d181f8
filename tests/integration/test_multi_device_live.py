"""Several devices, one edge, live (QML-IB, DESIGN §7): edge, channel and two devices of a
K = 2 model as real processes on loopback. One image goes to both devices under one group id;
each crops its own half and sends over its own link; the edge decides once and answers both.
One link at a low PSNR; bad group fields refused; the last test stops device 1 and device 0
still gets answers, marked partial."""

from __future__ import annotations

import subprocess
import sys
import uuid

import grpc
import httpx
import pytest

from client.groups import run_groups, summarise_groups
from client.http import DeviceHttp, fashion_samples
from shared.rpc import coinference_pb2 as pb
from shared.rpc import coinference_pb2_grpc as pb_grpc
from tests.live import needs_test_set
from tests.procs import REPO, running_stack

pytestmark = needs_test_set

GROUP_TIMEOUT_S = 0.4
N_IMAGES = 40


@pytest.fixture(scope="module")
def stack(quick_multi_model_dir):
    with running_stack(
        quick_multi_model_dir, 20.0, n_devices=2,
        edge_flags=["--device", "cpu", "--group-timeout-s", GROUP_TIMEOUT_S],
        channel_flags=["--seed", 0], start_timeout_s={"edge": 90},
    ) as stack:  # fmt: skip
        yield stack


@pytest.fixture(scope="module")
def clients(stack):
    clients = [DeviceHttp(url, timeout_s=10.0) for url in stack.urls]
    yield clients
    for client in clients:
        client.close()


@pytest.fixture(scope="module")
def samples():
    return fashion_samples(N_IMAGES)


def test_both_devices_get_one_group_decision(clients, samples):
    groups = run_groups(clients, samples)
    summary = summarise_groups(groups)
    assert summary["decided"] == N_IMAGES and summary["partial"] == 0 and summary["agree"]
    assert summary["accuracy"] >= 0.6  # a 2-epoch quick model on half images each; chance 0.1
    reply = groups[0].outcomes[1].reply
    assert reply["group"]["link_index"] == 1 and reply["group"]["n_links"] == 2
    assert reply["symbols_sent"] == 16 and reply["bits_sent"] == 64
    model = clients[1].model()
    assert (model["n_links"], model["link_index"], model["view"]["left"]) == (2, 1, 14)


def test_each_link_has_its_own_psnr(clients, samples):
    clients[1].set_psnr(0.0)  # device 1's PSNR knob sets its own link
    try:
        assert clients[0].channel()["psnr_db"] == 20.0
        assert clients[1].channel()["psnr_db"] == 0.0
        groups = run_groups(clients, samples[:20])
    finally:
        clients[1].set_psnr(20.0)
    first = groups[0].outcomes
    assert (first[0].reply["channel_psnr_db"], first[1].reply["channel_psnr_db"]) == (20.0, 0.0)
    assert summarise_groups(groups)["accuracy"] >= 0.5


def test_client_feeds_one_image_to_all_devices(stack):
    result = subprocess.run(
        [sys.executable, "-m", "client", "--devices", ",".join(stack.urls),
         "--test-samples", "8"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8/8 observations decided" in result.stdout and "0 partial" in result.stdout


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"group_id": ""}, "needs a group_id"),
        ({"n_links": 3}, "n_links=3"),
        ({"link_index": 2}, "link_index=2"),
        ({"group_id": "g" * 200}, "bad group_id"),
    ],
)
def test_bad_group_fields_are_refused(stack, fields, message):
    info = httpx.get(f"{stack.url}/v1/model").json()
    base = {
        "request_id": "bad",
        "model_id": info["model_id"],
        "beta": 1e-3,
        "snr_db": 10.0,
        "symbols": [0.1] * 16,
        "group_id": uuid.uuid4().hex,
        "link_index": 0,
        "n_links": 2,
    }
    with grpc.insecure_channel(stack.channel_target) as channel:
        with pytest.raises(grpc.RpcError) as err:
            pb_grpc.ChannelStub(channel).Transmit(pb.Transmission(**(base | fields)), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in err.value.details()


def test_a_stopped_device_leaves_the_other_answered_and_partial(stack, clients, samples):
    stack.stop("device1")
    groups = run_groups(clients, samples[:5])
    for group in groups:
        device0, device1 = group.outcomes
        assert device0.ok and not device1.ok and device1.status == 599  # no answer
        assert device0.reply["group"]["partial"] and device0.reply["group"]["missing_links"] == [1]
        assert device0.reply["group"]["group_wait_s"] >= GROUP_TIMEOUT_S * 0.9
    assert sum(g.label == g.sample.label for g in groups) >= 2  # left half alone still decides
