"""Another process's write lock on a SQLite state file, held for a block (tests only)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def sqlite_locked(path: Path | str) -> Iterator[None]:
    """Hold SQLite's write lock on `path` (BEGIN EXCLUSIVE) until the block ends."""
    db = sqlite3.connect(path, timeout=0.5, isolation_level=None)
    try:
        db.execute("begin exclusive")
        yield
    finally:
        if db.in_transaction:
            db.execute("rollback")
        db.close()
