"""The simulator's HTTP server: a faithful stand-in takes bursts of new connections as 6sense does.

The service opens a connection per call to the simulator (its werkzeug server closes each) and
starts a batch's calls together; werkzeug's listen queue of 128 dropped the connections past it,
and each cost its caller TCP's one-second retransmission (the bench's 2-instance row at 0.55).
"""

from __future__ import annotations

import select
import socket
import time

from flask import Flask

from udf_service.simulator import SimulatorServer


def test_the_simulator_server_takes_a_burst_of_new_connections() -> None:
    """300 connections opened at once, none accepted yet (as when every fetch thread starts its
    call together): the kernel completes every handshake into the listen queue. werkzeug's own
    queue of 128 dropped the SYNs past it, and each dropped one cost its caller a second."""
    server = SimulatorServer("127.0.0.1", 0, Flask("burst"))  # not serving: nothing is accepted
    port = server.server_address[1]
    sockets = []
    try:
        for _ in range(300):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            sockets.append(sock)
        pending, give_up_at = set(sockets), time.monotonic() + 5.0  # past 2 retransmissions
        while pending and time.monotonic() < give_up_at:
            _, connected, _ = select.select([], list(pending), [], 0.2)  # writable: handshake done
            pending -= set(connected)
        assert not pending, f"{len(pending)} of 300 connections not taken"
    finally:
        for sock in sockets:
            sock.close()
        server.server_close()
