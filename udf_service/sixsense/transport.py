"""The production HTTP transport: urllib3's connection pool behind httpx's transport interface.

`SixsenseClient` speaks `httpx.BaseTransport` so that the simulator mode and the tests can hand
it a `SimulatorTransport` or an `httpx.MockTransport`; what it sends to 6sense goes through this
one. Measured per call on one thread, 100 ms upstream on kept-alive connections (`docs/
performance.md`, "The 6sense client"): httpx's Client 650 us of CPU, its HTTP transport alone
500, urllib3 380. A call's CPU is most of what a fetched lead costs the service, and on a quota
of 1,000 calls a second that CPU is the ceiling. urllib3's pool also hands out a kept-alive
connection in constant time (a LIFO queue), where httpcore's looked at every connection of the
pool for every request, so one pool serves every fetch thread.

urllib3's exceptions are turned into httpx's of the same meaning here, so that
`client.map_transport_errors` stays the one place where a failure is classified, for this
transport and for the injected ones alike. urllib3 does not tell a failure while sending from
one while reading ("Connection aborted."): both are a connection lost after the request may
have gone out, which is the cautious reading (the lead is retried under the read budget).
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator

import httpx
import urllib3
from urllib3 import exceptions as u3


class Urllib3Transport(httpx.BaseTransport):
    """One urllib3 pool of up to `max_connections` kept-alive connections per host; thread-safe."""

    def __init__(self, max_connections: int, ssl_context: ssl.SSLContext | None = None) -> None:
        self.pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=max_connections,  # kept for reuse; more are opened (never waited for) when busy
            block=False,
            retries=False,  # one attempt per call: the fetcher decides on another, under the limiter
            ssl_context=ssl_context or httpx.create_ssl_context(),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        with _as_httpx_errors(request):
            answer = self.pool.request(
                request.method,
                str(request.url),
                body=request.read(),
                headers=dict(request.headers),
                timeout=urllib3.Timeout(connect=timeout.get("connect"), read=timeout.get("read")),
                redirect=False,
                preload_content=True,
                decode_content=False,  # httpx's Response decodes, per its Content-Encoding
            )
        return httpx.Response(
            answer.status,
            headers=list(answer.headers.items()),
            content=answer.data,
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    def close(self) -> None:
        self.pool.clear()


@contextlib.contextmanager
def _as_httpx_errors(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except u3.NewConnectionError as exc:  # refused, unreachable, no such host (before the timeout)
        raise httpx.ConnectError(str(exc), request=request) from exc
    except u3.ConnectTimeoutError as exc:
        raise httpx.ConnectTimeout(str(exc), request=request) from exc
    except u3.SSLError as exc:  # the handshake failed: nothing was sent
        raise httpx.ConnectError(str(exc), request=request) from exc
    except u3.ReadTimeoutError as exc:
        raise httpx.ReadTimeout(str(exc), request=request) from exc
    except u3.DecodeError as exc:
        raise httpx.DecodingError(str(exc), request=request) from exc
    except (u3.ProtocolError, u3.IncompleteRead) as exc:  # reset, closed, cut short: maybe sent
        raise httpx.RemoteProtocolError(str(exc), request=request) from exc
    except (u3.EmptyPoolError, u3.ClosedPoolError) as exc:
        raise httpx.PoolTimeout(str(exc), request=request) from exc
    except u3.LocationValueError as exc:
        raise httpx.UnsupportedProtocol(str(exc), request=request) from exc
    except u3.HTTPError as exc:
        raise httpx.TransportError(str(exc), request=request) from exc
