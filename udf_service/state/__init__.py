"""State backends, chosen by URL scheme. See ``base.State`` for the contract."""

from __future__ import annotations

from ..errors import ConfigError
from .base import Job, State

__all__ = ["Job", "State", "state_from_url"]


def state_from_url(url: str, prefix: str = "sixsense-udf") -> State:
    """Open the backend that ``url`` names: ``sqlite:///path`` or ``redis://host:port/db``."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from .sqlite import SQLiteState

        return SQLiteState.from_url(url, prefix=prefix)
    if scheme in {"redis", "rediss", "unix"}:
        from .redis import RedisState

        return RedisState.from_url(url, prefix=prefix)
    raise ConfigError(f"unknown state scheme: {url!r} (use sqlite:///path or redis://host:port/db)")
