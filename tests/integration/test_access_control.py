"""Access control on the live stack (real processes): mutual TLS on both gRPC hops
(device -> channel -> edge) with certificates made at test time, and an admin token on the
device and the channel. Inference and reads stay open; state changes need the token; a
gRPC client without the CA, or without a client certificate, is refused."""

from __future__ import annotations

import grpc
import httpx
import pytest

from shared.rpc import coinference_pb2 as pb
from shared.rpc import coinference_pb2_grpc as pb_grpc
from shared.service.security import auth_metadata, channel_credentials
from tests.procs import running_stack
from tests.tls_certs import make_certs

TOKEN = "live-admin-token"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def stack(quick_model_dir, certs, tmp_path_factory):
    token_file = tmp_path_factory.mktemp("token") / "admin-token"
    token_file.write_text(TOKEN + "\n")
    server_tls = ["--tls-cert", certs.server_cert, "--tls-key", certs.server_key,
                  "--tls-client-ca", certs.ca]  # fmt: skip
    with running_stack(
        quick_model_dir,
        psnr_db=20.0,
        metrics_ports=True,
        edge_flags=server_tls,
        channel_flags=[
            *server_tls,
            "--admin-token-file",
            token_file,
            "--edge-tls-ca",
            certs.ca,
            "--edge-tls-cert",
            certs.client_cert,
            "--edge-tls-key",
            certs.client_key,
        ],  # fmt: skip
        device_flags=[
            "--admin-token-file",
            token_file,
            "--channel-tls-ca",
            certs.ca,
            "--channel-tls-cert",
            certs.client_cert,
            "--channel-tls-key",
            certs.client_key,
        ],  # fmt: skip
        grpc_tls=(certs.ca, certs.client_cert, certs.client_key),
    ) as live:
        yield live


def _pixels(value: int = 128) -> dict:
    return {"pixels": [[value] * 28 for _ in range(28)]}


def _get_state(target: str, credentials) -> float | grpc.StatusCode:
    channel = (
        grpc.insecure_channel(target)
        if credentials is None
        else grpc.secure_channel(target, credentials)
    )
    with channel:
        try:
            return pb_grpc.ChannelStub(channel).GetState(pb.GetStateRequest(), timeout=3).psnr_db
        except grpc.RpcError as exc:
            return exc.code()


def test_tls_stack_serves_inference(stack):
    reply = httpx.post(f"{stack.url}/v1/infer", json=_pixels(), timeout=10)
    assert reply.status_code == 200, reply.text
    assert reply.json()["channel_psnr_db"] == pytest.approx(20.0)
    assert httpx.get(f"{stack.url}/readyz", timeout=10).status_code == 200


@pytest.mark.parametrize("service", ["channel", "edge"])
def test_grpc_client_without_the_ca_is_refused(stack, certs, service):
    target = stack.channel_target if service == "channel" else stack.edge_target
    for credentials in (
        None,  # plaintext
        channel_credentials(certs.other_ca, certs.client_cert, certs.client_key),
    ):
        assert _get_state(target, credentials) == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_refuses_a_client_without_a_certificate(stack, certs):
    assert _get_state(stack.channel_target, channel_credentials(certs.ca)) == (
        grpc.StatusCode.UNAVAILABLE
    )
    full = channel_credentials(certs.ca, certs.client_cert, certs.client_key)
    assert isinstance(_get_state(stack.channel_target, full), float)


def test_knob_changes_need_the_admin_token(stack):
    url = f"{stack.url}/v1/knobs"
    beta = httpx.get(url, timeout=5).json()["beta"]
    missing = httpx.put(url, json={"beta": beta}, timeout=5)
    assert missing.status_code == 401
    assert "Authorization: Bearer" in missing.json()["detail"]
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = httpx.put(url, json={"beta": beta}, headers={"Authorization": "Bearer no"}, timeout=5)
    assert wrong.status_code == 401 and "wrong admin token" in wrong.json()["detail"]
    right = httpx.put(
        url, json={"beta": beta}, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
    )
    assert right.status_code == 200, right.text
    # a body error from an unauthenticated caller is still a 401 (nothing validated for it)
    assert httpx.put(url, json={"beta": "x"}, timeout=5).status_code == 401


def test_channel_psnr_needs_the_token_and_the_device_forwards_it(stack):
    url = f"{stack.url}/v1/channel/psnr"
    assert httpx.put(url, json={"psnr_db": 12.0}, timeout=5).status_code == 401
    right = httpx.put(
        url, json={"psnr_db": 12.0}, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
    )
    assert right.status_code == 200, right.text  # the channel checked the forwarded token
    assert right.json()["psnr_db"] == pytest.approx(12.0)
    httpx.put(url, json={"psnr_db": 20.0}, headers={"Authorization": f"Bearer {TOKEN}"})


def test_channel_admin_rpcs_need_the_token(stack, certs):
    credentials = channel_credentials(certs.ca, certs.client_cert, certs.client_key)
    with grpc.secure_channel(stack.channel_target, credentials) as channel:
        stub = pb_grpc.ChannelStub(channel)
        for call, request in (
            (stub.SetPsnr, pb.SetPsnrRequest(psnr_db=20.0)),
            (stub.SetProfile, pb.SetProfileRequest(fixed=pb.FixedProfile(psnr_db=20.0))),
        ):
            with pytest.raises(grpc.RpcError) as info:
                call(request, timeout=3)
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "admin token" in info.value.details()
            assert call(request, timeout=3, metadata=auth_metadata(TOKEN)).psnr_db == 20.0
        # inference stays open: Transmit needs no token (the edge answers, here: wrong id)
        with pytest.raises(grpc.RpcError) as info:
            stub.Transmit(pb.Transmission(model_id="other", symbols=[0.1]), timeout=3)
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    metrics = httpx.get(f"http://127.0.0.1:{stack.metrics_ports['channel']}/metrics").text
    assert 'code="UNAUTHENTICATED",method="SetPsnr",service="channel"' in metrics
