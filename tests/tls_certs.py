"""Certificates made at test time with the ``openssl`` CLI (EC P-256, valid two days).

    certs = make_certs(tmp_path)
    certs.ca, certs.server_cert, certs.server_key, certs.client_cert, certs.client_key

The server certificate names ``localhost`` and ``127.0.0.1``; the client certificate is
for client authentication (mutual TLS). ``other_ca`` signed nothing here: a client that
trusts only it cannot verify the server.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

OPENSSL = shutil.which("openssl")
_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class Certs:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def _run(*args: object, cwd: Path) -> None:
    result = subprocess.run([OPENSSL, *map(str, args)], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args}: {result.stderr}")


def _self_signed(folder: Path, name: str) -> None:
    _run("req", "-x509", *_KEY, "-keyout", f"{name}.key", "-out", f"{name}.pem",
         "-days", 2, "-subj", f"/CN={name}", cwd=folder)  # fmt: skip


def _signed(folder: Path, name: str, usage: str, san: str | None) -> None:
    _run("req", *_KEY, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}",
         cwd=folder)  # fmt: skip
    lines = ["basicConstraints=CA:FALSE", "keyUsage=digitalSignature", f"extendedKeyUsage={usage}"]
    if san:
        lines.append(f"subjectAltName={san}")
    (folder / f"{name}.ext").write_text("\n".join(lines) + "\n")
    _run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", f"{name}.pem", "-days", 2, "-extfile", f"{name}.ext",
         cwd=folder)  # fmt: skip


def make_certs(folder: Path) -> Certs:
    """A CA, a server and a client certificate signed by it, and an unrelated CA."""
    if OPENSSL is None:
        pytest.skip("openssl CLI missing: apt-get install openssl")
    folder.mkdir(parents=True, exist_ok=True)
    _self_signed(folder, "ca")
    _self_signed(folder, "other-ca")
    _signed(folder, "server", "serverAuth", "DNS:localhost,IP:127.0.0.1")
    _signed(folder, "client", "clientAuth", None)
    return Certs(
        ca=folder / "ca.pem",
        server_cert=folder / "server.pem",
        server_key=folder / "server.key",
        client_cert=folder / "client.pem",
        client_key=folder / "client.key",
        other_ca=folder / "other-ca.pem",
    )
