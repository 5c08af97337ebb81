"""2. Quota efficiency: achieved upstream rate / configured limit, with zero upstream 429s. Goal >= 0.95.

The simulator enforces the limit in fixed windows (429 past it) and answers after 100 ms; the
service is told the same limit in `SIXSENSE_RATE_LIMIT`, and nothing else: its concurrency follows
the limit and the measured latency by itself. All leads of one query are new, sent at once in
parallel batches, so the service is saturated from the first call to the last. The achieved rate
is read from the simulator's own call counter, sampled every 50 ms, between the first and the last
5% of the calls (the ramp and the tail are not pacing). The service keeps `UDF_RATE_HEADROOM`
(default 3%) below the limit on purpose, so its ceiling is 1 / 1.03 = 0.971.

Two families of rows: 600/minute with 1, 2 and 4 workers and two instances on Redis (the limiter
shared across processes), and the curve over quotas, 100/minute (6sense's usual), 6,000/minute
and 60,000/minute, with 2 workers. At 60,000/minute (1,000 calls/s) two shared cores cannot serve
the simulator that fast, so that row is judged against min(limit, simulator ceiling), the ceiling
being what a bare client gets from an unlimited simulator with the same latency in the same run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from udf_service.testing.processes import SimulatorProcess as Simulator

from .common import BenchError, Caller, Figure, StatsSampler, Workspace, simulator_ceiling, unique_leads

SECTION = "2 quota"
LATENCY_MS = 100.0
CEILING_THREADS = 256  # the default UDF_UPSTREAM_CONCURRENCY: as many calls in flight as it allows


@dataclass(frozen=True)
class Limit:
    service: str  # SIXSENSE_RATE_LIMIT
    simulator: str  # the stand-in's fixed windows: the same rate
    per_s: float


PER_10S = Limit("600/minute", "10/second", 10.0)
CURVE = (
    Limit("100/minute", "100/minute", 100 / 60),
    Limit("6000/minute", "100/second", 100.0),
    Limit("60000/minute", "1000/second", 1000.0),
)


@dataclass(frozen=True)
class Config:
    name: str
    workers: int
    instances: int = 1
    redis: bool = False
    limit: Limit = PER_10S
    seconds: float = 20.0  # of saturated calls


FULL = (
    Config("1 worker, SQLite", 1),
    Config("2 workers, SQLite", 2),
    Config("4 workers, SQLite", 4),
    Config("2 instances x 2 workers sharing Redis", 2, instances=2, redis=True),
    Config("100/minute, 2 workers", 2, limit=CURVE[0], seconds=60.0),
    Config("6,000/minute, 2 workers", 2, limit=CURVE[1], seconds=8.0),
    Config("60,000/minute, 2 workers", 2, limit=CURVE[2], seconds=5.0),
)
QUICK = (
    Config("2 workers, SQLite", 2, seconds=4.0),
    Config("6,000/minute, 2 workers", 2, limit=CURVE[1], seconds=1.0),
)


def run(quick: bool = False) -> list[Figure]:
    configs = QUICK if quick else FULL
    figures = []
    with Workspace("quota") as ws:
        simulators: dict[Limit, Simulator] = {}
        # What the machine can serve at all (it binds at 60,000/minute): a bare client on an
        # unlimited simulator with the same latency, in this run.
        ceiling = simulator_ceiling(
            ws.simulator(latency_ms=LATENCY_MS), CEILING_THREADS, 300 if quick else 2000
        )
        redis = ws.redis() if any(c.redis for c in configs) else None
        for index, config in enumerate(configs):
            if config.redis and redis is None:
                figures.append(_skipped(config))
                continue
            if config.limit not in simulators:
                simulators[config.limit] = ws.simulator(
                    latency_ms=LATENCY_MS, rate_limit=config.limit.simulator
                )
            simulator = simulators[config.limit]
            simulator.reset()
            if config.redis and redis is not None:
                redis.flush()
            state_url = redis.url if config.redis and redis else ws.sqlite_url(f"quota-{index}")
            env = {"SIXSENSE_RATE_LIMIT": config.limit.service}
            services = ws.services(
                config.instances, simulator.url, state_url, workers=config.workers, env=env
            )
            bound = min(config.limit.per_s, ceiling)
            figures.append(_measure(config, simulator, [s.function_url for s in services], bound, index))
            for service in services:
                service.stop()
    return figures


def _measure(config: Config, simulator: Simulator, urls: list[str], bound: float, index: int) -> Figure:
    """`bound`: the rate the figure is judged against, the limit or the simulator's ceiling."""
    limit = config.limit
    leads = max(20, int(config.seconds * bound))
    parallel = min(16, 2 * config.workers * config.instances)
    rows = unique_leads(leads, f"quota{index}")
    with StatsSampler(simulator) as sampler:
        result = Caller(urls[0], max_poll_s=config.seconds * 4 + 60).query(
            rows, batch_rows=math.ceil(leads / parallel), parallel=parallel, urls=urls
        )
    stats = simulator.stats()
    rate = steady_rate(sampler.samples, stats["calls"])
    too_many = int(stats["statuses"].get("429", 0))
    ratio = rate / bound
    per_lead = stats["calls"] / leads
    by_limit = bound >= limit.per_s
    judged = "" if by_limit else f"; judged against the simulator ceiling, {bound:.0f}/s direct"
    return Figure(
        section=SECTION,
        name=f"achieved rate / limit: {config.name}",
        measured=f"{rate:.2f} calls/s, {too_many} x 429, "
        f"max {stats['max_window_count']} calls in one window, {per_lead:.2f} calls/lead",
        baseline=f"limit {limit.per_s:.4g}/s (simulator {limit.simulator}, "
        f"SIXSENSE_RATE_LIMIT={limit.service}){judged}",
        result=f"{ratio:.3f} of the {'limit' if by_limit else 'ceiling'}",
        goal=">= 0.95, 0 x 429",
        met=ratio >= 0.95 and too_many == 0 and per_lead == 1.0,
        raw={
            "rate_per_s": rate,
            "ratio": ratio,
            "bound_per_s": bound,
            "limit_per_s": limit.per_s,
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
