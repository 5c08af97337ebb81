"""`RedisServer`: a real `redis-server` on a free loopback port, for tests and benchmarks.

Started with persistence off (unless asked), talked to through redis-py, stopped by its pid.
`restart()` stops and starts it on the same port (empty, as after a crash without persistence);
`pause()`/`resume()` stop and continue the process (SIGSTOP/SIGCONT), an outage with nothing lost.
"""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .processes import Process, free_port, spawn

INSTALL = "apt-get install redis-server (Debian/Ubuntu) or brew install redis"
START_TIMEOUT_S = 10.0


def redis_binary() -> str | None:
    return shutil.which("redis-server")


class RedisServer:
    """One `redis-server` process that this code started and alone may stop."""

    def __init__(self, workdir: Path, binary: str | None = None, extra: Sequence[str] = ()) -> None:
        found = binary or redis_binary()
        if found is None:
            raise RuntimeError(f"redis-server not installed: {INSTALL}")
        self.binary = found
        self.workdir = workdir
        self.extra = list(extra)
        self.port = free_port()
        self.handle: Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return None if self.handle is None else self.handle.pid

    def client(self, **options: Any) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, **options)

    def start(self) -> None:
        args = [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no", *self.extra]
        self.handle = spawn(args, log_path=self.workdir / f"redis-{self.port}.log")
        self.handle.wait_until(lambda: bool(self.client().ping()), START_TIMEOUT_S, "redis-server")

    def stop(self) -> None:
        handle, self.handle = self.handle, None
        if handle is not None:
            handle.stop(timeout_s=5)

    def restart(self) -> None:
        """Stop the server and start it again on the same port (its data is gone: no save)."""
        self.stop()
        self.start()

    def pause(self) -> None:
        assert self.handle is not None
        self.handle.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.handle is not None
        self.handle.process.send_signal(signal.SIGCONT)

    def flushdb(self) -> None:
        if self.handle is None or not self.handle.alive():
            self.start()
        self.client().flushdb()

    def config_set(self, name: str, value: str) -> None:
        self.client().config_set(name, value)


def start_redis(workdir: Path, extra: Sequence[str] = (), attempts: int = 3) -> RedisServer:
    """A started server; retries on another port when the free one was taken meanwhile."""
    server = RedisServer(workdir, extra=extra)
    for attempt in range(attempts):
        try:
            server.start()
            return server
        except RuntimeError:
            if attempt == attempts - 1:
                raise
            server.port = free_port()
            time.sleep(0.05)
    return server
