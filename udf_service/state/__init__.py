"""State backends, chosen by URL scheme. See ``base.State`` for the contract."""

from __future__ import annotations

from ..clock import SYSTEM, Clock
from ..errors import ConfigError
from .base import BACKGROUND, INTERACTIVE, Answers, Done, Item, Job, Reservation, SendCheck, State, Take

__all__ = [
    "BACKGROUND",
    "INTERACTIVE",
    "Answers",
    "Done",
    "Item",
    "Job",
    "Reservation",
    "SendCheck",
    "State",
    "Take",
    "state_from_url",
]

SCHEMES = {"sqlite": "sqlite", "redis": "redis", "rediss": "redis", "unix": "redis"}
SCHEMES |= {"redis+cluster": "redis", "rediss+cluster": "redis"}


def state_from_url(
    url: str, prefix: str = "sixsense-udf", clock: Clock = SYSTEM, connections: int = 64
) -> State:
    """Open the backend that ``url`` names: ``sqlite:///path`` or ``redis://host:port/db``
    (``rediss://`` for TLS; ``redis+cluster://`` / ``rediss+cluster://`` for Redis Cluster).

    ``clock`` is the SQLite backend's clock (Redis reads its server's ``TIME``); ``connections``
    bounds a Redis client's pool (threads beyond it wait for a free connection).
    """
    backend = SCHEMES.get(url.split(":", 1)[0].lower())
    if backend == "sqlite":
        from .sqlite import SQLiteState

        return SQLiteState.from_url(url, prefix=prefix, clock=clock)
    if backend == "redis":
        from .redis import RedisState

        return RedisState.from_url(url, prefix=prefix, max_connections=connections)
    raise ConfigError(f"unknown state scheme: {url!r} (use sqlite:///path or redis://host:port/db)")
