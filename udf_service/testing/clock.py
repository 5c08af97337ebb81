"""Clocks that tests step instead of waiting for.

`ManualClock`: `sleep(s)` and `wait(event, s)` advance the clock by `s` at once (a waiter whose
event is set returns without advancing), so code that backs off, paces or waits for a lease runs
at full speed and the test reads exactly how long it would have waited.

`SkipAheadClock`: the real clock plus whatever `advance()` skipped. Waits are real, so code that
waits for another thread or process (SQLite's busy retries) behaves as in production, while a test
of expiry jumps past a TTL instead of sleeping through it.
"""

from __future__ import annotations

import threading
import time

from ..clock import SystemClock


class ManualClock:
    """Starts at `start` (epoch seconds); `advance()` or a sleep moves it forward."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = start
        self._lock = threading.Lock()
        self.slept: list[float] = []

    def time(self) -> float:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        return self.time()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += max(seconds, 0.0)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        if event.is_set():
            return True
        self.sleep(seconds)
        return event.is_set()


class SkipAheadClock(SystemClock):
    """Real time, plus the seconds `advance()` skipped; `sleep` and `wait` really wait."""

    def __init__(self) -> None:
        self._skipped = 0.0
        self._lock = threading.Lock()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._skipped += max(seconds, 0.0)

    def time(self) -> float:
        return time.time() + self._skipped

    def monotonic(self) -> float:
        return time.monotonic() + self._skipped
