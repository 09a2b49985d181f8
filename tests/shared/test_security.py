"""Access control in the service core, in-process (no service processes): TLS and mutual
TLS on the aio server helper, the admin token on admin methods (UNAUTHENTICATED, counted),
token parsing and comparison, the settings that carry them, and local-only default binds."""

from __future__ import annotations

import asyncio
import re

import grpc
import pytest

from channel.settings import ChannelSettings
from channel.settings import parse_settings as channel_settings
from device.settings import DeviceSettings
from edge_server.settings import EdgeSettings
from shared.rpc import coinference_pb2 as pb
from shared.rpc import coinference_pb2_grpc as pb_grpc
from shared.service.metrics import ServiceMetrics
from shared.service.security import (
    auth_metadata,
    bearer_token,
    channel_credentials,
    check_admin,
    server_credentials,
    token_matches,
)
from shared.service.settings import UsageError
from tests.loopback import service_grpc_server
from tests.procs import REPO
from tests.tls_certs import make_certs

TOKEN = "s3cret-token"


class Channel(pb_grpc.ChannelServicer):
    async def SetPsnr(self, request, context):
        return pb.ChannelState(psnr_db=request.psnr_db)

    async def GetState(self, request, context):
        return pb.ChannelState(psnr_db=20.0)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


async def _serve_and_call(server_creds, client_creds, calls, admin_token=None):
    """Start a Channel server, run ``calls(stub)`` from one client; returns (result, metrics)."""
    metrics = ServiceMetrics("channel")
    async with service_grpc_server(
        "Channel", Channel(), metrics, credentials=server_creds, admin_methods=("SetPsnr",),
        admin_token=admin_token,
    ) as target:  # fmt: skip
        channel = (
            grpc.aio.insecure_channel(target)
            if client_creds is None
            else grpc.aio.secure_channel(target, client_creds)
        )
        async with channel:
            return await calls(pb_grpc.ChannelStub(channel)), metrics


async def _state(stub):
    return (await stub.GetState(pb.GetStateRequest(), timeout=3)).psnr_db


def _outcome(server_creds, client_creds):
    """GetState's PSNR, or the status code the call failed with."""

    async def call(stub):
        try:
            return await _state(stub)
        except grpc.aio.AioRpcError as exc:
            return exc.code()

    return asyncio.run(_serve_and_call(server_creds, client_creds, call))[0]


def test_tls_server_serves_a_client_that_trusts_its_ca(certs):
    creds = server_credentials(certs.server_cert, certs.server_key)
    assert _outcome(creds, channel_credentials(certs.ca)) == 20.0


@pytest.mark.parametrize("client", ["plaintext", "other CA", "system roots"])
def test_tls_server_refuses_a_client_without_its_ca(certs, client):
    creds = server_credentials(certs.server_cert, certs.server_key)
    client_creds = {
        "plaintext": None,
        "other CA": channel_credentials(certs.other_ca),
        "system roots": grpc.ssl_channel_credentials(),
    }[client]
    assert _outcome(creds, client_creds) == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_refuses_a_client_without_a_certificate(certs):
    creds = server_credentials(certs.server_cert, certs.server_key, client_ca=certs.ca)
    assert _outcome(creds, channel_credentials(certs.ca)) == grpc.StatusCode.UNAVAILABLE
    with_cert = channel_credentials(certs.ca, certs.client_cert, certs.client_key)
    assert _outcome(creds, with_cert) == 20.0


def test_admin_methods_need_the_token_and_failures_are_counted():
    async def calls(stub):
        outcomes = {}
        for name, token in (("none", None), ("wrong", "nope"), ("right", TOKEN)):
            try:
                reply = await stub.SetPsnr(
                    pb.SetPsnrRequest(psnr_db=7.0), timeout=3, metadata=auth_metadata(token)
                )
                outcomes[name] = reply.psnr_db
            except grpc.aio.AioRpcError as exc:
                outcomes[name] = (exc.code(), exc.details())
        outcomes["read"] = await _state(stub)  # reads stay open
        return outcomes

    outcomes, metrics = asyncio.run(_serve_and_call(None, None, calls, admin_token=TOKEN))
    assert outcomes["none"][0] == grpc.StatusCode.UNAUTHENTICATED
    assert "needs the admin token" in outcomes["none"][1]
    assert "authorization: Bearer" in outcomes["none"][1]
    assert outcomes["wrong"] == (grpc.StatusCode.UNAUTHENTICATED, "SetPsnr: wrong admin token")
    assert outcomes["right"] == 7.0 and outcomes["read"] == 20.0
    assert metrics.requests_with("SetPsnr", "UNAUTHENTICATED") == 2
    assert metrics.requests_with("SetPsnr", "OK") == 1


def test_without_a_token_admin_methods_are_open():
    async def calls(stub):
        return (await stub.SetPsnr(pb.SetPsnrRequest(psnr_db=3.0), timeout=3)).psnr_db

    assert asyncio.run(_serve_and_call(None, None, calls))[0] == 3.0


def test_bearer_parsing_and_constant_time_match():
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer   abc ") == "abc"
    assert bearer_token("Basic abc") is None and bearer_token(None) is None
    assert bearer_token("Bearer ") is None
    assert token_matches("abc", "abc") and not token_matches("abd", "abc")
    assert not token_matches(None, "abc") and not token_matches("ab", "abc")
    assert check_admin("X", None, None) is None  # no token configured: open
    assert "needs the admin token" in check_admin("X", None, "abc")


def test_token_file_is_read_and_never_printed(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    settings = channel_settings(["--admin-token-file", str(token_file)], env={})
    assert settings.admin_token_value() == TOKEN
    settings = channel_settings([], env={"CHANNEL_ADMIN_TOKEN": TOKEN})
    assert settings.admin_token_value() == TOKEN
    assert TOKEN not in settings.describe() and "**********" in settings.describe()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tls-cert", "{cert}"], "--tls-cert and --tls-key go together"),
        (["--tls-client-ca", "{ca}"], "--tls-client-ca (mutual TLS) needs --tls-cert"),
        (["--tls-cert", "/nonexistent.pem", "--tls-key", "{key}"], "does not exist"),
        (["--edge-tls-cert", "{cert}"], "--edge-tls-cert and --edge-tls-key go together"),
        (["--admin-token-file", "{empty}"], "is empty"),
        (["--admin-token", "a", "--admin-token-file", "{empty}"], "not both"),
    ],
)
def test_bad_access_settings_are_usage_errors(certs, tmp_path, capsys, argv, message):
    empty = tmp_path / "empty"
    empty.write_text("\n")
    names = {"cert": certs.server_cert, "key": certs.server_key, "ca": certs.ca, "empty": empty}
    with pytest.raises(UsageError):
        channel_settings([arg.format(**names) for arg in argv], env={})
    assert message in capsys.readouterr().err


def test_local_runs_bind_loopback_and_compose_binds_the_service_network():
    assert EdgeSettings().host == "127.0.0.1"
    assert ChannelSettings().host == "127.0.0.1"
    assert DeviceSettings(model="m").host == "127.0.0.1"
    compose = (REPO / "docker-compose.yml").read_text()
    for prefix in ("EDGE", "CHANNEL", "DEVICE"):
        assert re.search(rf"^\s+{prefix}_HOST: 0\.0\.0\.0$", compose, re.M), prefix


def test_limits_and_timeouts_are_settings():
    device = DeviceSettings(model="m")
    assert device.max_upload_bytes > 0 and device.max_message_bytes > 0
    assert device.http_body_timeout_s > 0 and device.http_keepalive_s > 0
    assert EdgeSettings().max_message_bytes == ChannelSettings().max_message_bytes
