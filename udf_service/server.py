"""Run the service under gunicorn (gthread workers), the one way it is started everywhere.

In simulator mode (SIXSENSE_SIMULATE=1 and no SIXSENSE_BASE_URL of its own) it first starts the
built-in 6sense simulator on a loopback port, so the service's client path is the one production
uses, and says loudly in the log that answers are simulated.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import orjson
from gunicorn import util as gunicorn_util
from gunicorn.app.base import BaseApplication

from .config import PRODUCTION_BASE_URL, Settings

BANNER = """
==============================================================================
  SIMULATOR MODE: answers come from the built-in 6sense simulator, NOT 6sense.
  Set SIXSENSE_API_TOKEN (and leave SIXSENSE_SIMULATE unset) for real data.
==============================================================================
"""


class _Gunicorn(BaseApplication):
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from .app import create_app

        gunicorn_util.write_error = write_json_error  # requests gunicorn refuses before Flask
        return create_app()


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's own errors (too many or too large headers, bad request lines) as JSON."""
    body = orjson.dumps({"error": f"{reason}: {mesg}"[:500]})
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    gunicorn_util.write_nonblock(sock, head.encode("latin1") + body)


def _worker_exit(server: Any, worker: Any) -> None:
    """Graceful shutdown: stop background work, let running jobs finish or hand them off."""
    app = getattr(worker, "wsgi", None)
    services = getattr(app, "extensions", {}).get("udf") if app is not None else None
    if services is not None:
        services.shutdown(grace_s=float(os.environ.get("UDF_SHUTDOWN_GRACE_S", "10")))


def _child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def gunicorn_options(host: str, port: int, workers: int, threads: int) -> dict[str, Any]:
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
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


def run(host: str, port: int, workers: int, threads: int) -> None:
    """Serve until SIGTERM/SIGINT. Refuses to start without a token unless simulating."""
    os.environ["UDF_THREADS"] = str(threads)  # the app sizes its waits by it (Settings.threads)
    settings = Settings.from_env()
    with _metrics_dir(), simulator_if_needed(settings):
        _Gunicorn(gunicorn_options(host, port, workers, threads)).run()


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


@contextlib.contextmanager
def simulator_if_needed(settings: Settings) -> Iterator[None]:
    """In simulator mode, run the simulator on loopback and point SIXSENSE_BASE_URL at it."""
    if not settings.simulate or settings.base_url != PRODUCTION_BASE_URL:
        yield
        return
    port = free_port()
    command = [sys.executable, "-m", "udf_service.simulator", "--port", str(port)]
    if latency := os.environ.get("SIXSENSE_SIMULATE_LATENCY_MS"):
        command += ["--latency-ms", latency]
    if limit := os.environ.get("SIXSENSE_SIMULATE_RATE_LIMIT"):
        command += ["--rate-limit", limit]
    simulator = subprocess.Popen(command)
    owner = os.getpid()
    try:
        wait_for_port("127.0.0.1", port, timeout_s=15)
        os.environ["SIXSENSE_BASE_URL"] = f"http://127.0.0.1:{port}"
        sys.stderr.write(BANNER)
        yield
    finally:
        if os.getpid() == owner:  # not in an exiting gunicorn worker, which runs this block too
            stop_process(simulator)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Terminate a child we started, and kill it if it has not exited within 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, timeout_s: float) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {host}:{port} after {timeout_s:g} s")
