"""``SQLiteState`` against the state contract, plus what only SQLite has: paths, WAL, locking."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sqlite_lock import sqlite_locked
from udf_service.errors import ConfigError, StateError
from udf_service.state import BACKGROUND, state_from_url
from udf_service.state.sqlite import MMAP_BYTES, SQLiteState
from udf_service.testing import SkipAheadClock

from .contract import LONG, PAST_TTL, TTL, StateContract

PREFIXES = [pytest.param("sixsense-udf", id="default"), pytest.param("t{1}:*?[x] é", id="odd")]


class TestSQLiteState(StateContract):
    """The contract on one SQLite file per test, its clock skipped ahead instead of slept through."""

    @pytest.fixture(autouse=True, params=PREFIXES)
    def _backend(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[None]:
        self.url, self.prefix, self.opened = f"sqlite:///{tmp_path}/state.db", request.param, []
        self.clock = SkipAheadClock()
        yield
        for state in self.opened:
            state.close()

    def make_state(self, prefix: str | None = None) -> SQLiteState:
        prefix = self.prefix if prefix is None else prefix
        state = SQLiteState.from_url(self.url, prefix=prefix, clock=self.clock)
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
    assert state.incr("k") == 1
    assert time.monotonic() - started >= 0.2
    other.close()


def test_lock_held_too_long_is_state_error(tmp_path: Path) -> None:
    """A write that cannot get the lock within busy_timeout fails with StateError."""
    state = SQLiteState(str(tmp_path / "s.db"), busy_timeout_s=0.2)
    other = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    other.execute("begin immediate")
    try:
        with pytest.raises(StateError, match="locked"):
            state.incr("k")
    finally:
        other.execute("rollback")
        other.close()
    assert state.incr("k") == 1


def test_start_while_another_process_writes(tmp_path: Path) -> None:
    """Opening while another process holds the write lock succeeds (a gunicorn worker that boots
    then must not take the server down); calls fail with StateError until the lock clears."""
    SQLiteState(str(tmp_path / "s.db")).close()
    with sqlite_locked(tmp_path / "s.db"):
        state = SQLiteState(str(tmp_path / "s.db"), busy_timeout_s=0.2)
        with pytest.raises(StateError, match="locked"):
            state.incr("k")
    assert state.incr("k") == 1


def test_start_on_a_fresh_file_while_locked(tmp_path: Path) -> None:
    """The same when the file has no schema yet: it is created on the first call after the lock."""
    with sqlite_locked(tmp_path / "s.db"):
        state = SQLiteState(str(tmp_path / "s.db"), busy_timeout_s=0.2)
    assert state.incr("k") == 1 and state.incr("k") == 2


def test_sweep_deletes_expired_rows(tmp_path: Path) -> None:
    """sweep() deletes expired rows of every kind and counts them."""
    clock = SkipAheadClock()
    state = SQLiteState(str(tmp_path / "s.db"), clock=clock)
    state.cache_set_many({"a": b"1", "b": b"1"}, TTL)
    state.heartbeat("w", TTL)
    state.flag_set("f", b"1", TTL)
    state.incr("n", 1, TTL)
    state.job_create("j", b"p", "me", TTL, TTL)
    state.reserve_slot("l", TTL, 1)
    clock.advance(PAST_TTL)
    assert state.sweep() == 7  # 2 cache rows, worker, flag, counter, job, limiter
    assert state.sweep() == 0


def test_queue_survives_reopen_from_scratch(tmp_path: Path) -> None:
    """The queue is durable: a new state on the same file sees the queued items."""
    SQLiteState(str(tmp_path / "s.db")).fetch_push({"a": b"1"}, BACKGROUND)
    assert [(i.key, i.payload) for i in SQLiteState(str(tmp_path / "s.db")).fetch_take("w", 5, LONG)] == [
        ("a", b"1")
    ]


def test_deleted_file_is_noticed_and_recreated(tmp_path: Path) -> None:
    """A state file deleted under a running service: the next call opens the new file at the
    path (not the unlinked one), with a new epoch, so two workers never hold two databases."""
    path = tmp_path / "s.db"
    first, second = SQLiteState(str(path)), SQLiteState(str(path))
    epoch = first.reserve_slot("l", 0.001, 1).epoch
    first.incr("n")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    assert first.incr("n") == 1 and second.get_int("n") == 1  # both on the new file
    assert first.reserve_slot("l", 0.001, 1).epoch != epoch
    assert first.before_send("k", "w").epoch == second.before_send("k", "w").epoch


def test_replaced_file_is_noticed(tmp_path: Path) -> None:
    """A file replaced by another (a restore: the new file, without the old -wal and -shm) is
    followed, not the old inode."""
    path = tmp_path / "s.db"
    state = SQLiteState(str(path))
    state.incr("n", 5)
    other = SQLiteState(str(tmp_path / "other.db"))
    other.incr("n", 7)
    other.close()
    for suffix in ("-wal", "-shm"):  # they belong to the old file; a restore removes them
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    (tmp_path / "other.db").replace(path)
    assert state.get_int("n") == 7


def test_files_of_the_previous_release_are_migrated(tmp_path: Path) -> None:
    """A state file written by 0.1 (cache without a lead column and WITHOUT ROWID, the refill
    queue) opens: cached answers stay (they were paid for) and queued refill work becomes
    background fetch work."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            create table cache (ns text, key text, value blob not null, expires_at real not null,
                primary key (ns, key)) without rowid;
            create table claims (ns text, key text, owner text not null, expires_at real not null,
                primary key (ns, key)) without rowid;
            create table queue (seq integer primary key autoincrement, ns text not null,
                key text not null, payload blob not null, owner text,
                lease_until real not null default 0, unique (ns, key));
            """
        )
        db.execute("insert into cache values ('sixsense-udf', 'k', x'76', 9e12)")
        db.execute("insert into queue (ns, key, payload) values ('sixsense-udf', 'q', x'6c656164')")
    state = SQLiteState(str(path))
    assert state.cache_get_many(["k"]) == {"k": b"v"}
    with sqlite3.connect(path) as db:  # the cache moved to a rowid table (large values, fast reads)
        (cache_sql,) = db.execute("select sql from sqlite_master where name = 'cache'").fetchone()
        indexes = {row[0] for row in db.execute("select name from sqlite_master where tbl_name = 'cache'")}
    assert "without rowid" not in cache_sql.lower() and "cache_expiry" in indexes
    assert state.fetch_depth() == {BACKGROUND: 1}
    assert [i.payload for i in state.fetch_take("w", 1, LONG)] == [b"lead"]


def test_reads_go_through_a_memory_map_and_get_the_whole_busy_timeout_back(tmp_path: Path) -> None:
    """The connection maps the file (mmap_size), and the busy timeout a write sets for its short
    attempts is set back to the whole of it for the next read (set when it changes, not per call)."""
    state = SQLiteState(str(tmp_path / "s.db"), busy_timeout_s=5.0)
    state.cache_set_many({"k": b"v"}, LONG)  # a write: attempts of WRITE_ATTEMPT_MS
    with state._locked() as db:
        assert db.execute("pragma busy_timeout").fetchone()[0] == 5000
        assert db.execute("pragma mmap_size").fetchone()[0] == MMAP_BYTES
