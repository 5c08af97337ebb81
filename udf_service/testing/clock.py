"""`ManualClock`: a clock that tests step instead of waiting for.

`sleep(s)` and `wait(event, s)` advance the clock by `s` at once (a waiter whose event is set
returns without advancing), so code that backs off, paces or waits for a lease runs at full speed
and the test reads exactly how long it would have waited.
"""

from __future__ import annotations

import threading


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
