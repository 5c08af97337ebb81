"""1. Call economy: upstream calls per unique valid lead. Goal 1.00 (never pay twice for one lead).

One workload, replayed against the service and against the naive baseline on the same simulator:

- duplicates: every lead three times, spelled differently (case, spaces, country names), shuffled
  across batches sent in parallel to two workers, plus invalid rows; then the same query again;
- retries: every batch sent twice at once with the same batch id (Snowflake retrying a batch it
  thinks timed out), then once more after both answered (a retry after a lost 200);
- restart: the service is stopped (SIGTERM) and started again on the same state file; the earlier
  leads come again with new ones;
- two instances sharing Redis (when `redis-server` exists): one query sent to both instances at once;
  then the same on a TLS-only three-node Redis Cluster (``rediss+cluster://``).

A count, not a time: exact on any machine. Rows whose status differs from the simulator's answer
are counted as wrong (lost).
"""

from __future__ import annotations

import importlib.util
import random
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from udf_service.leads import Lead, lead_from_args
from udf_service.testing.processes import TOKEN
from udf_service.testing.processes import SimulatorProcess as Simulator
from udf_service.testing.redis_cluster import start_cluster

from .common import (
    FUNCTION_PATH,
    INVALID_ROWS,
    Caller,
    Figure,
    Workspace,
    lost_rows,
    new_query_id,
    spelled_differently,
    unique_leads,
)

SECTION = "1 economy"
LATENCY_MS = 30.0  # long enough that duplicates of one lead are in flight at the same time
SERVICE_ENV = {"SIXSENSE_RATE_LIMIT": "60000/minute"}


@dataclass(frozen=True)
class Size:
    leads: int
    batch_rows: int
    parallel: int


FULL = Size(leads=400, batch_rows=100, parallel=8)
QUICK = Size(leads=40, batch_rows=20, parallel=4)

Rows = list[list[Any]]


def run(quick: bool = False) -> list[Figure]:
    size = QUICK if quick else FULL
    with Workspace("economy") as ws:
        simulator = ws.simulator(latency_ms=LATENCY_MS)
        state_url = ws.sqlite_url()
        services = [ws.service(simulator.url, state_url, workers=2, env=SERVICE_ENV)]

        def restart() -> None:
            services[0].stop()
            services[0] = ws.service(simulator.url, state_url, workers=2, env=SERVICE_ENV)

        service = _Target(lambda: [services[0].function_url], size, restart)
        phases = _phases(size)
        measured = _replay(simulator, service, phases)

        services[0].stop()
        redis = ws.redis()
        # The cluster's throwaway CA is made with `cryptography` (a test dependency, not a runtime
        # one): from a plain `pip install` that phase is left out, and the table says so.
        tls_cluster = redis is not None and importlib.util.find_spec("cryptography") is not None
        if redis is not None:
            pair = ws.services(2, simulator.url, redis.url, workers=2, env=SERVICE_ENV)
            two = _Target(lambda: [s.function_url for s in pair], size, lambda: None)
            measured += _replay(simulator, two, [_redis_phase(size)])
            for instance in pair:
                instance.stop()
        if tls_cluster:
            # The same on a TLS-only three-node Redis Cluster (ElastiCache Serverless, Valkey).
            cluster = start_cluster(ws.dir / "redis-cluster", tls=True)
            try:
                pair = ws.services(2, simulator.url, cluster.url, workers=2, env=SERVICE_ENV)
                two = _Target(lambda: [s.function_url for s in pair], size, lambda: None)
                measured += _replay(simulator, two, [_cluster_phase(size)])
                for instance in pair:
                    instance.stop()
            finally:
                cluster.stop()

        simulator.reset()
        simulator.faults([], latency_ms=0)  # the naive's count does not depend on latency
        naive_app = ws.gunicorn(
            "udf_service.bench.naive:create_app()",
            workers=2,
            threads=8,
            env={"NAIVE_UPSTREAM_URL": simulator.url, "NAIVE_TOKEN": TOKEN},
        )
        # Two "instances" of the naive are the same stateless app called twice.
        naive = _Target(lambda: [naive_app.url + FUNCTION_PATH] * 2, size, lambda: None)
        naive_phases = [*phases, *([_redis_phase(size)] if redis is not None else [])]
        naive_phases += [_cluster_phase(size)] if tls_cluster else []
        baseline = _replay(simulator, naive, naive_phases)
    figures = [_figure(m, b) for m, b in zip(measured, baseline, strict=True)]
    figures.append(_total(measured, baseline, redis is None, not tls_cluster))
    return figures


# ---------------------------------------------------------------------------- the workload
@dataclass
class Phase:
    name: str
    steps: list[tuple[str, Rows]]  # ("query" | "retry" | "restart" | "both", rows)


def _phases(size: Size) -> list[Phase]:
    rng = random.Random(8)
    a = unique_leads(size.leads, "econ-a")
    b = unique_leads(size.leads // 2, "econ-b")
    c = unique_leads(size.leads // 2, "econ-c")
    dupes = _with_duplicates(a, 3, rng)
    return [
        Phase("duplicates within and across batches, 2 workers", [("query", dupes), ("query", dupes)]),
        Phase(
            "Snowflake retries of a batch id (concurrent + late)", [("retry", _with_duplicates(b, 2, rng))]
        ),
        Phase(
            "restart on the same state, old and new leads",
            [("restart", []), ("query", _with_duplicates(a + b, 1, rng) + _with_duplicates(c, 2, rng))],
        ),
    ]


def _redis_phase(size: Size) -> Phase:
    rows = _with_duplicates(unique_leads(size.leads, "econ-d"), 3, random.Random(9))
    return Phase("2 instances sharing Redis, same query to both at once", [("both", rows)])


def _cluster_phase(size: Size) -> Phase:
    rows = _with_duplicates(unique_leads(size.leads, "econ-e"), 3, random.Random(10))
    return Phase("2 instances sharing a TLS Redis Cluster (3 nodes), same query to both", [("both", rows)])


def _with_duplicates(leads: Rows, copies: int, rng: random.Random) -> Rows:
    rows = [spelled_differently(lead, i) for lead in leads for i in range(copies)]
    rows += [list(row) for row in INVALID_ROWS] * max(1, len(rows) // 40)
    rng.shuffle(rows)
    return rows


# ---------------------------------------------------------------------------- replay and count
class _Target:
    """Where a workload is sent: the service (one or two instances) or the naive baseline."""

    def __init__(self, urls: Callable[[], list[str]], size: Size, restart: Callable[[], None]) -> None:
        self.urls, self.size, self.restart = urls, size, restart

    def run(self, kind: str, rows: Rows) -> tuple[Rows, list[Any]]:
        """Send the rows; return (rows, values) for every answer the caller received."""
        if kind == "restart":
            self.restart()
            return [], []
        caller = Caller(self.urls()[0])
        if kind == "query":
            result = caller.query(rows, batch_rows=self.size.batch_rows, parallel=self.size.parallel)
            return rows, result.values
        if kind == "both":
            urls = self.urls()
            with ThreadPoolExecutor(len(urls)) as pool:
                futures = [
                    pool.submit(
                        Caller(u).query, rows, batch_rows=self.size.batch_rows, parallel=self.size.parallel
                    )
                    for u in urls
                ]
                results = [f.result() for f in futures]
            return rows * len(urls), [v for r in results for v in r.values]
        return self._retries(caller, rows)

    def _retries(self, caller: Caller, rows: Rows) -> tuple[Rows, list[Any]]:
        query_id = new_query_id()
        batches = [rows[i : i + self.size.batch_rows] for i in range(0, len(rows), self.size.batch_rows)]

        def twice_then_once(item: tuple[int, Rows]) -> tuple[Rows, list[Any]]:
            index, batch = item
            batch_id = f"{query_id}:1:{index}:0:0"
            with ThreadPoolExecutor(2) as pool:
                first = [pool.submit(caller.send, batch, batch_id, query_id) for _ in range(2)]
                values = [v for f in first for v in f.result()]
            values += caller.send(batch, batch_id, query_id)
            return batch * 3, values

        with ThreadPoolExecutor(max(1, self.size.parallel // 2)) as pool:
            answers = list(pool.map(twice_then_once, enumerate(batches)))
        return [r for rs, _ in answers for r in rs], [v for _, vs in answers for v in vs]


@dataclass
class Count:
    name: str
    calls: int
    leads: int
    max_per_lead: int
    rows: int
    wrong: int


def _replay(simulator: Simulator, target: _Target, phases: Sequence[Phase]) -> list[Count]:
    counts = []
    seen: set[str] = set()
    for phase in phases:
        before = simulator.stats()
        leads: set[str] = set()
        sent, wrong = 0, 0
        for kind, rows in phase.steps:
            answered_rows, values = target.run(kind, rows)
            leads |= _valid_emails(rows)
            sent += len(answered_rows)
            wrong += lost_rows(answered_rows, values)
        after = simulator.stats()
        new = leads - seen
        seen |= leads
        delta = {e: n - before["by_email"].get(e, 0) for e, n in after["by_email"].items()}
        counts.append(
            Count(
                phase.name,
                after["calls"] - before["calls"],
                len(new),
                max(delta.values(), default=0),
                sent,
                wrong,
            )
        )
    return counts


def _valid_emails(rows: Rows) -> set[str]:
    return {lead.email for args in rows if isinstance(lead := lead_from_args(args), Lead)}


def _figure(m: Count, b: Count) -> Figure:
    ratio = m.calls / m.leads if m.leads else 0.0
    naive = b.calls / b.leads if b.leads else 0.0
    return Figure(
        section=SECTION,
        name=f"calls per unique valid lead: {m.name}",
        measured=f"{m.calls} calls / {m.leads} new leads ({m.rows} rows, {m.wrong} wrong)",
        baseline=f"naive {naive:.2f} ({b.calls} calls)",
        result=f"{ratio:.2f}" if m.leads else "0 calls, 0 new leads",
        goal="1.00",
        met=m.calls == m.leads and m.max_per_lead <= 1 and m.wrong == 0,
        raw={**vars(m), "naive_calls": b.calls, "naive_leads": b.leads, "naive_wrong": b.wrong},
    )


def _total(
    measured: list[Count], baseline: list[Count], redis_skipped: bool, cluster_skipped: bool
) -> Figure:
    calls, leads = sum(m.calls for m in measured), sum(m.leads for m in measured)
    naive_calls = sum(b.calls for b in baseline)
    wrong = sum(m.wrong for m in measured)
    note = " (Redis rows skipped: no redis-server)" if redis_skipped else ""
    if cluster_skipped and not redis_skipped:
        note = " (TLS cluster row skipped: needs the cryptography package)"
    return Figure(
        section=SECTION,
        name="calls per unique valid lead: all scenarios" + note,
        measured=f"{calls} calls / {leads} leads, {wrong} rows wrong",
        baseline=f"naive {naive_calls / leads:.2f} ({naive_calls} calls)",
        result=f"{calls / leads:.2f}; {naive_calls / max(calls, 1):.1f}x fewer calls than naive",
        goal="1.00",
        met=calls == leads and wrong == 0 and all(m.max_per_lead <= 1 for m in measured),
        raw={
            "calls": calls,
            "leads": leads,
            "wrong": wrong,
            "naive_calls": naive_calls,
            "ratio": calls / leads,
            "redis_skipped": redis_skipped,
            "cluster_skipped": cluster_skipped,
        },
    )
