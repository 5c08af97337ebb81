"""Pytest plugin: a real ``redis-server`` on a free loopback port, for the tests that need one.

Register it with ``pytest_plugins = ["tests.redis_server"]``. Fixtures:

- ``redis_server`` (session): the running server, with ``.url``, ``.port``, ``.pid``,
  ``.restart()`` (stop and start on the same port, for fault tests) and ``.stop()``.
- ``redis_url`` (function): the server's URL after ``FLUSHDB``: no test sees another's keys.

Without the binary the tests skip, except under ``CI=true``, where they fail. Every test that uses
one of these fixtures is marked ``redis``. Only the process started here is ever stopped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

INSTALL = "apt-get install redis-server (Debian/Ubuntu) or brew install redis"
MISSING = f"redis-server not installed: {INSTALL}"
START_TIMEOUT_S = 10.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _command(port: int, command: bytes, timeout_s: float = 1.0) -> bytes:
    """Send one inline command and return the first reply line (no client library needed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(command + b"\r\n")
        return sock.makefile("rb").readline().strip()


class RedisServer:
    """One ``redis-server`` process that this plugin started and alone may stop."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def start(self) -> None:
        args = [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no"]
        log = (self.workdir / "redis.log").open("ab")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise RuntimeError(f"redis-server exited ({code}); see {log.name}")
            with contextlib.suppress(OSError):
                if _command(self.port, b"PING") == b"+PONG":
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer PING within {START_TIMEOUT_S} s")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()  # only the pid we started
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def restart(self) -> None:
        """Stop the server and start it again on the same port (its data is gone: no save)."""
        self.stop()
        self.start()

    def flushdb(self) -> None:
        if self.process is None:
            self.start()
        if _command(self.port, b"FLUSHDB") != b"+OK":
            raise RuntimeError("FLUSHDB failed")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server on a free loopback port for the whole session."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {MISSING}")
        pytest.skip(MISSING)
    with tempfile.TemporaryDirectory(prefix="udf-redis-") as workdir:
        server = RedisServer(binary, Path(workdir))
        for attempt in range(3):  # the free port may be taken before redis binds it
            try:
                server.start()
                break
            except RuntimeError:
                if attempt == 2:
                    raise
                server.port = _free_port()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session server's URL, its database flushed first."""
    redis_server.flushdb()
    return redis_server.url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the server ``redis``, so ``-m 'not redis'`` deselects them."""
    for item in items:
        if {"redis_server", "redis_url"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.redis)
