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
import threading
import urllib.request
from collections.abc import Iterator

import httpx
import urllib3
from urllib3 import exceptions as u3


class Urllib3Transport(httpx.BaseTransport):
    """urllib3 pools of up to `max_connections` kept-alive connections, one pool per host (the
    6sense host, in practice); thread-safe. HTTPS_PROXY / HTTP_PROXY and NO_PROXY in the
    environment are honoured, as httpx's own transport honoured them."""

    def __init__(self, max_connections: int, ssl_context: ssl.SSLContext | None = None) -> None:
        self.options = {
            "maxsize": max_connections,  # kept for reuse; more are opened (never waited for) when busy
            "block": False,
            "retries": False,  # one attempt per call: the fetcher decides on another, under the limiter
            "ssl_context": ssl_context or httpx.create_ssl_context(),
        }
        self._managers: list[urllib3.PoolManager] = []
        # host -> (its pool, whether it wants the whole URL: plain HTTP through a proxy does)
        self._pools: dict[tuple[str, str, int | None], tuple[urllib3.HTTPConnectionPool, bool]] = {}
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        url = request.url
        with _as_httpx_errors(request):
            pool, whole_url = self._pools.get((url.scheme, url.host, url.port)) or self._pool_for(url)
            # The pool's own urlopen: the manager's would parse the URL and look the pool up again.
            answer = pool.urlopen(
                request.method,
                str(url) if whole_url else url.raw_path.decode("ascii"),
                body=request.read(),
                headers=dict(request.headers),
                timeout=urllib3.Timeout(connect=timeout.get("connect"), read=timeout.get("read")),
                redirect=False,
                assert_same_host=False,
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

    def _pool_for(self, url: httpx.URL) -> tuple[urllib3.HTTPConnectionPool, bool]:
        with self._lock:
            key = (url.scheme, url.host, url.port)
            if key not in self._pools:
                proxy = _environment_proxy(url)
                manager = (
                    urllib3.ProxyManager(proxy, num_pools=1, **self.options)  # type: ignore[arg-type]
                    if proxy
                    else urllib3.PoolManager(num_pools=1, **self.options)  # type: ignore[arg-type]
                )
                self._managers.append(manager)
                pool = manager.connection_from_host(url.host, url.port, url.scheme)
                self._pools[key] = (pool, bool(proxy) and url.scheme == "http")
            return self._pools[key]

    def close(self) -> None:
        with self._lock:
            managers, self._managers, self._pools = self._managers, [], {}
        for manager in managers:
            manager.clear()


def _environment_proxy(url: httpx.URL) -> str | None:
    """The proxy the environment names for `url` (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY), unless
    NO_PROXY exempts its host."""
    if urllib.request.proxy_bypass_environment(url.host):
        return None
    proxies = urllib.request.getproxies_environment()
    return proxies.get(url.scheme) or proxies.get("all")


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
