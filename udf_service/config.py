"""Settings, read from the environment once and validated at start-up.

The variable names are a contract shared with the README, the SQL, the Dockerfile and Terraform
(see DESIGN.md): change one only everywhere at once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import ConfigError

PRODUCTION_BASE_URL = "https://scribe.6sense.com"
DEFAULT_STATE_URL = "sqlite:///./.udf-state/state.db"

_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*\.?\d*)\s*([a-z]+?)s?\s*$")


@dataclass(frozen=True)
class RateLimit:
    """`amount` calls per `per_s` seconds, parsed once from strings such as ``100/minute``."""

    amount: int
    per_s: float

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        match = _RATE.match(text.lower())
        if not match or match.group(3) not in _UNITS or int(match.group(1)) <= 0:
            raise ConfigError(
                f"invalid rate limit {text!r}: expected '<calls>/<unit>' such as '100/minute' "
                "(units: second, minute, hour, day)"
            )
        multiple = float(match.group(2)) if match.group(2) else 1.0
        return cls(amount=int(match.group(1)), per_s=multiple * _UNITS[match.group(3)])

    @property
    def per_second(self) -> float:
        return self.amount / self.per_s

    def __str__(self) -> str:
        return f"{self.amount}/{self.per_s:g}s"


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment. Tests build one directly."""

    api_token: str | None = None
    base_url: str = PRODUCTION_BASE_URL
    simulate: bool = False
    rate_limit: RateLimit = RateLimit(100, 60.0)
    default_country: str | None = None
    state_url: str = DEFAULT_STATE_URL
    sync_budget_s: float = 20.0
    auth_header: str | None = None
    auth_secret: str | None = None
    daily_call_budget: int | None = None
    max_body_bytes: int = 10 * 1024 * 1024
    cache_ttl_ok_s: float = 7 * 86400
    cache_ttl_no_match_s: float = 86400
    simulate_latency_ms: float = 0.0
    simulate_rate_limit: RateLimit | None = None
    upstream_concurrency: int = 256
    rate_headroom: float = 0.03
    connect_timeout_s: float = 3.05
    read_timeout_s: float = 15.0
    quota_cooldown_s: float = 3600.0
    job_ttl_s: float = 12 * 3600
    job_lease_s: float = 15.0
    fetch_lease_s: float = 30.0
    requeue_every_s: float = 10.0
    max_async_batches: int = 32
    threads: int = 8
    shutdown_grace_s: float = 10.0
    log_level: str = "INFO"
    client_read_timeout_s: float = 15.0  # a request's head and body must arrive within this

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        get = _Reader(env)
        settings = cls(
            api_token=get.text("SIXSENSE_API_TOKEN"),
            base_url=(get.text("SIXSENSE_BASE_URL") or PRODUCTION_BASE_URL).rstrip("/"),
            simulate=get.flag("SIXSENSE_SIMULATE"),
            rate_limit=get.rate_limit("SIXSENSE_RATE_LIMIT") or RateLimit(100, 60.0),
            default_country=get.text("SIXSENSE_DEFAULT_COUNTRY"),
            state_url=get.text("UDF_STATE_URL") or DEFAULT_STATE_URL,
            sync_budget_s=get.number("UDF_SYNC_BUDGET_S", 20.0, minimum=0.0),
            auth_header=get.text("UDF_AUTH_HEADER"),
            auth_secret=get.text("UDF_AUTH_SECRET"),
            daily_call_budget=get.optional_int("UDF_DAILY_CALL_BUDGET"),
            max_body_bytes=int(get.number("UDF_MAX_BODY_BYTES", 10 * 1024 * 1024, minimum=1024)),
            cache_ttl_ok_s=get.number("UDF_CACHE_TTL_OK_S", 7 * 86400, minimum=0.0),
            cache_ttl_no_match_s=get.number("UDF_CACHE_TTL_NO_MATCH_S", 86400, minimum=0.0),
            simulate_latency_ms=get.number("SIXSENSE_SIMULATE_LATENCY_MS", 0.0, minimum=0.0),
            simulate_rate_limit=get.rate_limit("SIXSENSE_SIMULATE_RATE_LIMIT"),
            upstream_concurrency=int(get.number("UDF_UPSTREAM_CONCURRENCY", 256, minimum=1)),
            rate_headroom=get.number("UDF_RATE_HEADROOM", 0.03, minimum=0.0),
            connect_timeout_s=get.number("SIXSENSE_CONNECT_TIMEOUT_S", 3.05, minimum=0.1),
            read_timeout_s=get.number("SIXSENSE_READ_TIMEOUT_S", 15.0, minimum=0.1),
            quota_cooldown_s=get.number("UDF_QUOTA_COOLDOWN_S", 3600.0, minimum=0.0),
            job_ttl_s=get.number("UDF_JOB_TTL_S", 12 * 3600, minimum=600.0),
            job_lease_s=get.number("UDF_JOB_LEASE_S", 15.0, minimum=0.5),
            fetch_lease_s=get.number("UDF_FETCH_LEASE_S", 30.0, minimum=0.5),
            requeue_every_s=get.number("UDF_REQUEUE_EVERY_S", 10.0, minimum=0.5),
            max_async_batches=int(get.number("UDF_MAX_ASYNC_BATCHES", 32, minimum=1)),
            threads=int(get.number("UDF_THREADS", 8, minimum=1)),
            shutdown_grace_s=get.number("UDF_SHUTDOWN_GRACE_S", 10.0, minimum=0.0),
            log_level=(get.text("UDF_LOG_LEVEL") or "INFO").upper(),
            client_read_timeout_s=get.number("UDF_CLIENT_READ_TIMEOUT_S", 15.0, minimum=0.5),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        if not self.api_token and not self.simulate:
            raise ConfigError(
                "SIXSENSE_API_TOKEN is not set. Set it to your 6sense token (API group "
                "'Lead Scoring API'), or set SIXSENSE_SIMULATE=1 to serve from the built-in simulator."
            )
        if bool(self.auth_header) != bool(self.auth_secret):
            raise ConfigError("UDF_AUTH_HEADER and UDF_AUTH_SECRET must be set together")
        schemes = ("sqlite://", "redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")
        if not self.state_url.lower().startswith(schemes):
            raise ConfigError(
                f"unknown state scheme: {self.state_url!r} (use sqlite:///path, redis://host:port/db, "
                "rediss://... for TLS or redis+cluster://host:port for Redis Cluster)"
            )

    @property
    def upstream_interval_s(self) -> float:
        """Seconds between two upstream calls, with headroom for clock and network jitter."""
        return self.rate_limit.per_s / self.rate_limit.amount * (1.0 + self.rate_headroom)

    @property
    def upstream_label(self) -> str:
        """What answers the service's upstream calls, as the log and /readyz say it."""
        return "SIMULATOR (not 6sense)" if self.simulate else "6sense"


class _Reader:
    """Reads typed values from an environment mapping, naming the variable in every error."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def text(self, name: str) -> str | None:
        value = self.env.get(name, "").strip()
        return value or None

    def flag(self, name: str) -> bool:
        value = (self.text(name) or "0").lower()
        if value not in {"0", "1", "true", "false", "yes", "no"}:
            raise ConfigError(f"{name} must be 0 or 1, not {value!r}")
        return value in {"1", "true", "yes"}

    def number(self, name: str, default: float, minimum: float) -> float:
        raw = self.text(name)
        if raw is None:
            return float(default)
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, not {raw!r}") from None
        if value < minimum:
            raise ConfigError(f"{name} must be at least {minimum:g}, not {raw!r}")
        return value

    def rate_limit(self, name: str) -> RateLimit | None:
        raw = self.text(name)
        if raw is None:
            return None
        try:
            return RateLimit.parse(raw)
        except ConfigError as exc:
            raise ConfigError(f"{name}: {exc}") from None

    def optional_int(self, name: str) -> int | None:
        raw = self.text(name)
        if raw is None:
            return None
        if not raw.isdigit():
            raise ConfigError(f"{name} must be a whole number, not {raw!r}")
        return int(raw)
