"""5. Memory: resident memory (VmRSS) per worker at rest and after serving 100,000 cached leads,
and the private part of it (RssAnon: VmRSS also counts the SQLite file's pages, which the state
reads through a memory map and every worker shares with the OS page cache).

The cache is filled with 100,000 leads first (written through the service's own state backend, as
the engine writes them: the upstream path would take minutes), then the service starts (2 workers,
SQLite) and every one of those leads is asked for once through `POST /snowflake/people/full`, in
batches of 1,000, 4 at a time. RSS is read from /proc/<pid>/status before and after. The baseline is
the plain Flask app of section 4 under the same gunicorn model and the same requests. The traffic
is bounded in time: if the service is too slow to serve them all, the figure says how many it served.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from .common import (
    FUNCTION_PATH,
    BenchError,
    Caller,
    Figure,
    Workspace,
    lost_rows,
    prefill_cache,
    rss_mb,
    unique_leads,
)

SECTION = "5 memory"
WORKERS = 2
THREADS = 8
BATCH_ROWS = 1000
PARALLEL = 4


@dataclass(frozen=True)
class Size:
    leads: int
    max_s: float  # of traffic per server; no new chunk of batches starts after it


FULL = Size(leads=100_000, max_s=60.0)
QUICK = Size(leads=5_000, max_s=20.0)


def run(quick: bool = False) -> list[Figure]:
    size = QUICK if quick else FULL
    leads = unique_leads(size.leads, "memory", domains=2000)
    with Workspace("memory") as ws:
        state_url = ws.sqlite_url()
        prefill_cache(state_url, leads)
        simulator = ws.simulator()
        service = ws.service(simulator.url, state_url, workers=WORKERS, threads=THREADS)
        ours = _measure(service.function_url, service.worker_pids(), leads, size.max_s)
        samples = Caller(service.function_url).query(leads[:64], batch_rows=64, parallel=1).values
        service.stop()
        if simulator.stats()["calls"]:
            raise BenchError("the cache was not warm: the service called the simulator")
        values_path = ws.dir / "values.json"
        values_path.write_text(json.dumps(samples))
        plain = ws.gunicorn(
            "udf_service.bench.plain_flask:create_app()",
            workers=WORKERS,
            threads=THREADS,
            env={"PLAIN_FLASK_VALUES": str(values_path)},
        )
        theirs = _measure(plain.url + FUNCTION_PATH, plain.worker_pids(), leads, size.max_s)
    label = f"{size.leads:,}"
    return [
        Figure(
            section=SECTION,
            name="RSS per worker at rest (MiB)",
            measured=_mib(ours["rest"]),
            baseline=f"plain Flask + json: {_mib(theirs['rest'])}",
            result=f"+{max(ours['rest']) - max(theirs['rest']):.1f} MiB over plain",
            goal="reported",
            raw={"service": ours, "plain_flask": theirs},
        ),
        Figure(
            section=SECTION,
            name=f"RSS per worker after {label} cached leads (MiB)",
            measured=f"{_mib(ours['after'])} after {ours['served']:,} leads in {ours['seconds']:.1f} s"
            + ("" if ours["served"] == size.leads else f" (time bound {size.max_s:g} s hit)")
            + f", {ours['wrong']} rows wrong",
            baseline=f"plain Flask + json: {_mib(theirs['after'])} after {theirs['served']:,} leads "
            f"in {theirs['seconds']:.1f} s",
            result=f"grew {_growth(ours)}; plain grew {_growth(theirs)}; private memory (RssAnon) grew "
            f"{_growth(ours, 'private_')}, plain {_growth(theirs, 'private_')}",
            goal="reported",
            raw={"service": ours, "plain_flask": theirs, "leads": size.leads},
        ),
    ]


def _measure(url: str, pids: list[int], leads: list[list[Any]], max_s: float) -> dict[str, Any]:
    rest = [rss_mb(pid) for pid in pids]
    private_rest = [rss_mb(pid, "RssAnon") for pid in pids]
    caller = Caller(url)
    chunk = BATCH_ROWS * PARALLEL * 2
    served, wrong, seconds = 0, 0, []
    started = time.perf_counter()
    while served < len(leads) and time.perf_counter() - started < max_s:
        rows = leads[served : served + chunk]
        result = caller.query(rows, batch_rows=BATCH_ROWS, parallel=PARALLEL)
        wrong += lost_rows(rows, result.values)
        seconds += result.batch_seconds
        served += len(rows)
    after = [rss_mb(pid) for pid in pids]
    private = [rss_mb(pid, "RssAnon") for pid in pids]
    return {
        "rest": rest,
        "after": after,
        "private_rest": private_rest,
        "private_after": private,
        "served": served,
        "wrong": wrong,
        "seconds": time.perf_counter() - started,
        "batch_seconds": seconds,
    }


def _mib(values: list[float]) -> str:
    return " / ".join(f"{v:.1f}" for v in values)


def _growth(m: dict[str, Any], kind: str = "") -> str:
    pairs = zip(m[f"{kind}rest"], m[f"{kind}after"], strict=True)
    return " / ".join(f"{a - r:+.1f}" for r, a in pairs) + " MiB"
