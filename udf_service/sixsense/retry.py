"""When to try a 6sense call again, as a value (after urllib3's ``Retry``).

The policy is immutable: ``increment()`` returns a new policy with the attempt appended, so a
test can step through it without sleeping. Every decision is a small named predicate.

What each failure class may have cost, and so how it is retried (6sense bills "successfully
enriched records", one credit per match; ../shared/reference/upstream.md A5):

- connect failures (also a pool timeout or a request that could not be written): nothing reached
  6sense, nothing was billed. Retried on the ``connect`` budget.
- 429: throttled before any work was done: not billed. Retried on the ``status`` budget after
  the shared hold-off (every worker slows down, not only the one that saw it).
- 5xx: 6sense failed and sent no record; by its credit rule nothing was enriched, so we assume
  nothing was billed. Retried on the ``status`` budget.
- a 2xx with a body that is not the JSON we expect, a connection lost after the request went out,
  a read timeout: 6sense may have done the work and billed it. Retried too, on the smaller
  ``read`` budget: a row given up is answered ``error``, never cached, and asked again by the next
  query or the refill, so a retry now never costs more than giving up would, and the row is
  answered in the first query.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import NamedTuple


class Attempt(NamedTuple):
    """One failed attempt: what went wrong (an error name or an HTTP status)."""

    error: str | None
    status: int | None


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and equal jitter (a draw from [c/2, c]).

    ``read`` is separate from ``connect`` because a read failure happens after 6sense got the
    request and may already have billed it; a connect failure never reached it.
    """

    total: int = 6
    connect: int = 6
    read: int = 3
    status: int = 6
    status_forcelist: frozenset[int] = frozenset({202, 429, 500, 502, 503, 504})
    backoff_factor: float = 0.25
    backoff_max: float = 10.0
    retry_after_max: float = 120.0
    history: tuple[Attempt, ...] = field(default=())

    def is_retryable_status(self, status: int) -> bool:
        """Throttling, 202 'still processing' and server faults may succeed later."""
        return status in self.status_forcelist or 500 <= status < 600

    def increment(self, *, error: str | None = None, status: int | None = None) -> RetryPolicy:
        """The policy after one more failed attempt (read errors also spend the read budget)."""
        return replace(
            self,
            total=self.total - 1,
            connect=self.connect - (error == "connect"),
            read=self.read - (error in {"read", "body"}),
            status=self.status - (status is not None),
            history=(*self.history, Attempt(error, status)),
        )

    def is_exhausted(self) -> bool:
        """No budget left in any counter that the attempts have spent."""
        return min(self.total, self.connect, self.read, self.status) < 0

    def backoff(self, rand: random.Random | None = None) -> float:
        """Seconds before the next attempt: a draw from [c/2, c], c = factor * 2^(n-1), capped.

        Equal jitter rather than full jitter: a retry never comes back at once, so a burst of
        failures spreads out instead of hammering an upstream that is struggling.
        """
        consecutive = len(self.history)
        if consecutive == 0:
            return 0.0
        ceiling = min(self.backoff_max, self.backoff_factor * 2 ** (consecutive - 1))
        return (rand or random).uniform(ceiling / 2, ceiling)

    def sleep_for(self, retry_after: float | None, rand: random.Random | None = None) -> float:
        """Honour Retry-After when the server sent one (capped), else back off."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_max)
        return self.backoff(rand)


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (delta-seconds form only; 6sense documents none at all)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
