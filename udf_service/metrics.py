"""Prometheus metrics (prometheus-client), correct across gunicorn worker processes.

`udf-service serve` sets PROMETHEUS_MULTIPROC_DIR before the workers start, so every worker
writes its samples to that directory and `/metrics` aggregates them all; without it (tests that
build the app in-process) the default registry is used.
"""

from __future__ import annotations

import os
from collections import Counter as Tally
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics import MetricWrapperBase

from .values import status_of

UPSTREAM_CALLS = Counter(
    "sixsense_upstream_calls_total", "Calls to 6sense, by HTTP status or error", ["status"]
)
CACHE_LOOKUPS = Counter("sixsense_cache_lookups_total", "Cache lookups of unique leads", ["result"])
ROWS = Counter("sixsense_rows_total", "Rows answered, by route and row status", ["route", "status"])
BATCH_SECONDS = Histogram(
    "sixsense_batch_seconds",
    "Time to answer one warehouse request",
    ["route", "http_status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60),
)
LIMITER_WAIT_SECONDS = Counter(
    "sixsense_limiter_wait_seconds_total", "Seconds spent waiting for a slot under the shared rate limit"
)
LIMITER_LATE_SLOTS = Counter(
    "sixsense_limiter_late_slots_total",
    "Slots given up because the sender woke too late to use them safely",
)
CIRCUIT_OPEN = Gauge(
    "sixsense_quota_circuit_open",
    "1 while the 402 (credits exhausted) circuit is open",
    multiprocess_mode="max",
)
JOBS = Counter("sixsense_jobs_total", "Asynchronous batch jobs, by event", ["event"])
QUEUE_DEPTH = Gauge(
    "sixsense_refill_queue_depth",
    "Leads queued for fetching: the cached route's refill and batches waiting for answers",
    multiprocess_mode="mostrecent",
)
FETCH_EVENTS = Counter(
    "sixsense_fetch_events_total",
    "How queued fetches ended (row status) or why one was not sent (lease_lost, epoch_changed, ...)",
    ["event"],
)
CACHE_ENTRIES = Gauge("sixsense_cache_entries", "Fresh entries in the cache", multiprocess_mode="mostrecent")
BUDGET_LEFT = Gauge(
    "sixsense_daily_budget_left", "Upstream calls left in today's budget", multiprocess_mode="mostrecent"
)


@lru_cache(maxsize=1024)
def child(metric: MetricWrapperBase, *labels: str) -> Any:
    """`metric.labels(*labels)`, looked up once: `labels()` checks and joins the values under a
    lock on every call, which costs a fully cached 1-row batch more than its cache read. The
    child is the same object `labels()` returns (prometheus-client keeps one per label set), so
    multiprocess mode and forks behave as before. Label values are bounded sets (routes,
    statuses, outcomes); the bound only guards against a caller that is not."""
    return metric.labels(*labels)


def count_rows(route: str, values: Iterable[Any]) -> dict[str, int]:
    """Count answered rows by status (one metric update per status, not per row)."""
    statuses = Tally(map(status_of, values))
    for status, count in statuses.items():
        child(ROWS, route, status).inc(count)
    return dict(statuses)


def render() -> tuple[bytes, str]:
    """The exposition text for every worker's samples, and its content type."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory and os.path.isdir(directory):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


# Operations (/status, the Grafana dashboard and the alert rules in deploy/).
ERRORS = Counter("sixsense_errors_total", "Errors by class (see udf_service.recent_errors)", ["error_class"])
UPSTREAM_RETRIES = Counter(
    "sixsense_upstream_retries_total", "Upstream attempts that will be retried, by reason", ["reason"]
)
MATCHED_LEADS = Counter("sixsense_matched_leads_total", "Leads 6sense matched (what it bills: credits)")
QUEUE_ETA = Gauge(
    "sixsense_refill_queue_eta_seconds",
    "Seconds until the fetch queue is empty at the current call rate (-1: no calls lately)",
    multiprocess_mode="mostrecent",
)
RATE_LIMIT = Gauge(
    "sixsense_rate_limit_per_minute",
    "The upstream quota (SIXSENSE_RATE_LIMIT)",
    multiprocess_mode="mostrecent",
)
JOBS_RUNNING = Gauge(
    "sixsense_jobs_running", "Asynchronous jobs not finished", multiprocess_mode="mostrecent"
)
STATE_UP = Gauge(
    "sixsense_state_up", "1 when the state backend answered the last scrape", multiprocess_mode="mostrecent"
)
