"""The read deadline of `slow_clients.DeadlineSocket`, in process on a socket pair.

The live service's slow clients are in tests/test_slow_clients.py; these check the read itself:
bytes already there are read without touching the socket's timeout, bytes that come later are
waited for until the deadline, and a client past its deadline is refused even when a byte is
there (a client sending one byte every few seconds always has one byte there).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from udf_service.slow_clients import ClientTooSlow, DeadlineSocket


class CountingSocket:
    """A socket that counts `settimeout` calls (a C socket's methods cannot be patched)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.settimeouts = 0

    def settimeout(self, value: float | None) -> None:
        self.settimeouts += 1
        self.sock.settimeout(value)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


def _reading(server: CountingSocket, timeout_s: float) -> DeadlineSocket:
    """`server` behind a read deadline, a request's reading started with `timeout_s` to go."""
    sock = DeadlineSocket(server)  # type: ignore[arg-type]
    sock.start(timeout_s)
    return sock


@pytest.fixture
def pair() -> Iterator[tuple[CountingSocket, socket.socket]]:
    server, client = socket.socketpair()
    server.setblocking(True)
    try:
        yield CountingSocket(server), client
    finally:
        server.close()
        client.close()


def test_bytes_already_there_are_read_without_setting_a_timeout(
    pair: tuple[CountingSocket, socket.socket],
) -> None:
    server, client = pair
    sock = _reading(server, 5.0)
    client.sendall(b"POST / HTTP/1.1\r\n")
    assert sock.recv(8192) == b"POST / HTTP/1.1\r\n"
    assert server.settimeouts == 0 and server.gettimeout() is None


def test_bytes_that_come_later_are_waited_for_and_the_timeout_restored(
    pair: tuple[CountingSocket, socket.socket],
) -> None:
    server, client = pair
    sock = _reading(server, 5.0)
    timer = threading.Timer(0.05, client.sendall, args=(b"late",))
    timer.start()
    try:
        assert sock.recv(8192) == b"late"
    finally:
        timer.join()
    assert server.settimeouts == 2 and server.gettimeout() is None


def test_a_client_past_its_deadline_is_refused_even_with_a_byte_there(
    pair: tuple[CountingSocket, socket.socket],
) -> None:
    server, client = pair
    sock = _reading(server, 0.0)
    client.sendall(b"P")
    with pytest.raises(ClientTooSlow):
        sock.recv(8192)
    assert sock.expired


def test_nothing_arriving_before_the_deadline_is_refused(pair: tuple[CountingSocket, socket.socket]) -> None:
    server, _ = pair
    sock = _reading(server, 0.1)
    with pytest.raises(ClientTooSlow):
        sock.recv(8192)
    assert server.gettimeout() is None


def test_a_closed_peer_reads_as_the_end_of_the_stream(pair: tuple[CountingSocket, socket.socket]) -> None:
    server, client = pair
    sock = _reading(server, 5.0)
    client.close()
    assert sock.recv(8192) == b""
