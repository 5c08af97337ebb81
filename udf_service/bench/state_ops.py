"""6. State operations per fetched lead: reads and writes of the shared state, per backend.

The service runs in process, two workers (two runtimes, as gunicorn's two processes) on one state,
the simulator as their transport at 100 ms a call and a limit of 6,000 calls a minute (the limiter
and the fetch threads both busy). Snowflake-style batches of new leads arrive a few at a time, to
either worker. Every call to the state is counted by `udf_service.state.counting` from the moment
the batches arrive until every answer is written: requests, dispatchers' takes, slot
reservations, checks before each send, the completers' grouped writes, lease renewals, usage
counters and heartbeats. Writes per fetched lead is the figure (goal: at most 3); reads and the
per-method counts come with it. Redis rows are skipped when `redis-server` is not installed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from udf_service.app import create_app
from udf_service.background import TICK_S as BACKGROUND_TICK_S
from udf_service.config import RateLimit, Settings
from udf_service.simulator import Simulator, SimulatorTransport
from udf_service.state import state_from_url
from udf_service.state.counting import READ, WRITE, CountingState, Tally, kind_of
from udf_service.testing.snowflake import in_process

from .common import Figure, Workspace, lost_rows, unique_leads

SECTION = "6 state operations"
GOAL_WRITES = 3.0
LIMIT = RateLimit(6000, 60.0)
LATENCY_MS = 100.0
WORKERS = 2


@dataclass(frozen=True)
class Size:
    leads: int
    batch_rows: int
    parallel: int


FULL = Size(leads=800, batch_rows=100, parallel=4)
QUICK = Size(leads=400, batch_rows=100, parallel=2)


@dataclass
class Measurement:
    """What one workload cost the state, and what it paid upstream."""

    backend: str
    leads: int
    calls: int  # upstream calls the simulator answered
    paid_twice: int  # leads called more than once
    rate_limited: int  # upstream 429s
    lost: int  # rows without their expected answer
    ops: dict[str, int] = field(default_factory=dict)  # method -> calls

    def total(self, kind: str) -> int:
        return sum(count for name, count in self.ops.items() if kind_of(name) == kind)

    def per_lead(self, kind: str) -> float:
        return self.total(kind) / max(self.leads, 1)

    def by_method(self, kind: str, at_least: float = 0.0) -> str:
        """`method per-lead` for each method of `kind` with at least `at_least` per lead, most
        frequent first; the rest summed as `others`."""
        leads = max(self.leads, 1)
        counts = sorted(((c, n) for n, c in self.ops.items() if kind_of(n) == kind), reverse=True)
        shown = [f"{name} {count / leads:.2f}" for count, name in counts if count / leads >= at_least]
        rest = sum(count for count, _ in counts if count / leads < at_least)
        return ", ".join(shown + ([f"others {rest / leads:.2f}"] if rest else []))


def settings_for(state_url: str, limit: RateLimit = LIMIT) -> Settings:
    """The service's defaults, on the simulator at a limit both the pacer and the threads feel."""
    return Settings(
        simulate=True,
        state_url=state_url,
        rate_limit=limit,
        simulate_latency_ms=LATENCY_MS,
        simulate_rate_limit=limit,
        log_level="WARNING",
    )


def measure(
    backend: str,
    state_url: str,
    size: Size = QUICK,
    workers: int = WORKERS,
    tag: str = "ops",
    limit: RateLimit = LIMIT,
) -> Measurement:
    """Run the workload on `state_url` and count its state operations (see the module docstring)."""
    settings = settings_for(state_url, limit)
    simulator = Simulator(latency_ms=LATENCY_MS, rate_limit=limit)
    tally = Tally()
    apps = [
        create_app(
            replace(settings),
            transport=SimulatorTransport(simulator),
            state=CountingState(state_from_url(state_url), tally),
        )
        for _ in range(workers)
    ]
    runtimes = [app.extensions["udf"] for app in apps]
    try:
        rows = unique_leads(size.leads, tag)
        callers = [in_process(app, max_batch_rows=size.batch_rows, parallel=size.parallel) for app in apps]
        time.sleep(2 * BACKGROUND_TICK_S)  # start-up (schema, first sweep and heartbeat) runs first:
        tally.reset()  # it is not the workload's
        values = _query(callers, rows, size)
        for runtime in runtimes:  # until every answer is written
            runtime.completer.flush(30.0)
        ops = tally.snapshot()
    finally:
        for runtime in runtimes:
            runtime.shutdown(grace_s=1.0)
    stats = simulator.stats()
    return Measurement(
        backend=backend,
        leads=size.leads,
        calls=stats["calls"],
        paid_twice=sum(1 for count in stats["by_email"].values() if count > 1),
        rate_limited=int(stats["statuses"].get("429", 0)),
        lost=lost_rows(rows, values),
        ops=ops,
    )


def _query(callers: Sequence[Any], rows: list[list[Any]], size: Size) -> list[Any]:
    """One query: its batches spread over the workers, `size.parallel` in flight in all."""
    from concurrent.futures import ThreadPoolExecutor

    batches = [rows[i : i + size.batch_rows] for i in range(0, len(rows), size.batch_rows)]
    query_id = f"01state-ops-{size.leads}"

    def send(index: int) -> list[Any]:
        caller = callers[index % len(callers)]
        return caller.send_batch(batches[index], query_id, index)

    with ThreadPoolExecutor(size.parallel) as pool:
        answers = list(pool.map(send, range(len(batches))))
    return [value for answer in answers for value in answer]


def figure(m: Measurement) -> Figure:
    writes, reads = m.per_lead(WRITE), m.per_lead(READ)
    return Figure(
        section=SECTION,
        name=f"{m.backend}: state writes per fetched lead ({m.leads} new leads)",
        measured=f"{writes:.2f} writes, {reads:.2f} reads per lead; writes: {m.by_method(WRITE, 0.05)}; "
        f"reads: {m.by_method(READ, 0.05)}",
        baseline=f"{m.calls / max(m.leads, 1):.2f} calls per lead, {m.paid_twice} paid twice, "
        f"{m.rate_limited} upstream 429s, {m.lost} rows lost",
        result=f"{writes:.2f} writes per lead",
        goal=f"<= {GOAL_WRITES:g} writes per fetched lead",
        met=writes <= GOAL_WRITES and m.calls == m.leads and not m.rate_limited and not m.lost,
        raw={"leads": m.leads, "calls": m.calls, "ops": m.ops, "writes": m.total(WRITE),
             "reads": m.total(READ)},
    )  # fmt: skip


def skipped(backend: str) -> Figure:
    return Figure(
        section=SECTION,
        name=f"{backend}: state writes per fetched lead",
        measured="skipped: redis-server is not installed",
        goal=f"<= {GOAL_WRITES:g} writes per fetched lead",
    )


def run(quick: bool = False) -> list[Figure]:
    size = QUICK if quick else FULL
    figures = []
    with Workspace("state-ops") as ws:
        figures.append(figure(measure("SQLite", ws.sqlite_url(), size)))
        redis = ws.redis()
        figures.append(skipped("Redis") if redis is None else figure(measure("Redis", redis.url, size)))
    return figures
