"""2. Quota efficiency: achieved upstream rate / configured limit, with zero upstream 429s. Goal >= 0.95.

The simulator enforces 10 requests per second in fixed one-second windows (429 past it) and answers
after 100 ms; the service is told `SIXSENSE_RATE_LIMIT=600/minute`. All leads of one query are new,
sent at once in parallel batches, so the service is saturated from the first call to the last.
The achieved rate is read from the simulator's own call counter, sampled every 50 ms, between the
first and the last 5% of the calls (the ramp and the tail are not pacing). The service keeps
`UDF_RATE_HEADROOM` (default 3%) below the limit on purpose, so its ceiling is 1 / 1.03 = 0.971.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from udf_service.testing.processes import SimulatorProcess as Simulator

from .common import BenchError, Caller, Figure, StatsSampler, Workspace, unique_leads

SECTION = "2 quota"
SIM_LIMIT = "10/second"
SERVICE_LIMIT = "600/minute"
LIMIT_PER_S = 10.0
LATENCY_MS = 100.0


@dataclass(frozen=True)
class Config:
    name: str
    workers: int
    instances: int = 1
    redis: bool = False


FULL = (
    Config("1 worker, SQLite", 1),
    Config("2 workers, SQLite", 2),
    Config("4 workers, SQLite", 4),
    Config("2 instances x 2 workers sharing Redis", 2, instances=2, redis=True),
)
QUICK = (Config("2 workers, SQLite", 2),)
FULL_SECONDS = 20.0
QUICK_SECONDS = 4.0


def run(quick: bool = False) -> list[Figure]:
    configs, seconds = (QUICK, QUICK_SECONDS) if quick else (FULL, FULL_SECONDS)
    figures = []
    with Workspace("quota") as ws:
        simulator = ws.simulator(latency_ms=LATENCY_MS, rate_limit=SIM_LIMIT)
        redis = ws.redis() if any(c.redis for c in configs) else None
        for index, config in enumerate(configs):
            if config.redis and redis is None:
                figures.append(_skipped(config))
                continue
            simulator.reset()
            if config.redis and redis is not None:
                redis.flush()
            state_url = redis.url if config.redis and redis else ws.sqlite_url(f"quota-{index}")
            env = {"SIXSENSE_RATE_LIMIT": SERVICE_LIMIT}
            services = ws.services(
                config.instances, simulator.url, state_url, workers=config.workers, env=env
            )
            figures.append(_measure(config, simulator, [s.function_url for s in services], seconds, index))
            for service in services:
                service.stop()
    return figures


def _measure(config: Config, simulator: Simulator, urls: list[str], seconds: float, index: int) -> Figure:
    leads = int(seconds * LIMIT_PER_S)
    parallel = min(16, 2 * config.workers * config.instances)
    rows = unique_leads(leads, f"quota{index}")
    with StatsSampler(simulator) as sampler:
        result = Caller(urls[0], max_poll_s=seconds * 4 + 60).query(
            rows, batch_rows=math.ceil(leads / parallel), parallel=parallel, urls=urls
        )
    stats = simulator.stats()
    rate = steady_rate(sampler.samples, stats["calls"])
    too_many = int(stats["statuses"].get("429", 0))
    ratio = rate / LIMIT_PER_S
    per_lead = stats["calls"] / leads
    return Figure(
        section=SECTION,
        name=f"achieved rate / limit: {config.name}",
        measured=f"{rate:.2f} calls/s, {too_many} x 429, "
        f"max {stats['max_window_count']} calls in a 1 s window, {per_lead:.2f} calls/lead",
        baseline=f"limit {LIMIT_PER_S:g}/s (simulator {SIM_LIMIT}, SIXSENSE_RATE_LIMIT={SERVICE_LIMIT})",
        result=f"{ratio:.3f}",
        goal=">= 0.95, 0 x 429",
        met=ratio >= 0.95 and too_many == 0,
        raw={
            "rate_per_s": rate,
            "ratio": ratio,
            "upstream_429": too_many,
            "calls": stats["calls"],
            "leads": leads,
            "max_window_count": stats["max_window_count"],
            "elapsed_s": result.elapsed_s,
            "workers": config.workers,
            "instances": config.instances,
        },
    )


def steady_rate(samples: list[tuple[float, int]], total: int) -> float:
    """Calls per second between the first and the last 5% of `total` calls, from (time, calls) samples."""
    edge = max(2, total // 20)
    start = next(((t, c) for t, c in samples if c >= edge), None)
    end = next(((t, c) for t, c in samples if c >= total - edge), None)
    if start is None or end is None or end[0] <= start[0]:
        raise BenchError(f"too few samples to measure a rate ({len(samples)} samples, {total} calls)")
    return (end[1] - start[1]) / (end[0] - start[0])


def _skipped(config: Config) -> Figure:
    return Figure(
        section=SECTION,
        name=f"achieved rate / limit: {config.name}",
        measured="skipped: redis-server is not installed",
        goal=">= 0.95, 0 x 429",
        raw={"skipped": True},
    )
