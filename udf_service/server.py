"""Run the service under gunicorn (gthread workers), the one way it is started everywhere.

`run(settings, ...)` reads nothing more from the environment: every worker builds its app from
the same `Settings` value. In simulator mode (SIXSENSE_SIMULATE=1) each worker answers from the
built-in simulator in process, and the banner and the log say loudly that answers are simulated.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import orjson
from gunicorn import util as gunicorn_util
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger as GunicornLogger

from . import logs, slow_clients
from .config import Settings

BANNER = """
==============================================================================
  SIMULATOR MODE: answers come from the built-in 6sense simulator, NOT 6sense.
  Set SIXSENSE_API_TOKEN (and leave SIXSENSE_SIMULATE unset) for real data.
==============================================================================
"""


class _Gunicorn(BaseApplication):
    def __init__(self, options: dict[str, Any], settings: Settings) -> None:
        self.options = options
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from .app import create_app

        gunicorn_util.write_error = write_json_error  # requests gunicorn refuses before Flask
        return create_app(self.settings)


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's own errors (too many or too large headers, bad request lines) as JSON."""
    body = orjson.dumps({"error": f"{reason}: {mesg}"[:500]})
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    gunicorn_util.write_nonblock(sock, head.encode("latin1") + body)


class JsonGunicornLogger(GunicornLogger):
    """gunicorn's own lines (boot, signals, worker timeouts, refused requests) as JSON objects,
    rate-limited like the service's, so every line on stderr parses the same way, and with
    emails in a refused request line redacted."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in self.error_log.handlers + self.access_log.handlers:
            handler.setFormatter(logs.JsonFormatter())
            if not any(isinstance(f, logs.RepeatFilter) for f in handler.filters):
                handler.addFilter(logs.RedactFilter())
                handler.addFilter(logs.RepeatFilter())


def _worker_exit(server: Any, worker: Any) -> None:
    """Graceful shutdown: stop background work, let running jobs finish or hand them off."""
    app = getattr(worker, "wsgi", None)
    runtime = getattr(app, "extensions", {}).get("udf") if app is not None else None
    if runtime is not None:
        runtime.shutdown(grace_s=runtime.settings.shutdown_grace_s)


def _child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def gunicorn_options(
    host: str, port: int, workers: int, threads: int, read_timeout_s: float = 15.0
) -> dict[str, Any]:
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": slow_clients.worker_class(read_timeout_s),  # gthread + a read deadline
        "threads": threads,
        "logger_class": JsonGunicornLogger,
        "timeout": 120,  # gthread heartbeats from its main loop; long polls do not trip it
        "graceful_timeout": 30,
        "keepalive": 75,  # longer than load balancers' idle timeouts, so they close first
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "limit_request_fields": 200,
        "limit_request_field_size": 16384,
        "worker_exit": _worker_exit,
        "child_exit": _child_exit,
        "proc_name": "udf-service",
    }


def run(settings: Settings, host: str, port: int, workers: int) -> None:
    """Serve until SIGTERM/SIGINT. Refuses to start without a token unless simulating."""
    settings.validate()
    if settings.simulate:
        sys.stderr.write(BANNER)
    with _metrics_dir():
        options = gunicorn_options(host, port, workers, settings.threads, settings.client_read_timeout_s)
        _Gunicorn(options, settings).run()


@contextlib.contextmanager
def _metrics_dir() -> Iterator[None]:
    """A fresh PROMETHEUS_MULTIPROC_DIR so /metrics adds up every worker's samples."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    directory = tempfile.mkdtemp(prefix="udf-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    owner = os.getpid()
    try:
        yield
    finally:
        # gunicorn workers leave through sys.exit() in the forked child, so this block also runs
        # in every exiting worker: only the arbiter that made the directory may remove it.
        if os.getpid() == owner:
            _reap_children(timeout_s=10)
            shutil.rmtree(directory, ignore_errors=True)


def _reap_children(timeout_s: float) -> None:
    """Wait (bounded) until every child process of the arbiter has exited."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.05)
