"""LightHttpClient (the bench's C=1 probe) against a small asyncio HTTP server."""

from __future__ import annotations

import asyncio

import pytest

from tools.bench.load import LightHttpClient


async def _serve(replies: list[bytes]):
    """A server that answers each request with the next of ``replies`` (raw HTTP)."""
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while replies:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length"))  # fmt: skip
            seen.append(await reader.readexactly(length))
            reply = replies.pop(0)
            writer.write(reply)
            await writer.drain()
            if b"connection: close" in reply.lower():
                break
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], seen


def test_posts_reconnect_after_close_and_report_status() -> None:
    async def run():
        server, port, seen = await _serve([
            b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}',
            b"HTTP/1.1 422 Unprocessable\r\nContent-Length: 3\r\n\r\nbad",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ])  # fmt: skip
        client = LightHttpClient(f"http://127.0.0.1:{port}", timeout_s=5)
        try:
            first = await client.post("/v1/infer", b"abc", "image/png")
            second = await client.post("/v1/infer", b"de", "image/png")  # a new connection
            with pytest.raises(ValueError, match="Content-Length"):
                await client.post("/v1/infer", b"f", "image/png")
        finally:
            await client.close()
            server.close()
        return first, second, seen

    first, second, seen = asyncio.run(run())
    assert first == (200, b"{}") and second == (422, b"bad")
    assert seen == [b"abc", b"de", b"f"]


def test_only_http_urls() -> None:
    with pytest.raises(ValueError, match="http://HOST:PORT"):
        LightHttpClient("https://example.org", timeout_s=1)
