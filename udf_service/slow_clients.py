"""A deadline for reading each request, so slow clients cannot hold every thread (slowloris).

gunicorn's gthread worker waits a few seconds for a new connection's first bytes, but once they
arrive it reads the rest of the head and the body with blocking reads and no time limit: 16
connections that send a byte every few seconds (workers x threads) stall the whole service,
`/healthz` included. Behind API Gateway that is shielded; on SPCS, behind a private load balancer
or run directly it is not.

`worker_class(timeout_s)` is a gthread worker whose connections read through `DeadlineSocket`:
each request (head and body together) must arrive within UDF_CLIENT_READ_TIMEOUT_S of the thread
taking it. A client past it gets `408` with a JSON `{"error"}` and the connection is closed. The
application's own time (waiting on 6sense, writing the answer) is not counted: only reads are.

Closing is the second place a slow client can stall a worker: gunicorn closes a connection
gracefully on the worker's main loop, reading what the client still sends for up to 2 s before it
gives up, so a client that keeps sending blocks accepts and keep-alive for every other
connection of that worker, one 2 s linger after another. `DeadlineConn` hands those closes to a
small pool of closer threads instead.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import TConn, ThreadWorker
from werkzeug.exceptions import RequestTimeout

log = logging.getLogger("udf_service.slow_clients")

REASON = "Request Timeout"


class ClientTooSlow(RequestTimeout):
    """The request did not arrive within the read deadline (Flask answers it 408 as JSON)."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(
            f"the request did not arrive within {timeout_s:g} s (UDF_CLIENT_READ_TIMEOUT_S): "
            "send the head and body without pauses"
        )
        self.timeout_s = timeout_s


class DeadlineSocket:
    """A client socket whose reads share one deadline; everything else goes to the socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.deadline: float | None = None
        self.timeout_s = 0.0
        self.expired = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def start(self, timeout_s: float) -> None:
        """A new request: its head and body must arrive within `timeout_s` from now."""
        self.timeout_s, self.expired = timeout_s, False
        self.deadline = time.monotonic() + timeout_s

    def stop(self) -> None:
        """The request has been read (or the connection is idle in keep-alive): no deadline."""
        self.deadline = None

    def _expire(self) -> ClientTooSlow:
        if not self.expired:
            self.expired = True
            log.warning("client_read_timeout", extra={"timeout_s": self.timeout_s})
        return ClientTooSlow(self.timeout_s)

    def recv(self, size: int, *flags: int) -> bytes:
        if self.deadline is None:
            return self._sock.recv(size, *flags)
        remaining = self.deadline - time.monotonic()
        if self.expired or remaining <= 0:
            raise self._expire()
        previous = self._sock.gettimeout()
        if previous is None and not flags:
            # Bytes that are here already (the usual case: a request arrives whole) need no
            # deadline to be read, nor a timeout set and reset around the read: two ioctl calls
            # and a poll, a third of a cached 1-row batch's system calls.
            try:
                return self._sock.recv(size, socket.MSG_DONTWAIT)
            except BlockingIOError:
                pass
        self._sock.settimeout(remaining if previous is None else min(previous, remaining))
        try:
            return self._sock.recv(size, *flags)
        except TimeoutError:
            if time.monotonic() < self.deadline:
                raise  # a shorter timeout of gunicorn's own: its error, not ours
            raise self._expire() from None
        finally:
            self._sock.settimeout(previous)


CLOSERS = 4  # threads per worker that linger on closing connections, off the main loop
_closers: ThreadPoolExecutor | None = None


def _closer_pool() -> ThreadPoolExecutor:
    """This worker process's closer threads (made on first use, after the fork)."""
    global _closers
    if _closers is None:
        _closers = ThreadPoolExecutor(CLOSERS, thread_name_prefix="udf-close")
    return _closers


class DeadlineConn(TConn):
    """A gthread connection that reads through a `DeadlineSocket` and lingers on closing off the
    worker's main loop."""

    def __init__(self, cfg: Any, sock: socket.socket, client: Any, server: Any) -> None:
        super().__init__(cfg, DeadlineSocket(sock), client, server)

    def close(self, graceful: bool = False) -> None:
        if not graceful:
            super().close()
            return
        sock = self.sock
        sock.setblocking(True)
        _closer_pool().submit(util.close_graceful, sock)


class DeadlineThreadWorker(ThreadWorker):
    """gthread, with every request read against a deadline (`read_timeout_s`, set per class)."""

    read_timeout_s = 15.0

    def accept(self, listener: socket.socket) -> None:
        """gthread's accept, making a `DeadlineConn`."""
        try:
            client_sock, client_addr = listener.accept()
            self.nr_conns += 1
            client_sock.setblocking(True)
            self.enqueue_req(DeadlineConn(self.cfg, client_sock, client_addr, listener.getsockname()))
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise

    def handle(self, conn: Any) -> Any:
        sock = conn.sock
        if not isinstance(sock, DeadlineSocket):  # a connection this class did not accept
            return super().handle(conn)
        sock.start(self.read_timeout_s)
        try:
            return super().handle(conn)
        finally:
            sock.stop()

    def _keepalive_after(self, conn: Any, keepalive: Any) -> Any:
        """Close after a 408; otherwise drain the body on gunicorn's own bounded terms."""
        sock = conn.sock
        if isinstance(sock, DeadlineSocket):
            if sock.expired:
                return False
            sock.stop()
        return super()._keepalive_after(conn, keepalive)

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """A request head that did not arrive in time: 408 with a JSON body, then close."""
        if not isinstance(exc, ClientTooSlow):
            super().handle_error(req, client, addr, exc)
            return
        from .server import write_json_error  # the JSON form of gunicorn's own error answers

        with contextlib.suppress(OSError):  # the client may be gone
            write_json_error(client, 408, REASON, str(exc.description))


def worker_class(read_timeout_s: float) -> type[DeadlineThreadWorker]:
    """The worker class for gunicorn's `worker_class`, with this deadline (forked into workers)."""
    return type("DeadlineThreadWorker", (DeadlineThreadWorker,), {"read_timeout_s": read_timeout_s})
