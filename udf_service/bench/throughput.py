"""3. Fast-upstream throughput: rows per second of new leads, against what the upstream can serve.

The simulator answers after 100 ms with no rate limit, and the service's limit is set far above
what it can reach, so only concurrency counts, and the service's own: nothing is tuned. Calls in
flight follow Little's law on the limit and the measured latency, bounded by
`UDF_UPSTREAM_CONCURRENCY` (256) across all workers and instances, so the service's ideal is
min(limit, 256 / latency) = 2,560 rows/s. On two shared cores the simulator cannot serve that,
so the figure that counts is the service's rate over min(ideal, simulator ceiling), the ceiling
being what a bare client with as many threads as the service keeps in flight gets from the same
simulator in the same run.

Every lead is new (a miss), so every row is one upstream call, and each batch's misses are fetched
by any worker or instance that is free (the shared queue), not only by the one that received it:
each worker's CPU seconds during the run show the split. The naive per-row baseline
(`udf_service/bench/naive.py`, gunicorn with the same workers and threads) gets the same caller;
its own ideal is (parallel batches) / latency. Goal: at least 0.9 of min(ideal, ceiling).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from udf_service.config import Settings
from udf_service.testing.processes import TOKEN
from udf_service.testing.processes import ServiceProcess as Service
from udf_service.testing.processes import SimulatorProcess as Simulator

from .common import (
    FUNCTION_PATH,
    Caller,
    Figure,
    Workspace,
    cpu_seconds,
    lost_rows,
    simulator_ceiling,
    unique_leads,
)

SECTION = "3 throughput"
LATENCY_MS = 100.0
THREADS = 8
CONCURRENCY = Settings().upstream_concurrency  # the default ceiling: nothing is tuned
LIMIT = "1000000/minute"  # far above reach
IDEAL = CONCURRENCY / (LATENCY_MS / 1000)


@dataclass(frozen=True)
class Run:
    workers: int
    parallel: int  # batches in flight, as Snowflake sends them
    instances: int = 1  # more than one: they share a redis-server
    naive: bool = False  # also run the naive baseline with the same caller

    @property
    def name(self) -> str:
        where = (
            f"{self.instances} instances x {self.workers} workers on Redis"
            if self.instances > 1
            else (f"{self.workers} worker{'s' if self.workers > 1 else ''}")
        )
        return f"{where}, {self.parallel} parallel batches"


@dataclass(frozen=True)
class Size:
    seconds: float  # of each run at the simulator's ceiling
    naive_seconds: float
    batch_rows: int
    runs: tuple[Run, ...]


FULL = Size(
    seconds=4.0,
    naive_seconds=3.0,
    batch_rows=100,
    runs=(
        Run(2, 2, naive=True),
        Run(2, 4, naive=True),
        Run(2, 16, naive=True),
        Run(1, 4),
        Run(4, 4),
        Run(2, 4, instances=2),
    ),
)
QUICK = Size(seconds=0.5, naive_seconds=0.3, batch_rows=20, runs=(Run(2, 4, naive=True),))


def run(quick: bool = False) -> list[Figure]:
    size = QUICK if quick else FULL
    figures = []
    with Workspace("throughput") as ws:
        simulator = ws.simulator(latency_ms=LATENCY_MS)
        ceiling = simulator_ceiling(simulator, CONCURRENCY, max(200, int(800 * size.seconds)))
        redis = ws.redis() if any(r.instances > 1 for r in size.runs) else None
        measured = []
        for index, spec in enumerate(size.runs):
            if spec.instances > 1 and redis is None:
                figures.append(_skipped(spec))
                continue
            state_url = redis.url if spec.instances > 1 and redis else ws.sqlite_url(f"tput-{index}")
            services = ws.services(
                spec.instances, simulator.url, state_url, workers=spec.workers, threads=THREADS,
                env={"SIXSENSE_RATE_LIMIT": LIMIT},
            )  # fmt: skip
            rows = unique_leads(max(spec.parallel * 10, int(ceiling * size.seconds)), f"tput-{index}")
            measured.append((spec, _service_run(services, simulator, rows, size.batch_rows, spec.parallel)))
            for service in services:
                service.stop()
        naive_app = ws.gunicorn(
            "udf_service.bench.naive:create_app()",
            workers=2,
            threads=THREADS,
            env={"NAIVE_UPSTREAM_URL": simulator.url, "NAIVE_TOKEN": TOKEN},
        )
        for spec, m in measured:
            naive_rate = naive_ideal = None
            if spec.naive:
                naive_ideal = spec.parallel / (LATENCY_MS / 1000)
                rows = unique_leads(
                    max(spec.parallel, int(naive_ideal * size.naive_seconds)), f"tput-n{spec.parallel}"
                )
                naive = Caller(naive_app.url + FUNCTION_PATH).query(
                    rows, batch_rows=max(1, len(rows) // spec.parallel), parallel=spec.parallel
                )
                naive_rate = len(rows) / naive.elapsed_s
            figures.append(_figure(spec, size, m, ceiling, naive_rate, naive_ideal))
    return figures


def _service_run(
    services: list[Service], simulator: Simulator, rows: list[list[Any]], batch_rows: int, parallel: int
) -> dict[str, Any]:
    pids = [pid for service in services for pid in service.worker_pids()]
    calls_before = simulator.stats()["calls"]
    cpu_before = [cpu_seconds([pid]) for pid in pids]
    result = Caller(services[0].function_url).query(
        rows, batch_rows=batch_rows, parallel=parallel, urls=[s.function_url for s in services]
    )
    cpu = [cpu_seconds([pid]) - before for pid, before in zip(pids, cpu_before, strict=True)]
    return {
        "rows": len(rows),
        "rows_per_s": len(rows) / result.elapsed_s,
        "elapsed_s": result.elapsed_s,
        "calls": simulator.stats()["calls"] - calls_before,
        "wrong": lost_rows(rows, result.values),
        "worker_cpu_s": cpu,
        "polls": result.polls,
    }


def _figure(
    spec: Run,
    size: Size,
    m: dict[str, Any],
    ceiling: float,
    naive_rate: float | None,
    naive_ideal: float | None,
) -> Figure:
    rate, bound = m["rows_per_s"], min(IDEAL, ceiling)
    split = " / ".join(f"{c:.1f}" for c in m["worker_cpu_s"])
    per_lead = m["calls"] / m["rows"]
    naive = f"; naive {naive_rate:.1f} rows/s (its ideal {naive_ideal:.0f})" if naive_rate else ""
    return Figure(
        section=SECTION,
        name=f"rows/s of new leads, upstream {LATENCY_MS:g} ms, limit high: {spec.name} of {size.batch_rows}",
        measured=f"{rate:.1f} rows/s ({m['rows']} rows in {m['elapsed_s']:.2f} s, {per_lead:.2f} calls/lead, "
        f"{m['wrong']} wrong; worker CPU s {split})",
        baseline=f"ideal {IDEAL:.0f} rows/s ({CONCURRENCY} in flight / {LATENCY_MS:g} ms); simulator "
        f"ceiling {ceiling:.0f} (direct, {CONCURRENCY} threads){naive}",
        result=f"{rate / bound:.2f} of min(ideal, ceiling)"
        + (f"; {rate / naive_rate:.1f}x naive" if naive_rate else ""),
        goal=">= 0.90 of min(ideal, ceiling)",
        met=rate / bound >= 0.9 and m["wrong"] == 0 and m["calls"] == m["rows"],
        raw={
            **m,
            "workers": spec.workers,
            "instances": spec.instances,
            "parallel": spec.parallel,
            "ideal_rows_per_s": IDEAL,
            "simulator_ceiling_rows_per_s": ceiling,
            "ratio_to_bound": rate / bound,
            "naive_rows_per_s": naive_rate,
            "naive_ideal_rows_per_s": naive_ideal,
        },
    )


def _skipped(spec: Run) -> Figure:
    return Figure(
        section=SECTION,
        name=f"rows/s of new leads: {spec.name}",
        measured="skipped: redis-server is not installed",
        goal=">= 0.90 of min(ideal, ceiling)",
        raw={"skipped": True},
    )
