"""The per-worker object graph: state, client, engine, jobs, refill and the background thread.

`init_app()` builds it once per worker process, stores it as `app.extensions["udf"]`, and owns
its life: `shutdown()` stops the background thread, waits briefly for running jobs, and hands
the rest off (their leases expire and another worker resumes them).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from dataclasses import dataclass

from flask import Flask, current_app

from .config import Settings
from .engine import Engine
from .jobs import Background, Jobs, Refill
from .protocols import snowflake
from .sixsense.client import SixsenseClient
from .state import State, state_from_url

log = logging.getLogger("udf_service")

SIMULATOR_TOKEN = "simulator-token"


@dataclass
class Services:
    settings: Settings
    state: State
    engine: Engine
    jobs: Jobs
    refill: Refill
    background: Background | None

    def shutdown(self, grace_s: float = 10.0) -> None:
        if self.background:
            self.background.stop()
        finished = self.jobs.wait_idle(grace_s)
        log.info("shutdown", extra={"jobs_finished": finished})
        self.engine.close()
        self.state.close()


def owner_id() -> str:
    """Who holds a claim or lease: host, pid and a random suffix (pids repeat across hosts)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def build(settings: Settings, start_background: bool = True) -> Services:
    from . import metrics

    state = state_from_url(settings.state_url)
    client = SixsenseClient(
        settings.base_url,
        settings.api_token or SIMULATOR_TOKEN,
        connect_timeout_s=settings.connect_timeout_s,
        read_timeout_s=settings.read_timeout_s,
        pool_size=settings.upstream_concurrency,
        observe=lambda label: metrics.UPSTREAM_CALLS.labels(label).inc(),
    )
    engine = Engine(settings, state, client, owner_id())
    jobs = Jobs(
        engine, snowflake.encode, settings.job_ttl_s, settings.max_async_batches, settings.threads - 1
    )
    refill = Refill(engine)
    background = Background(jobs, refill) if start_background else None
    if background:
        background.start()
    return Services(settings, state, engine, jobs, refill, background)


def init_app(app: Flask, settings: Settings, start_background: bool = True) -> Services:
    services = build(settings, start_background)
    app.extensions["udf"] = services
    return services


def services() -> Services:
    return current_app.extensions["udf"]
