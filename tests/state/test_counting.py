"""``CountingState``: every public method of ``State`` is classified, counted, and passed through."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from udf_service.state import State
from udf_service.state.counting import IDLE, KINDS, LOCAL, READ, WRITE, CountingState, Tally, public_methods
from udf_service.state.sqlite import SQLiteState
from udf_service.testing import SkipAheadClock

from .contract import LONG, StateContract


def test_every_public_method_is_classified() -> None:
    """KINDS names every public method of State, and nothing else: a new one cannot slip by."""
    assert set(KINDS) == public_methods(State)
    assert set(KINDS.values()) <= {READ, WRITE, LOCAL}


def test_the_wrapper_defines_every_method_itself() -> None:
    """CountingState has no abstract method left and inherits no public method unwrapped."""
    assert not CountingState.__abstractmethods__
    assert all(name in vars(CountingState) for name in public_methods(State))


def test_calls_are_counted_by_method_and_kind(tmp_path: Path) -> None:
    """Each call counts once under its own name (a derived one too), and answers as the backend."""
    tally = Tally()
    state = CountingState(SQLiteState(str(tmp_path / "s.db")), tally)
    state.cache_set_many({"k": b"v"}, LONG)
    assert state.cache_get_many(["k", "x"]) == {"k": b"v"}
    state.incr("c", 2)
    assert state.get_int("c") == 2
    assert tally.snapshot() == {"cache_set_many": 1, "cache_get_many": 1, "incr": 1, "get_int": 1}
    assert (tally.total(WRITE), tally.total(READ)) == (2, 2)
    tally.reset()
    assert tally.snapshot() == {}


def test_a_take_that_found_nothing_is_an_idle_read(tmp_path: Path) -> None:
    """fetch_take answering nothing is counted as a read under its idle name; one that took, a write."""
    tally = Tally()
    state = CountingState(SQLiteState(str(tmp_path / "s.db")), tally)
    assert state.fetch_take("w", 5, LONG) == []
    state.fetch_push({"a": b""}, 0)
    assert len(state.fetch_take("w", 5, LONG)) == 1
    assert tally.snapshot() == {IDLE["fetch_take"]: 1, "fetch_push": 1, "fetch_take": 1}
    assert (tally.total(WRITE), tally.total(READ)) == (2, 1)


class TestCountingState(StateContract):
    """The whole state contract through the wrapper (on SQLite): it changes nothing it passes on."""

    @pytest.fixture(autouse=True)
    def _backend(self, tmp_path: Path) -> Iterator[None]:
        self.url, self.prefix, self.opened = f"sqlite:///{tmp_path}/state.db", "sixsense-udf", []
        self.tally, self.clock = Tally(), SkipAheadClock()
        yield
        for state in self.opened:
            state.close()

    def make_state(self, prefix: str | None = None) -> State:
        prefix = self.prefix if prefix is None else prefix
        state = CountingState(SQLiteState.from_url(self.url, prefix=prefix, clock=self.clock), self.tally)
        self.opened.append(state)
        return state
