"""Loopback ports for the services the tests start (tools/processes.py ``free_port``): under a
pytest-xdist worker each worker draws from its own block outside the kernel's ephemeral range,
so two workers starting services at once cannot be handed the same port; a port in use is
passed over; a service that answers but not in HTTP is waited for, not a crash."""

from __future__ import annotations

import itertools
import socket
import threading

import pytest

from tools import processes
from tools.processes import HOST, PORT_BLOCK_SIZE, PORT_BLOCK_START, free_port, wait_for_http


def test_each_xdist_worker_draws_distinct_free_ports_from_its_own_block(monkeypatch):
    blocks = {}
    for worker in ("gw0", "gw3"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        start = PORT_BLOCK_START + int(worker[2:]) * PORT_BLOCK_SIZE
        ports = [free_port() for _ in range(20)]
        assert len(set(ports)) == 20
        assert all(start <= p < start + PORT_BLOCK_SIZE for p in ports)
        blocks[worker] = set(ports)
    assert not blocks["gw0"] & blocks["gw3"]


def test_a_port_in_use_is_passed_over(monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw2")
    monkeypatch.setattr(processes, "_port_turn", itertools.count())  # the block's first port next
    start = PORT_BLOCK_START + 2 * PORT_BLOCK_SIZE
    # hold the block's first port, as another service would
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind((HOST, start))
        held.listen()
        assert free_port() == start + 1


def test_outside_xdist_the_kernel_picks(monkeypatch):
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    port = free_port()
    assert not PORT_BLOCK_START <= port < 32_768  # Linux's ephemeral range starts at 32768
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, port))  # free


def test_a_port_that_answers_in_another_protocol_is_waited_on_not_fatal():
    """A listener that replies with bytes that are not HTTP (as an HTTP/2 gRPC server does to
    an HTTP/1.1 request) is "not ready yet": the wait times out with that reason."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind((HOST, 0))
        server.listen()
        stop = threading.Event()

        def answer_in_binary():
            server.settimeout(0.2)
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                except OSError:
                    continue
                with conn:
                    conn.recv(1024)
                    conn.sendall(
                        b"\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x01\x00\x00\x10\x00\r\n"
                    )

        thread = threading.Thread(target=answer_in_binary, daemon=True)
        thread.start()
        try:
            url = f"http://{HOST}:{server.getsockname()[1]}/readyz"
            with pytest.raises(TimeoutError, match="BadStatusLine"):
                wait_for_http(url, timeout_s=1.0)
        finally:
            stop.set()
            thread.join()
