"""Run the simulator and `udf-service serve` as local processes on loopback.

Shared by the demo, the benchmarks and the tests, so all of them start the service exactly the
way users do. Every process is started here, known by its own pid, and stopped by it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import requests

from .server import free_port, stop_process, wait_for_port

TOKEN = "test-token-0123456789abcdef0123456789abcd"


@dataclass
class Simulator:
    """A running simulator process and its admin API."""

    url: str
    process: subprocess.Popen[bytes]

    def stats(self) -> dict[str, Any]:
        return requests.get(f"{self.url}/_sim/stats", timeout=5).json()

    def reset(self) -> None:
        requests.post(f"{self.url}/_sim/reset", timeout=5).raise_for_status()

    def faults(self, rules: list[dict[str, Any]], latency_ms: float | None = None) -> None:
        document: dict[str, Any] = {"rules": rules}
        if latency_ms is not None:
            document["latency_ms"] = latency_ms
        requests.post(f"{self.url}/_sim/faults", data=orjson.dumps(document), timeout=5).raise_for_status()

    def calls_by_email(self) -> dict[str, int]:
        return self.stats()["by_email"]

    def stop(self) -> None:
        stop_process(self.process)


@dataclass
class Service:
    """A running `udf-service serve` and what it wrote to its log."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def function_url(self) -> str:
        return f"{self.url}/snowflake/people/full"

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in children.read_text().split()]
        except OSError:
            return []

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 40) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


def start_simulator(
    token: str | None = TOKEN, latency_ms: float = 0.0, rate_limit: str | None = None
) -> Simulator:
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
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    wait_for_port("127.0.0.1", port, timeout_s=15)
    return Simulator(f"http://127.0.0.1:{port}", process)


def start_service(
    simulator_url: str | None,
    state_url: str,
    log_path: Path,
    *,
    workers: int = 2,
    threads: int = 8,
    env: dict[str, str] | None = None,
    ready_timeout_s: float = 30,
) -> Service:
    """`udf-service serve` on a free loopback port, pointed at `simulator_url`, ready to call."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("SIXSENSE_", "UDF_"))}
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    environment.update(
        {
            "SIXSENSE_API_TOKEN": TOKEN,
            "UDF_STATE_URL": state_url,
            "SIXSENSE_RATE_LIMIT": "6000/minute",
            "UDF_LOG_LEVEL": "DEBUG",
        }
    )
    if simulator_url:
        environment["SIXSENSE_BASE_URL"] = simulator_url
    environment.update(env or {})
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "udf_service.cli", "serve", "--port", str(port),
             "--workers", str(workers), "--threads", str(threads)],
            env=environment, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    service = Service(f"http://127.0.0.1:{port}", process, log_path, environment)
    end = time.monotonic() + ready_timeout_s
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"udf-service exited with {process.returncode}:\n{service.log_text()[-3000:]}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{service.url}/readyz", timeout=1).status_code == 200:
                return service
        time.sleep(0.1)
    service.stop(signal.SIGKILL)
    raise RuntimeError(f"udf-service not ready in {ready_timeout_s:g} s:\n{service.log_text()[-3000:]}")
