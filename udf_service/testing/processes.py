"""Real processes on loopback: the one place that starts, waits for and stops them.

Used by the end-to-end tests, the benchmarks and `udf-service demo`, so all of them start the
service exactly the way users do (`udf-service serve`, gunicorn) and the simulator the way the
benchmarks need it (one upstream shared by several processes). Every process is started here,
known by its own pid, and stopped by it: never anything else.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import orjson

TOKEN = "test-token-0123456789abcdef0123456789abcd"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


@dataclass
class Process:
    """A child process this code started, with its log; `stop()` ends it (and only it)."""

    process: subprocess.Popen[bytes]
    log_path: Path | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def wait_until(self, ready: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Poll `ready()` until true; raise with the log's tail if the process exits or time runs out."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if not self.alive():
                raise RuntimeError(
                    f"{what} exited with {self.process.returncode}:\n{self.log_text()[-3000:]}"
                )
            with contextlib.suppress(Exception):
                if ready():
                    return
            time.sleep(0.05)
        self.stop(signal.SIGKILL)
        raise RuntimeError(f"{what} not ready in {timeout_s:g} s:\n{self.log_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 40) -> int:
        """Send `sig`, wait, kill after `timeout_s`; the exit status."""
        if self.alive():
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 10) -> int:
    """Terminate a child this code started (kill it after `timeout_s`); its exit status."""
    return Process(process).stop(timeout_s=timeout_s)


def spawn(
    command: Sequence[str], env: dict[str, str] | None = None, log_path: Path | None = None, **options: Any
) -> Process:
    """Start `command` with its output in `log_path` (or discarded)."""
    sink: IO[bytes] | int = log_path.open("ab") if log_path else subprocess.DEVNULL
    try:
        process = subprocess.Popen(list(command), env=env, stdout=sink, stderr=subprocess.STDOUT, **options)
    finally:
        if not isinstance(sink, int):
            sink.close()
    return Process(process, log_path)


@dataclass
class SimulatorProcess:
    """A running `udf-service simulator` and its admin API."""

    url: str
    handle: Process

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/_sim/stats", timeout=5).json()

    def reset(self) -> None:
        httpx.post(f"{self.url}/_sim/reset", timeout=5).raise_for_status()

    def faults(self, rules: list[dict[str, Any]], latency_ms: float | None = None) -> None:
        document: dict[str, Any] = {"rules": rules}
        if latency_ms is not None:
            document["latency_ms"] = latency_ms
        httpx.post(f"{self.url}/_sim/faults", content=orjson.dumps(document), timeout=5).raise_for_status()

    def calls_by_email(self) -> dict[str, int]:
        return self.stats()["by_email"]

    def stop(self) -> None:
        self.handle.stop()


@dataclass
class ServiceProcess:
    """A running `udf-service serve` and what it wrote to its log."""

    url: str
    handle: Process
    env: dict[str, str] = field(default_factory=dict)

    @property
    def function_url(self) -> str:
        return f"{self.url}/snowflake/people/full"

    @property
    def process(self) -> subprocess.Popen[bytes]:
        return self.handle.process

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.handle.pid}/task/{self.handle.pid}/children")
        try:
            return [int(pid) for pid in children.read_text().split()]
        except OSError:
            return []

    def log_text(self) -> str:
        return self.handle.log_text()

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 40) -> int:
        return self.handle.stop(sig, timeout_s)


def start_simulator(
    token: str | None = TOKEN, latency_ms: float = 0.0, rate_limit: str | None = None
) -> SimulatorProcess:
    """The simulator in its own process on a free loopback port (optionally rate-limited)."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "udf_service.simulator",
        "--port",
        str(port),
        "--latency-ms",
        str(latency_ms),
    ]
    if token:
        command += ["--token", token]
    if rate_limit:
        command += ["--rate-limit", rate_limit]
    handle = spawn(command)
    handle.wait_until(lambda: port_open(port), 15, "the simulator")
    return SimulatorProcess(f"http://127.0.0.1:{port}", handle)


def service_environment(
    simulator_url: str | None, state_url: str, env: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment `start_service` runs with: ours minus SIXSENSE_*/UDF_*, plus the test's."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("SIXSENSE_", "UDF_"))}
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    environment.update(
        {"UDF_STATE_URL": state_url, "SIXSENSE_RATE_LIMIT": "6000/minute", "UDF_LOG_LEVEL": "DEBUG"}
    )
    if simulator_url:
        environment.update({"SIXSENSE_BASE_URL": simulator_url, "SIXSENSE_API_TOKEN": TOKEN})
    else:
        environment["SIXSENSE_SIMULATE"] = "1"
    environment.update(env or {})
    return environment


def start_service(
    simulator_url: str | None,
    state_url: str,
    log_path: Path,
    *,
    workers: int = 2,
    threads: int = 8,
    env: dict[str, str] | None = None,
    ready_timeout_s: float = 30,
    program: Sequence[str] | None = None,
    cwd: Path | None = None,
) -> ServiceProcess:
    """`udf-service serve` on a free loopback port, ready to call: pointed at `simulator_url`, or
    answering from its built-in simulator (SIXSENSE_SIMULATE=1) when that is None.

    `program` is the `udf-service` to run (default: this interpreter's package); the wheel tests
    pass another virtualenv's console script, and a `cwd` outside the checkout."""
    port = free_port()
    environment = service_environment(simulator_url, state_url, env)
    command = [*(program or [sys.executable, "-m", "udf_service.cli"]), "serve", "--port", str(port)]
    command += ["--workers", str(workers), "--threads", str(threads)]
    handle = spawn(command, environment, log_path, cwd=cwd)
    url = f"http://127.0.0.1:{port}"
    handle.wait_until(
        lambda: httpx.get(f"{url}/readyz", timeout=1).status_code == 200, ready_timeout_s, "udf-service"
    )
    return ServiceProcess(url, handle, environment)
