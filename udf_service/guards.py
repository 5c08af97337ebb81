"""What stands between a lead and a paid upstream call: the shared pacer and the credit guards.

All of it lives in the state backend, so it holds across every worker and instance sharing it:
- `SharedPacer` spaces calls `interval` apart (GCRA slots) and pushes everyone back after a 429;
- `CreditGuards` keeps the 402 circuit, the optional daily call budget and the usage counters.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from . import metrics
from .sixsense.client import DeadlineExceeded
from .state import State

LIMITER_NAME = "upstream"
QUOTA_CIRCUIT = "circuit:quota"
LATE_TOLERANCE_S = 0.01


class SharedPacer:
    """The client's pacer: one slot per call under the shared limiter."""

    def __init__(self, state: State, interval_s: float, sleep: Callable[[float], None] = time.sleep):
        self.state = state
        self.interval_s = interval_s
        self.sleep = sleep

    def wait_turn(self, deadline: float) -> None:
        """Reserve the next slot and sleep until it; raise DeadlineExceeded if it is too late.

        A sender that wakes more than LATE_TOLERANCE_S after its slot (a loaded machine) gives the
        slot up and takes a new one: sending late would land right next to the following sender's
        call, and two calls that close together can both fall in one of 6sense's windows.
        """
        while True:
            remaining = max(deadline - time.time(), 0.0)
            wait = self.state.reserve_slot(LIMITER_NAME, self.interval_s, remaining)
            if wait is None:
                raise DeadlineExceeded("no upstream slot free before the deadline")
            slot_at = time.monotonic() + wait
            if wait > 0:
                metrics.LIMITER_WAIT_SECONDS.inc(wait)
                self.sleep(wait)
            if time.monotonic() - slot_at <= LATE_TOLERANCE_S:
                return
            metrics.LIMITER_LATE_SLOTS.inc()

    def slow_down(self, seconds: float) -> None:
        """After a 429: no worker anywhere sends before `seconds` from now."""
        self.state.hold_off(LIMITER_NAME, self.state.now() + max(seconds, self.interval_s))

    def backlog_s(self) -> float:
        return self.state.slot_backlog(LIMITER_NAME)


class CreditGuards:
    """The 402 circuit, the daily call budget, and the usage counters behind /usage."""

    def __init__(self, state: State, cooldown_s: float, daily_budget: int | None) -> None:
        self.state = state
        self.cooldown_s = cooldown_s
        self.daily_budget = daily_budget

    def quota_open(self) -> bool:
        """The credit pool was empty recently: calling now would only earn another 402."""
        is_open = self.state.flag_get(QUOTA_CIRCUIT) is not None
        metrics.CIRCUIT_OPEN.set(1 if is_open else 0)
        return is_open

    def trip_quota(self) -> None:
        self.state.flag_set(QUOTA_CIRCUIT, b"402", self.cooldown_s)
        metrics.CIRCUIT_OPEN.set(1)

    def quota_retry_in(self) -> float | None:
        return self.state.flag_ttl(QUOTA_CIRCUIT)

    def take_budget(self) -> bool:
        """Spend one call of today's budget; False (and nothing spent) when none is left."""
        if self.daily_budget is None:
            return True
        key = f"budget:{_day()}"
        if self.state.incr(key, 1, ttl_s=_seconds_to_midnight() + 3600) <= self.daily_budget:
            return True
        self.state.incr(key, -1)
        return False

    def take_budget_back(self) -> None:
        """Return a call taken with take_budget() that was never made."""
        if self.daily_budget is not None:
            self.state.incr(f"budget:{_day()}", -1)

    def budget_left(self) -> int | None:
        if self.daily_budget is None:
            return None
        left = max(self.daily_budget - self.state.get_int(f"budget:{_day()}"), 0)
        metrics.BUDGET_LEFT.set(left)
        return left

    def record_calls(self, calls: int, matched: bool) -> None:
        """Count upstream calls (every attempt) and matched leads (what 6sense bills)."""
        day, month = _day(), _month()
        for period, ttl in ((f"day:{day}", 3 * 86400), (f"month:{month}", 40 * 86400)):
            if calls:
                self.state.incr(f"usage:calls:{period}", calls, ttl_s=ttl)
            if matched:
                self.state.incr(f"usage:matched:{period}", 1, ttl_s=ttl)

    def usage(self) -> dict[str, int]:
        day, month = _day(), _month()
        return {
            "calls_today": self.state.get_int(f"usage:calls:day:{day}"),
            "matched_today": self.state.get_int(f"usage:matched:day:{day}"),
            "calls_this_month": self.state.get_int(f"usage:calls:month:{month}"),
            "matched_this_month": self.state.get_int(f"usage:matched:month:{month}"),
        }


def _day() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def _month() -> str:
    return datetime.now(UTC).strftime("%Y-%m")


def _seconds_to_midnight() -> float:
    now = datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - now).total_seconds()
