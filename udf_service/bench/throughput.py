"""3. Fast-upstream throughput: rows per second of new leads, against the ideal and the naive baseline.

The simulator answers after 100 ms with no rate limit, and the service's limit is set far above
what it can reach, so only concurrency counts. The ideal is (workers x UDF_UPSTREAM_CONCURRENCY) /
latency. The naive baseline (`udf_service/bench/naive.py`, gunicorn with the same workers and
threads) gets the same Snowflake-style caller with the same parallel batches against the same
simulator; its own ideal is (parallel batches) / latency, since it handles one row at a time per
batch. Every lead is new (a miss), so every row is one upstream call. Goal: at least 0.9 of the
ideal.

Two more readings explain the figure: the simulator's own ceiling (a client in this process with
the same number of threads calling it directly: the simulator closes every connection and shares
the two cores), and each worker's CPU seconds during the run: a keep-alive connection stays with
the worker that accepted it, so with few parallel batches one worker may get most of them, and a
worker's upstream pool (UDF_UPSTREAM_CONCURRENCY) serves only the batches that worker received.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests

from udf_service.testing.processes import TOKEN
from udf_service.testing.processes import ServiceProcess as Service
from udf_service.testing.processes import SimulatorProcess as Simulator

from .common import FUNCTION_PATH, Caller, Figure, Workspace, cpu_seconds, lost_rows, unique_leads

SECTION = "3 throughput"
LATENCY_MS = 100.0
WORKERS = 2
THREADS = 8
CONCURRENCY = 8  # UDF_UPSTREAM_CONCURRENCY, the default
IDEAL = WORKERS * CONCURRENCY / (LATENCY_MS / 1000)


@dataclass(frozen=True)
class Size:
    seconds: float  # of the service's run at the ideal rate
    naive_seconds: float
    batch_rows: int
    parallel: tuple[int, ...]  # batches in flight, as Snowflake sends them (the tests' caller: 4)


FULL = Size(seconds=8.0, naive_seconds=4.0, batch_rows=50, parallel=(4, 16))
QUICK = Size(seconds=1.0, naive_seconds=0.5, batch_rows=10, parallel=(4,))


def run(quick: bool = False) -> list[Figure]:
    size = QUICK if quick else FULL
    figures = []
    with Workspace("throughput") as ws:
        simulator = ws.simulator(latency_ms=LATENCY_MS)
        ceiling = _direct_ceiling(simulator, int(IDEAL * size.naive_seconds))
        env = {"SIXSENSE_RATE_LIMIT": "1000000/minute", "UDF_UPSTREAM_CONCURRENCY": str(CONCURRENCY)}
        service = ws.service(simulator.url, ws.sqlite_url(), workers=WORKERS, threads=THREADS, env=env)
        runs = [_service_run(service, simulator, size, parallel) for parallel in size.parallel]
        service.stop()
        naive_app = ws.gunicorn(
            "udf_service.bench.naive:create_app()",
            workers=WORKERS,
            threads=THREADS,
            env={"NAIVE_UPSTREAM_URL": simulator.url, "NAIVE_TOKEN": TOKEN},
        )
        for parallel, measured in zip(size.parallel, runs, strict=True):
            naive_ideal = parallel / (LATENCY_MS / 1000)
            rows = unique_leads(max(parallel, int(naive_ideal * size.naive_seconds)), f"tput-n{parallel}")
            naive = Caller(naive_app.url + FUNCTION_PATH).query(
                rows, batch_rows=max(1, len(rows) // parallel), parallel=parallel
            )
            naive_rate = len(rows) / naive.elapsed_s
            figures.append(_figure(size, parallel, measured, naive_rate, naive_ideal, ceiling))
    return figures


def _service_run(service: Service, simulator: Simulator, size: Size, parallel: int) -> dict[str, Any]:
    rows = unique_leads(int(IDEAL * size.seconds), f"tput-s{parallel}")
    pids = service.worker_pids()
    calls_before = simulator.stats()["calls"]
    cpu_before = [cpu_seconds([pid]) for pid in pids]
    result = Caller(service.function_url).query(rows, batch_rows=size.batch_rows, parallel=parallel)
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


def _direct_ceiling(simulator: Simulator, count: int) -> float:
    """Rows/s of a bare client with WORKERS x CONCURRENCY threads calling the simulator directly."""
    local = threading.local()
    url, auth = f"{simulator.url}/v2/people/full", {"Authorization": f"Token {TOKEN}"}

    def call(row: list[Any]) -> None:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        local.session.post(url, data={"email": row[0], "country": row[1]}, headers=auth, timeout=30)

    rows = unique_leads(count, "tput-direct")
    started = time.perf_counter()
    with ThreadPoolExecutor(WORKERS * CONCURRENCY) as pool:
        list(pool.map(call, rows))
    return len(rows) / (time.perf_counter() - started)


def _figure(
    size: Size, parallel: int, m: dict[str, Any], naive_rate: float, naive_ideal: float, ceiling: float
) -> Figure:
    rate = m["rows_per_s"]
    split = " / ".join(f"{c:.1f}" for c in m["worker_cpu_s"])
    return Figure(
        section=SECTION,
        name=f"rows/s of new leads, upstream {LATENCY_MS:g} ms, limit high, {parallel} parallel batches "
        f"of {size.batch_rows}",
        measured=f"{rate:.1f} rows/s ({m['rows']} rows in {m['elapsed_s']:.2f} s, {m['calls']} calls, "
        f"{m['wrong']} wrong; worker CPU s {split})",
        baseline=f"ideal {IDEAL:.0f} rows/s ({WORKERS} workers x {CONCURRENCY} / {LATENCY_MS:g} ms); "
        f"simulator ceiling {ceiling:.0f} (direct, {WORKERS * CONCURRENCY} threads); "
        f"naive {naive_rate:.1f} rows/s (its ideal {naive_ideal:.0f})",
        result=f"{rate / IDEAL:.2f} of ideal ({rate / ceiling:.2f} of ceiling); "
        f"{rate / naive_rate:.1f}x naive",
        goal=">= 0.90 of ideal",
        met=rate / IDEAL >= 0.9 and m["wrong"] == 0,
        raw={
            **m,
            "parallel": parallel,
            "ideal_rows_per_s": IDEAL,
            "simulator_ceiling_rows_per_s": ceiling,
            "naive_rows_per_s": naive_rate,
            "naive_ideal_rows_per_s": naive_ideal,
            "ratio_to_ideal": rate / IDEAL,
            "ratio_to_ceiling": rate / ceiling,
            "ratio_to_naive": rate / naive_rate,
        },
    )
