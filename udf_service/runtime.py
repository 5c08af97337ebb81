"""The per-worker object graph, built once from `Settings`, and its life.

    state -> pacer, guards -> client -> fetcher -> dispatcher -> waiters -> engine -> jobs

`build()` wires it (tests pass their own transport and clock); `init_app()` stores it as
`app.extensions["udf"]` and `current()` returns it inside a request. `shutdown()` stops taking
work, gives items waiting for a slot back at once (so another worker sends them, not us after our
lease lapsed), lets calls already in the air land and their answers be written, and hands running
jobs to the next worker.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
from flask import Flask, current_app

from . import metrics
from .background import Background
from .clock import SYSTEM, Clock
from .config import Settings
from .engine import Engine
from .fetching import Completer, Concurrency, Dispatcher, Fetcher
from .guards import CreditGuards, SharedPacer
from .protocols import snowflake
from .recent_errors import RecentErrors
from .simulator import Simulator, SimulatorTransport
from .sixsense.client import SixsenseClient
from .snowflake_jobs import SnowflakeJobs
from .state import State, state_from_url
from .values import Value
from .waiting import Waiters

log = logging.getLogger("udf_service")

SIMULATOR_TOKEN = "simulator-token"


@dataclass
class Runtime:
    settings: Settings
    state: State
    client: SixsenseClient
    simulator: Simulator | None
    guards: CreditGuards
    pacer: SharedPacer
    waiters: Waiters
    completer: Completer
    dispatcher: Dispatcher
    engine: Engine
    jobs: SnowflakeJobs
    background: Background | None
    errors: RecentErrors | None = None

    def shutdown(self, grace_s: float = 10.0) -> None:
        """Stop cleanly: see the module docstring for the order and why."""
        if self.background:
            self.background.stop()
        self.dispatcher.stop(grace_s)
        handed = self.jobs.hand_off()
        written = self.completer.stop(grace_s)
        self.waiters.stop()
        log.info("shutdown", extra={"jobs_handed_off": handed, "answers_written": written})
        self.client.close()
        self.state.close()


def owner_id() -> str:
    """Who holds a lease: host, pid and a random suffix (pids repeat across hosts)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def build(
    settings: Settings,
    *,
    background: bool = True,
    transport: httpx.BaseTransport | None = None,
    clock: Clock = SYSTEM,
    state: State | None = None,
) -> Runtime:
    """The object graph of one worker. `background=False`: no threads that take work on their
    own (a Lambda container, the CLI): only the leads a request asks for are fetched."""
    connections = min(settings.upstream_concurrency, 128) + settings.threads + 8
    state = state or state_from_url(settings.state_url, clock=clock, connections=connections)
    simulator = None
    if transport is None and settings.simulate:
        simulator = Simulator(
            latency_ms=settings.simulate_latency_ms, rate_limit=settings.simulate_rate_limit, clock=clock
        )
        transport = SimulatorTransport(simulator)
    client = SixsenseClient(
        settings.base_url,
        settings.api_token or SIMULATOR_TOKEN,
        transport=transport,
        connect_timeout_s=settings.connect_timeout_s,
        read_timeout_s=settings.read_timeout_s,
        max_connections=settings.upstream_concurrency,
        observe=lambda label: metrics.UPSTREAM_CALLS.labels(label).inc(),
    )
    owner = owner_id()
    errors = RecentErrors(state, clock, secrets=[settings.api_token or "", settings.auth_secret or ""])
    pacer = SharedPacer(state, settings.upstream_interval_s, settings.daily_call_budget, clock)
    guards = CreditGuards(state, settings.quota_cooldown_s, settings.daily_call_budget, clock)
    concurrency = Concurrency(settings)
    completer = Completer(state, clock)
    waiters = Waiters(state, clock, requeue_every_s=settings.requeue_every_s)
    fetcher = Fetcher(settings, state, client, pacer, guards, completer, waiters, concurrency, owner, clock)
    fetcher.errors = errors
    dispatcher = Dispatcher(fetcher, state, settings, concurrency, completer, owner, clock)
    waiters.poke = dispatcher.poke
    engine = Engine(settings, state, pacer, guards, waiters, dispatcher, clock)
    jobs = SnowflakeJobs(engine, state, settings, owner, snowflake.encode, _count_full_rows, clock)
    worker = None
    if background:
        worker = Background(
            state, jobs, dispatcher, concurrency, owner, settings.job_lease_s, settings.fetch_lease_s, clock
        )
        worker.add(1.0, engine.flush_lookups)
        worker.add(1.0, errors.flush)
        dispatcher.start()
        worker.start()
    return Runtime(
        settings,
        state,
        client,
        simulator,
        guards,
        pacer,
        waiters,
        completer,
        dispatcher,
        engine,
        jobs,
        worker,
        errors,
    )


def _count_full_rows(values: Sequence[Value]) -> None:
    metrics.count_rows("full", values)


def init_app(app: Flask, runtime: Runtime) -> Runtime:
    app.extensions["udf"] = runtime
    return runtime


def current() -> Runtime:
    """The runtime of the app handling this request."""
    return current_app.extensions["udf"]
