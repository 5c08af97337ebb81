"""``SQLiteState`` against the state contract, plus what only SQLite has: paths, WAL, locking."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from udf_service.errors import ConfigError, StateError
from udf_service.state import state_from_url
from udf_service.state.sqlite import SQLiteState

from .contract import LONG, PAST_TTL, TTL, StateContract

PREFIXES = [pytest.param("sixsense-udf", id="default"), pytest.param("t{1}:*?[x] é", id="odd")]


class TestSQLiteState(StateContract):
    """The contract on one SQLite file per test."""

    @pytest.fixture(autouse=True, params=PREFIXES)
    def _backend(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[None]:
        self.url, self.prefix, self.opened = f"sqlite:///{tmp_path}/state.db", request.param, []
        yield
        for state in self.opened:
            state.close()

    def make_state(self, prefix: str | None = None) -> SQLiteState:
        state = SQLiteState.from_url(self.url, prefix=self.prefix if prefix is None else prefix)
        self.opened.append(state)
        return state


def test_relative_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sqlite:///./dir/state.db is relative to the working directory; missing dirs are made."""
    monkeypatch.chdir(tmp_path)
    state = state_from_url("sqlite:///./.udf-state/state.db")
    assert isinstance(state, SQLiteState)
    assert Path(state.path) == tmp_path / ".udf-state" / "state.db"
    state.ping()
    assert (tmp_path / ".udf-state" / "state.db").is_file()


def test_absolute_url_creates_parents(tmp_path: Path) -> None:
    """sqlite:////abs/path.db is absolute; its parent directories are created."""
    path = tmp_path / "a" / "b" / "state.db"
    state = SQLiteState.from_url(f"sqlite:///{path}")
    state.cache_set_many({"k": b"v"}, LONG)
    assert Path(state.path) == path and path.is_file()


def test_file_is_in_wal_mode(tmp_path: Path) -> None:
    """The file is switched to WAL, so readers never wait for the writer."""
    SQLiteState(str(tmp_path / "s.db")).ping()
    with sqlite3.connect(tmp_path / "s.db") as db:
        assert db.execute("pragma journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("url", ["sqlite:///:memory:", "sqlite://relative.db", "sqlite:///"])
def test_unusable_urls_are_config_errors(url: str) -> None:
    """A URL that names no file is refused at start-up with ConfigError."""
    with pytest.raises(ConfigError):
        SQLiteState.from_url(url)


def test_unwritable_path_is_state_error(tmp_path: Path) -> None:
    """A path whose parent is a file fails with StateError, not OSError."""
    (tmp_path / "file").write_text("x")
    with pytest.raises(StateError):
        SQLiteState(str(tmp_path / "file" / "state.db"))


def test_corrupt_file_is_state_error(tmp_path: Path) -> None:
    """A file that is not a database fails with StateError, from the sqlite3 error."""
    (tmp_path / "s.db").write_bytes(b"not a database" * 100)
    with pytest.raises(StateError) as info:
        SQLiteState(str(tmp_path / "s.db"))
    assert isinstance(info.value.__cause__, sqlite3.Error)


def test_writer_waits_for_lock(tmp_path: Path) -> None:
    """A write waits (busy_timeout) while another connection holds the write lock briefly."""
    state = SQLiteState(str(tmp_path / "s.db"))
    other = sqlite3.connect(tmp_path / "s.db", isolation_level=None, check_same_thread=False)
    other.execute("begin immediate")
    threading.Timer(0.3, lambda: other.execute("commit")).start()
    started = time.monotonic()
    assert state.claim("k", "me", LONG) is True
    assert time.monotonic() - started >= 0.2
    other.close()


def test_lock_held_too_long_is_state_error(tmp_path: Path) -> None:
    """A write that cannot get the lock within busy_timeout fails with StateError."""
    state = SQLiteState(str(tmp_path / "s.db"), busy_timeout_s=0.2)
    other = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    other.execute("begin immediate")
    try:
        with pytest.raises(StateError, match="locked"):
            state.claim("k", "me", LONG)
    finally:
        other.execute("rollback")
        other.close()
    assert state.claim("k", "me", LONG) is True


def test_sweep_deletes_expired_rows(tmp_path: Path) -> None:
    """sweep() deletes expired rows of every kind and counts them."""
    state = SQLiteState(str(tmp_path / "s.db"))
    state.cache_set_many({"a": b"1", "b": b"1"}, TTL)
    state.claim("c", "me", TTL)
    state.flag_set("f", b"1", TTL)
    state.incr("n", 1, TTL)
    state.job_create("j", b"p", "me", TTL, TTL)
    state.reserve_slot("l", TTL, 1)
    time.sleep(PAST_TTL)
    assert state.sweep() == 7
    assert state.sweep() == 0


def test_queue_survives_reopen_from_scratch(tmp_path: Path) -> None:
    """The queue is durable: a new state on the same file sees the queued items."""
    SQLiteState(str(tmp_path / "s.db")).queue_push({"a": b"1"})
    assert SQLiteState(str(tmp_path / "s.db")).queue_take("w", 5, LONG) == [("a", b"1")]
