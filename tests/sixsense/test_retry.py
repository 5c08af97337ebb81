"""The retry policy as a value: stepped through without sleeping."""

from __future__ import annotations

import random

from udf_service.sixsense.retry import RetryPolicy, parse_retry_after


def test_increment_returns_a_new_policy_with_history() -> None:
    """increment() leaves the original untouched and records the attempt."""
    policy = RetryPolicy(total=2)
    after = policy.increment(status=503)
    assert policy.history == () and after.history[0].status == 503
    assert after.total == 1 and after.status == policy.status - 1


def test_total_bounds_the_number_of_attempts() -> None:
    """total=2 allows two retries: the third failure exhausts the policy."""
    policy = RetryPolicy(total=2, status=10)
    for _ in range(2):
        policy = policy.increment(status=500)
        assert not policy.is_exhausted()
    assert policy.increment(status=500).is_exhausted()


def test_read_failures_have_their_own_small_budget() -> None:
    """A read failure may already be billed: it spends the smaller read budget too."""
    policy = RetryPolicy(total=10, read=1).increment(error="read")
    assert not policy.is_exhausted()
    assert policy.increment(error="read").is_exhausted()
    defaults = RetryPolicy()
    assert defaults.read < defaults.connect <= defaults.total


def test_connect_failures_do_not_spend_the_read_budget() -> None:
    """Nothing reached 6sense on a connect failure, so it spends only connect and total."""
    policy = RetryPolicy(total=10, connect=3, read=0)
    for _ in range(3):
        policy = policy.increment(error="connect")
    assert not policy.is_exhausted() and policy.read == 0


def test_backoff_grows_exponentially_within_jitter_and_cap() -> None:
    """Backoff doubles per attempt, jittered between half and full, capped at backoff_max."""
    rand = random.Random(7)
    policy = RetryPolicy(total=20, status=20, backoff_factor=0.5, backoff_max=4)
    assert policy.backoff(rand) == 0.0
    ceilings = []
    for _ in range(6):
        policy = policy.increment(status=503)
        ceilings.append(min(4, 0.5 * 2 ** (len(policy.history) - 1)))
        assert ceilings[-1] / 2 <= policy.backoff(rand) <= ceilings[-1]
    assert ceilings == [0.5, 1, 2, 4, 4, 4]


def test_retry_after_is_honoured_and_capped() -> None:
    """A Retry-After wins over backoff, up to retry_after_max."""
    policy = RetryPolicy(retry_after_max=30)
    assert policy.sleep_for(2.0) == 2.0
    assert policy.sleep_for(600.0) == 30
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert parse_retry_after(None) is None


def test_retryable_statuses() -> None:
    """429, 202 and 5xx are retried; other 4xx are answers."""
    policy = RetryPolicy()
    assert all(policy.is_retryable_status(s) for s in (202, 429, 500, 502, 503, 504, 599))
    assert not any(policy.is_retryable_status(s) for s in (200, 400, 401, 402, 403, 404, 422))
