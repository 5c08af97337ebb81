"""How figures read to a person (the /status page and `udf-service status`). Imports nothing
heavy: the CLI imports it before gunicorn starts, and prometheus_client must not be imported
then (it picks its multiprocess mode at import, from PROMETHEUS_MULTIPROC_DIR)."""

from __future__ import annotations


def duration(seconds: float | None) -> str:
    """`3h 05m`, `4m 10s`, `12s`; an em dash when unknown."""
    if seconds is None:
        return "\u2014"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"
