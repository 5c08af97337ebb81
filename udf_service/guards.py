"""What stands between a lead and a paid upstream call: the shared pacer and the credit guards.

All of it lives in the state backend, so it holds across every worker and instance sharing it:
- `SharedPacer` spaces calls `interval` apart (GCRA slots), counts each reserved slot as a call
  (today, this month, this minute) in the same write, refuses slots past the daily call budget,
  and pushes everyone back after a 429;
- `CreditGuards` reads and trips the circuits (402: credits exhausted; 401/403: the token) and
  reports usage.

What the daily budget caps: upstream *calls* (requests sent to 6sense, retries included), the
figure 6sense's own request log shows and the one its rate limit counts. Matched leads (what
6sense bills) are at most the calls; both are in `/usage`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from . import metrics
from .clock import SYSTEM, Clock
from .state import Reservation, State

LIMITER_NAME = "upstream"
QUOTA_CIRCUIT = "circuit:quota"
AUTH_CIRCUIT = "circuit:auth"
CIRCUITS = (QUOTA_CIRCUIT, AUTH_CIRCUIT)
AUTH_COOLDOWN_S = 60.0  # after a 401/403: long enough to stop a storm, short after a token fix
HISTORY_TTL_S = 2 * 3600  # per-minute call counters: the status page shows the last hour
RATE_TTL_S = 900  # 10-second call counters: the current rate (and the queue's ETA) is read from them


def calls_key(period: str) -> str:
    return f"usage:calls:{period}"


def matched_key(period: str) -> str:
    return f"usage:matched:{period}"


class Periods:
    """The UTC day, month and minute that usage counters are kept by, on one clock."""

    def __init__(self, clock: Clock = SYSTEM) -> None:
        self.clock = clock

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.time(), UTC)

    def day(self) -> str:
        return f"day:{self.now():%Y-%m-%d}"

    def month(self) -> str:
        return f"month:{self.now():%Y-%m}"

    def minute(self, minutes_ago: int = 0) -> str:
        return f"minute:{int(self.clock.time() // 60) - minutes_ago}"

    def ten_seconds(self, ago: int = 0) -> str:
        return f"tens:{int(self.clock.time() // 10) - ago}"

    def seconds_to_midnight(self) -> float:
        now = self.now()
        midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        return (midnight - now).total_seconds()


class SharedPacer:
    """One slot per upstream call under the shared limiter, counted as a call in the same write."""

    def __init__(
        self, state: State, interval_s: float, daily_budget: int | None = None, clock: Clock = SYSTEM
    ) -> None:
        self.state = state
        self.interval_s = interval_s
        self.daily_budget = daily_budget
        self.periods = Periods(clock)

    def call_counters(self) -> dict[str, float | None]:
        """The counters one call adds to (key -> ttl when created)."""
        return {
            calls_key(self.periods.day()): self.periods.seconds_to_midnight() + 2 * 86400,
            calls_key(self.periods.month()): 40 * 86400,
            calls_key(self.periods.minute()): HISTORY_TTL_S,
            calls_key(self.periods.ten_seconds()): RATE_TTL_S,
        }

    def reserve(
        self, max_wait_s: float, check_for: tuple[str, str, Sequence[str]] | None = None
    ) -> Reservation:
        """The next slot within `max_wait_s`, counted as a call, with the check before the call
        when asked for (see `State.reserve_slot`)."""
        cap = None if self.daily_budget is None else (calls_key(self.periods.day()), self.daily_budget)
        reservation = self.state.reserve_slot(
            LIMITER_NAME, self.interval_s, max_wait_s, self.call_counters(), cap, check_for
        )
        if reservation.wait_s:
            metrics.LIMITER_WAIT_SECONDS.inc(reservation.wait_s)
        return reservation

    def unused(self) -> dict[str, tuple[int, float | None]]:
        """Counter changes that take back one reserved call that was never sent."""
        return {key: (-1, ttl) for key, ttl in self.call_counters().items()}

    def slow_down(self, seconds: float) -> None:
        """After a 429: no worker anywhere sends before `seconds` from now."""
        self.state.hold_off(LIMITER_NAME, self.state.now() + max(seconds, self.interval_s))

    def backlog_s(self) -> float:
        return self.state.slot_backlog(LIMITER_NAME)


class CreditGuards:
    """The circuits (402, 401/403), the daily call budget, and the usage counters behind /usage."""

    def __init__(
        self, state: State, cooldown_s: float, daily_budget: int | None, clock: Clock = SYSTEM
    ) -> None:
        self.state = state
        self.cooldown_s = cooldown_s
        self.daily_budget = daily_budget
        self.periods = Periods(clock)

    def open_circuits(self) -> dict[str, float]:
        """The circuits open now and the seconds each stays open; one read."""
        found = {key: ttl for key, (_, ttl) in self.state.flags_get(CIRCUITS).items()}
        metrics.CIRCUIT_OPEN.set(1 if QUOTA_CIRCUIT in found else 0)
        return found

    def trip_quota(self) -> None:
        """6sense answered 402: nobody calls for UDF_QUOTA_COOLDOWN_S."""
        self.state.flag_set(QUOTA_CIRCUIT, b"402", self.cooldown_s)
        metrics.CIRCUIT_OPEN.set(1)

    def trip_auth(self, status: int) -> None:
        """6sense rejected the token: nobody calls for AUTH_COOLDOWN_S (every call would fail)."""
        self.state.flag_set(AUTH_CIRCUIT, str(status).encode(), AUTH_COOLDOWN_S)

    def budget_left(self) -> int | None:
        if self.daily_budget is None:
            return None
        left = max(self.daily_budget - self.state.get_int(calls_key(self.periods.day())), 0)
        metrics.BUDGET_LEFT.set(left)
        return left

    def matched(self) -> Mapping[str, tuple[int, float | None]]:
        """Counter changes for one matched lead (what 6sense bills)."""
        return {
            matched_key(self.periods.day()): (1, self.periods.seconds_to_midnight() + 2 * 86400),
            matched_key(self.periods.month()): (1, 40 * 86400),
        }

    def usage(self, unwritten: Callable[[list[str]], Mapping[str, int]] | None = None) -> dict[str, int]:
        """Calls and matched leads today and this month; `unwritten` adds counts handed to the
        writer and not yet in the state (a lead answered a moment ago is already counted)."""
        day, month = self.periods.day(), self.periods.month()
        keys = [calls_key(day), matched_key(day), calls_key(month), matched_key(month)]
        pending = unwritten(keys) if unwritten is not None else {}
        counts = [
            stored + pending.get(key, 0) for key, stored in zip(keys, self.state.get_ints(keys), strict=True)
        ]
        calls_today, matched_today, calls_month, matched_month = counts
        return {
            "calls_today": calls_today,
            "matched_today": matched_today,
            "calls_this_month": calls_month,
            "matched_this_month": matched_month,
        }

    def calls_per_ten_seconds(self, buckets: int = 30) -> list[int]:
        """Upstream calls in each of the last `buckets` 10-second spans, oldest first."""
        keys = [calls_key(self.periods.ten_seconds(ago)) for ago in range(buckets - 1, -1, -1)]
        return self.state.get_ints(keys)

    def calls_per_minute(self, minutes: int = 60) -> list[int]:
        """Upstream calls in each of the last `minutes` minutes, oldest first (this one last)."""
        keys = [calls_key(self.periods.minute(ago)) for ago in range(minutes - 1, -1, -1)]
        return self.state.get_ints(keys)
