"""When to try a 6sense call again, as a value (after urllib3's ``Retry``).

The policy is immutable: ``increment()`` returns a new policy with the attempt appended, so a
test can step through it without sleeping. Every decision is a small named predicate.
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
    """Bounded retries with exponential backoff and full jitter.

    ``read`` is separate from ``connect`` because a read failure happens after 6sense got the
    request and may already have billed it; a connect failure never reached it.
    """

    total: int = 4
    connect: int = 4
    read: int = 1
    status: int = 4
    status_forcelist: frozenset[int] = frozenset({202, 429, 500, 502, 503, 504})
    backoff_factor: float = 0.5
    backoff_max: float = 20.0
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
        """Seconds to wait before the next attempt: full jitter over factor * 2^(n-1), capped."""
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
