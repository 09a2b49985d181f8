"""Access control shared by the services: TLS on the gRPC hops and the admin token.

TLS (off by default: plaintext on a trusted network or loopback):

- a server (channel, edge) serves TLS with ``--tls-cert`` / ``--tls-key`` (PEM); with
  ``--tls-client-ca`` it requires a client certificate signed by that CA (mutual TLS);
- a client (device -> channel, channel -> edge) trusts the server through a CA file and, for
  mutual TLS, presents its own certificate and key.

Admin token: when a service has one (``--admin-token-file`` or ``--admin-token``), the
calls that change its state require ``Authorization: Bearer <token>`` (HTTP header, or the
gRPC metadata key ``authorization``); inference and reads stay open. Tokens are compared in
constant time (:func:`hmac.compare_digest`).
"""

from __future__ import annotations

import hmac
from pathlib import Path

import grpc

AUTH_METADATA_KEY = "authorization"  # gRPC metadata keys are lower case
BEARER = "bearer"


def read_pem(path: Path | str | None) -> bytes | None:
    return None if path is None else Path(path).read_bytes()


def check_tls_files(
    what: str,
    cert: Path | None,
    key: Path | None,
    ca: Path | None = None,
    *,
    cert_flag: str,
    key_flag: str,
    ca_flag: str,
    ca_needs_cert: bool = False,
) -> None:
    """ValueError unless the given TLS files exist and cert and key come together.

    ``ca_needs_cert``: the CA alone makes no sense (a server's client CA without its own
    certificate)."""
    if (cert is None) != (key is None):
        raise ValueError(f"{what}: {cert_flag} and {key_flag} go together (PEM files)")
    if ca_needs_cert and ca is not None and cert is None:
        raise ValueError(f"{what}: {ca_flag} (mutual TLS) needs {cert_flag} and {key_flag}")
    for flag, path in ((cert_flag, cert), (key_flag, key), (ca_flag, ca)):
        if path is not None and not Path(path).is_file():
            raise ValueError(f"{flag}: file {path} does not exist")


def server_credentials(
    cert: Path | None, key: Path | None, client_ca: Path | None = None
) -> grpc.ServerCredentials | None:
    """TLS credentials of a server (None = plaintext); ``client_ca`` requires client certs."""
    if cert is None or key is None:
        return None
    return grpc.ssl_server_credentials(
        [(read_pem(key), read_pem(cert))],
        root_certificates=read_pem(client_ca),
        require_client_auth=client_ca is not None,
    )


def channel_credentials(
    ca: Path | None, cert: Path | None = None, key: Path | None = None
) -> grpc.ChannelCredentials | None:
    """TLS credentials of a client (None = plaintext): trust ``ca``; present ``cert``/``key``
    for mutual TLS. A client certificate alone (no CA) trusts the system roots."""
    if ca is None and cert is None:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=read_pem(ca),
        private_key=read_pem(key),
        certificate_chain=read_pem(cert),
    )


def aio_channel(
    target: str, credentials: grpc.ChannelCredentials | None, options=()
) -> grpc.aio.Channel:
    """A ``grpc.aio`` client channel, TLS when ``credentials`` are given."""
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=list(options))
    return grpc.aio.secure_channel(target, credentials, options=list(options))


def load_admin_token(token: str | None, token_file: Path | None) -> str | None:
    """The admin token from the value or the file (one line; surrounding space dropped).

    ValueError for an empty token or an unreadable file; None when neither is given."""
    if token is not None and token_file is not None:
        raise ValueError("give --admin-token or --admin-token-file, not both")
    if token_file is not None:
        try:
            token = Path(token_file).read_text().strip()
        except OSError as exc:
            raise ValueError(f"--admin-token-file: cannot read {token_file}: {exc}") from None
        if not token:
            raise ValueError(f"--admin-token-file: {token_file} is empty")
    elif token is not None:
        token = token.strip()
        if not token:
            raise ValueError("--admin-token is empty (leave it unset for no token)")
    return token


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value (None if absent or another
    scheme)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != BEARER or not token.strip():
        return None
    return token.strip()


def token_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison (no early exit that would leak a prefix by timing)."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def auth_metadata(token: str | None) -> tuple[tuple[str, str], ...] | None:
    """gRPC call metadata carrying ``token`` as a bearer token (None without a token)."""
    return None if token is None else ((AUTH_METADATA_KEY, f"Bearer {token}"),)


def check_admin(what: str, given: str | None, expected: str | None) -> str | None:
    """None when allowed; else the message saying what to send (for 401/UNAUTHENTICATED)."""
    if expected is None:
        return None
    if given is None:
        return (
            f"{what} needs the admin token: send 'Authorization: Bearer <token>' "
            "(the token set with --admin-token-file / --admin-token)"
        )
    if not token_matches(given, expected):
        return f"{what}: wrong admin token"
    return None
