"""Bounded soak: many cached rows and some new ones through several workers and parallel batches.

Full size (issue 7): 200,000 cached rows and 5,000 uncached rows, 4 workers, 16 parallel batches of
500 rows, every batch a mix of both. The cached rows repeat a pool of 20,000 leads written to the
cache beforehand; the uncached rows are 5,000 distinct new leads, fetched from the simulator (20 ms).
Reports: lost rows (no answer, or a status other than the simulator's), upstream calls per new
lead, p50/p99 batch latency, and the workers' total memory at each tenth of the run, to show
whether it stops growing (growth over the second half of the batches against the first half). The
judge is private memory (RssAnon): VmRSS also counts the pages of the SQLite file, which the state
reads through a memory map (at most `MMAP_BYTES` of it, shared with every worker and the OS page
cache), so it grows with the part of the cache a run has touched; both are reported.

    python -m udf_service.bench.soak                      # full size
    python -m udf_service.bench.soak --size quick         # a few seconds (CI)
    python -m udf_service.bench.soak --cached-rows 50000 --uncached-rows 1000 --workers 2 --json soak.json
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from typing import Any

import orjson

from .common import (
    Caller,
    Figure,
    Workspace,
    lost_rows,
    machine,
    ms,
    new_query_id,
    percentile,
    prefill_cache,
    print_table,
    rss_mb,
    unique_leads,
)

SECTION = "soak"
LATENCY_MS = 20.0


@dataclass(frozen=True)
class Size:
    cached_rows: int
    uncached_rows: int
    pool: int  # distinct cached leads the cached rows repeat
    workers: int = 4
    parallel: int = 16
    batch_rows: int = 500
    max_s: int = 240  # no batch is started after this; unsent rows are reported, not counted as lost


FULL = Size(cached_rows=200_000, uncached_rows=5_000, pool=20_000)
QUICK = Size(
    cached_rows=4_000, uncached_rows=200, pool=1_000, workers=2, parallel=8, batch_rows=100, max_s=60
)


def run(quick: bool = False, size: Size | None = None) -> list[Figure]:
    size = size or (QUICK if quick else FULL)
    rng = random.Random(7)
    pool = unique_leads(size.pool, "soak-c", domains=1000)
    new = unique_leads(size.uncached_rows, "soak-n", domains=1000)
    rows = [rng.choice(pool) for _ in range(size.cached_rows)] + new
    rng.shuffle(rows)
    batches = [rows[i : i + size.batch_rows] for i in range(0, len(rows), size.batch_rows)]
    with Workspace("soak") as ws:
        state_url = ws.sqlite_url()
        prefill_cache(state_url, pool)
        simulator = ws.simulator(latency_ms=LATENCY_MS)
        service = ws.service(
            simulator.url, state_url, workers=size.workers, env={"SIXSENSE_RATE_LIMIT": "600000/minute"}
        )
        pids = service.worker_pids()
        rest = (sum(rss_mb(pid) for pid in pids), sum(rss_mb(pid, "RssAnon") for pid in pids))
        caller = Caller(service.function_url, max_poll_s=600)
        outcome = _drive(caller, batches, size.parallel, pids, size.max_s)
        calls = simulator.stats()["calls"]
    sent = [(b, v) for b, v in zip(batches, outcome["values"], strict=True) if v is not None]
    lost = sum(lost_rows(batch, values) for batch, values in sent)
    sent_rows = sum(len(batch) for batch, _ in sent)
    sent_new = sum(1 for batch, _ in sent for row in batch if row[0].startswith("soak-n"))
    return _figures(size, len(rows), sent_rows, sent_new, lost, calls, rest, outcome)


def _drive(
    caller: Caller, batches: list[list[Any]], parallel: int, pids: list[int], max_s: float
) -> dict[str, Any]:
    """Send every batch, `parallel` at a time; RSS of the workers after each tenth of the batches."""
    query_id = new_query_id()
    values: list[list[Any] | None] = [None] * len(batches)
    seconds: list[float] = []
    rss: list[float] = []
    private: list[float] = []
    marks = {max(1, round(len(batches) * k / 10)) for k in range(1, 11)}
    lock = threading.Lock()
    done = [0]
    end = time.monotonic() + max_s

    def send(index: int) -> None:
        if time.monotonic() > end:
            return  # bounded in time: this batch is reported as not sent
        started = time.perf_counter()
        answer = caller.send(batches[index], f"{query_id}:1:{index}:0:0", query_id)
        elapsed = time.perf_counter() - started
        with lock:
            values[index] = answer
            seconds.append(elapsed)
            done[0] += 1
            if done[0] in marks:
                rss.append(sum(rss_mb(pid) for pid in pids))
                private.append(sum(rss_mb(pid, "RssAnon") for pid in pids))

    started = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        for future in as_completed([pool.submit(send, i) for i in range(len(batches))]):
            future.result()
    return {
        "values": values,
        "batch_seconds": seconds,
        "rss_by_tenth": rss,
        "private_by_tenth": private,
        "elapsed_s": time.perf_counter() - started,
    }


def _figures(
    size: Size,
    rows: int,
    sent: int,
    sent_new: int,
    lost: int,
    calls: int,
    rest: tuple[float, float],
    o: dict[str, Any],
) -> list[Figure]:
    rss, private = o["rss_by_tenth"], o["private_by_tenth"]
    half = len(private) // 2
    first = private[half - 1] - private[0] if half else 0.0
    second = private[-1] - private[half - 1] if half else 0.0
    stable = second <= max(8.0, 0.5 * first)
    p50, p99 = percentile(o["batch_seconds"], 50), percentile(o["batch_seconds"], 99)
    shape = f"{size.workers} workers, {size.parallel} parallel batches of {size.batch_rows}"
    raw = {
        "cached_rows": size.cached_rows,
        "uncached_rows": size.uncached_rows,
        "rows": rows,
        "rows_sent": sent,
        "lost_rows": lost,
        "upstream_calls": calls,
        "new_leads": sent_new,
        "p50_batch_s": p50,
        "p99_batch_s": p99,
        "rss_rest_mb": rest[0],
        "rss_by_tenth_mb": rss,
        "private_rest_mb": rest[1],
        "private_by_tenth_mb": private,
        "elapsed_s": o["elapsed_s"],
        "rows_per_s": sent / o["elapsed_s"],
        "workers": size.workers,
        "parallel": size.parallel,
        "batch_rows": size.batch_rows,
    }
    unsent = "" if sent == rows else f" (time bound {size.max_s} s: {rows - sent:,} rows not sent)"
    return [
        Figure(
            section=SECTION,
            name=f"{size.cached_rows:,} cached + {size.uncached_rows:,} new rows, {shape}: lost rows",
            measured=f"{lost} lost of {sent:,} sent{unsent}; "
            f"{calls:,} upstream calls for {sent_new:,} new leads",
            baseline=f"{sent / o['elapsed_s']:,.0f} rows/s over {o['elapsed_s']:.1f} s",
            result=f"{lost} lost; {calls / max(sent_new, 1):.2f} calls/new lead",
            goal="0 lost, 1.00 calls/lead",
            met=lost == 0 and calls == sent_new and sent == rows,
            raw=raw,
        ),
        Figure(
            section=SECTION,
            name="batch latency (client wall time per batch, with 202 polls)",
            measured=f"p50 {ms(p50)}, p99 {ms(p99)}",
            baseline=f"{len(o['batch_seconds'])} batches",
            goal="reported",
            raw=raw,
        ),
        Figure(
            section=SECTION,
            name=f"total private memory (RssAnon) of the {size.workers} workers by tenth of the run (MiB)",
            measured=" ".join(f"{v:.0f}" for v in private)
            + f"; VmRSS, with the mapped SQLite file: {' '.join(f'{v:.0f}' for v in rss)}",
            baseline=f"at rest {rest[1]:.0f} private, {rest[0]:.0f} VmRSS",
            result=f"1st half {first:+.1f}, 2nd half {second:+.1f} MiB",
            goal="stops growing (2nd half <= max(8, half of 1st))",
            met=stable,
            raw=raw,
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m udf_service.bench.soak", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--size", choices=("full", "quick"), default="full")
    for name in ("cached-rows", "uncached-rows", "pool", "workers", "parallel", "batch-rows", "max-s"):
        parser.add_argument(f"--{name}", type=int, default=None)
    parser.add_argument("--json", dest="json_path", default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    size = FULL if args.size == "full" else QUICK
    changes = {k: v for k, v in vars(args).items() if k in Size.__dataclass_fields__ and v is not None}
    size = replace(size, **changes)
    started = time.perf_counter()
    figures = run(size=size)
    print_table(figures)
    seconds = time.perf_counter() - started
    print(f"\nsoak finished in {seconds:.1f} s")
    if args.json_path:
        document = {"machine": machine(), "seconds": seconds, "figures": [f.as_dict() for f in figures]}
        with open(args.json_path, "wb") as out:
            out.write(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    return 0 if all(f.met is not False for f in figures[:1]) else 1


if __name__ == "__main__":
    sys.exit(main())
