"""4. Cached path: rows per second per core and latency for fully cached batches, as a curve over batch size.

Batches of 1, 10, 100, 1,000 and 4,000 rows (Snowflake sends up to about 4,096); `--quick` measures
1 and 100 rows only, briefly.

Every row is a lead already in the cache, so a request is decode, validate, one cache lookup, encode,
as in a repeated query. Both the service (`udf-service serve`, 2 workers x 8 threads, SQLite) and
the baseline (`udf_service/bench/plain_flask.py`: plain Flask + stdlib json, same gunicorn model, same values)
get the same gzip-compressed Snowflake-style requests from 4 client threads for a fixed time.

Rows per second per core = rows answered / CPU seconds the server's workers used (user + system,
from /proc), so the client sharing the machine does not count against the server. Latency is the
client's wall time per request (p50, p99). Goal (issue 17): at least the baseline's rows/s per core
in the same run at 100 and 1,000 rows, at least 0.9 of it for 1-row batches (where Flask and
gunicorn's own cost per request is most of both); the other sizes are reported.
"""

from __future__ import annotations

import gzip
import itertools
import json
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson
import requests

from .common import (
    FUNCTION_PATH,
    BenchError,
    Caller,
    Figure,
    Workspace,
    cpu_seconds,
    encode_batch,
    ms,
    new_query_id,
    percentile,
    prefill_cache,
    snowflake_headers,
    unique_leads,
)

SECTION = "4 cached"
BATCH_SIZES = (1, 10, 100, 1000, 4000)
QUICK_BATCH_SIZES = (1, 100)
# The least service/baseline ratio per core that meets the goal, by batch size (None: reported).
GOAL_RATIO = {1: 0.9, 100: 1.0, 1000: 1.0}
CLIENT_THREADS = 4
WORKERS = 2
THREADS = 8
LEADS = 4000  # every row of the largest batch a distinct cached lead
SAMPLE_VALUES = 64


@dataclass(frozen=True)
class Size:
    seconds: float  # per (server, batch size)
    max_requests: int


FULL = Size(seconds=4.0, max_requests=200_000)
QUICK = Size(seconds=0.3, max_requests=2_000)


@dataclass
class Load:
    rows: int
    requests: int
    wall_s: float
    cpu_s: float
    latencies: list[float]

    @property
    def rows_per_core_s(self) -> float:
        return self.rows / self.cpu_s if self.cpu_s else float("nan")

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.wall_s

    def summary(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "requests": self.requests,
            "wall_s": self.wall_s,
            "cpu_s": self.cpu_s,
            "rows_per_core_s": self.rows_per_core_s,
            "rows_per_s": self.rows_per_s,
            "p50_s": percentile(self.latencies, 50),
            "p99_s": percentile(self.latencies, 99),
        }


def run(quick: bool = False) -> list[Figure]:
    size = QUICK if quick else FULL
    leads = unique_leads(LEADS, "cached")
    with Workspace("cached") as ws:
        state_url = ws.sqlite_url()
        prefill_cache(state_url, leads)
        simulator = ws.simulator()
        service = ws.service(simulator.url, state_url, workers=WORKERS, threads=THREADS)
        samples = Caller(service.function_url).query(
            leads[:SAMPLE_VALUES], batch_rows=SAMPLE_VALUES, parallel=1
        )
        if simulator.stats()["calls"]:
            raise BenchError("the cache was not warm: the service called the simulator")
        values_path = ws.dir / "values.json"
        values_path.write_text(json.dumps(samples.values))
        plain = ws.gunicorn(
            "udf_service.bench.plain_flask:create_app()",
            workers=WORKERS,
            threads=THREADS,
            env={"PLAIN_FLASK_VALUES": str(values_path)},
        )
        figures = []
        for batch in QUICK_BATCH_SIZES if quick else BATCH_SIZES:
            bodies = _requests(leads, batch)
            ours = load(service.function_url, service.worker_pids(), bodies, size)
            theirs = load(plain.url + FUNCTION_PATH, plain.worker_pids(), bodies, size)
            figures.append(_figure(batch, ours, theirs))
        if simulator.stats()["calls"]:
            raise BenchError("the cached path called the simulator")
    return figures


def _requests(leads: Sequence[list[Any]], batch: int, count: int = 32) -> list[tuple[bytes, dict[str, str]]]:
    """`count` gzip-compressed request bodies of `batch` cached leads, with Snowflake headers."""
    rng = random.Random(batch)
    query_id = new_query_id()
    bodies = []
    for i in range(count):
        rows = rng.sample(list(leads), batch)
        bodies.append((encode_batch(rows), snowflake_headers(query_id, f"{query_id}:1:{i}:0:0")))
    return bodies


def load(url: str, pids: Sequence[int], bodies: Sequence[tuple[bytes, dict[str, str]]], size: Size) -> Load:
    """Send the bodies round-robin from CLIENT_THREADS threads for `size.seconds`; measure the server."""
    rows_per_body = [len(orjson.loads(gzip.decompress(body))["data"]) for body, _ in bodies]
    _check(url, bodies[0], rows_per_body[0])
    counter = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    rows = [0]
    end_at = [0.0]

    def client() -> None:
        session = requests.Session()
        mine: list[float] = []
        sent = 0
        while time.perf_counter() < end_at[0]:
            index = next(counter)
            if index >= size.max_requests:
                break
            body, headers = bodies[index % len(bodies)]
            started = time.perf_counter()
            response = session.post(url, data=body, headers=headers, stream=True, timeout=60)
            response.raw.read(decode_content=False)  # the bytes, not decoded: the client stays cheap
            mine.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise BenchError(f"{url}: HTTP {response.status_code}")
            sent += rows_per_body[index % len(bodies)]
        with lock:
            latencies.extend(mine)
            rows[0] += sent

    cpu_before = cpu_seconds(pids)
    started = time.perf_counter()
    end_at[0] = started + size.seconds
    _run_threads(client, CLIENT_THREADS)
    wall = time.perf_counter() - started
    return Load(rows[0], len(latencies), wall, cpu_seconds(pids) - cpu_before, latencies)


def _run_threads(target: Callable[[], None], count: int) -> None:
    with ThreadPoolExecutor(count) as pool:
        for future in [pool.submit(target) for _ in range(count)]:
            future.result()


def _check(url: str, request: tuple[bytes, dict[str, str]], rows: int) -> None:
    """One full answer, decoded and checked: right row count, every row from the cache (or a copy)."""
    body, headers = request
    response = requests.post(url, data=body, headers=headers, timeout=60)
    data = orjson.loads(response.content)["data"]
    if response.status_code != 200 or len(data) != rows:
        raise BenchError(f"{url}: HTTP {response.status_code}, {len(data)} rows for {rows}")
    if any(value.get("status") not in ("ok", "no_match") for _, value in data):
        raise BenchError(f"{url}: a cached row came back without its cached value")


def _figure(batch: int, ours: Load, theirs: Load) -> Figure:
    a, b = ours.summary(), theirs.summary()
    ratio = a["rows_per_core_s"] / b["rows_per_core_s"]
    goal = GOAL_RATIO.get(batch)
    return Figure(
        section=SECTION,
        name=f"fully cached batches of {batch:,} rows (gzip, {CLIENT_THREADS} client threads)",
        measured=f"{a['rows_per_core_s']:,.0f} rows/s/core ({a['rows_per_s']:,.0f} rows/s wall); "
        f"p50 {ms(a['p50_s'])}, p99 {ms(a['p99_s'])}",
        baseline=f"plain Flask + json: {b['rows_per_core_s']:,.0f} rows/s/core "
        f"({b['rows_per_s']:,.0f} rows/s wall); p50 {ms(b['p50_s'])}, p99 {ms(b['p99_s'])}",
        result=f"{ratio:.2f}x plain per core",
        goal="reported" if goal is None else f">= {goal:.1f}x plain per core",
        met=None if goal is None else ratio >= goal,
        raw={"batch_rows": batch, "ratio_per_core": ratio, "service": a, "plain_flask": b},
    )
