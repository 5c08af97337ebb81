"""Structured JSON logs, one object per line, with no secrets and no raw emails.

Callers pass context through `extra=` (batch_id, query_id, rows, seconds, email_hash ...); the
formatter copies those fields into the JSON object. Emails are only ever logged as
`leads.email_hash()`; the token is never passed to a logger at all.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "event": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                document[key] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(document, default=str).decode()


def configure(level: str = "INFO") -> None:
    """Send this package's logs to stderr as JSON (idempotent)."""
    logger = logging.getLogger("udf_service")
    logger.setLevel(level)
    if not any(getattr(h, "_udf_json", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._udf_json = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False
