"""The shared pacer: slots spaced by the interval, late wake-ups give their slot up."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from udf_service.guards import LATE_TOLERANCE_S, SharedPacer
from udf_service.sixsense.client import DeadlineExceeded
from udf_service.state import state_from_url


def test_turns_are_spaced_by_the_interval(tmp_path: Path) -> None:
    """Consecutive turns start at least one interval apart."""
    pacer = SharedPacer(state_from_url(f"sqlite:///{tmp_path}/s.db"), interval_s=0.05)
    starts = []
    for _ in range(5):
        pacer.wait_turn(time.time() + 5)
        starts.append(time.monotonic())
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.05 - 0.005


def test_a_late_wake_up_takes_a_new_slot(tmp_path: Path) -> None:
    """Oversleeping a slot by more than the tolerance gives it up and reserves the next one."""
    sleeps: list[float] = []

    def oversleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds + (LATE_TOLERANCE_S * 3 if len(sleeps) == 1 else 0))

    state = state_from_url(f"sqlite:///{tmp_path}/s.db")
    state.reserve_slot("upstream", 0.05, 5)  # someone else holds the current slot
    SharedPacer(state, interval_s=0.05, sleep=oversleep).wait_turn(time.time() + 5)
    assert len(sleeps) == 2


def test_no_slot_before_the_deadline_raises(tmp_path: Path) -> None:
    """When the next slot is past the deadline, the pacer says so instead of waiting."""
    state = state_from_url(f"sqlite:///{tmp_path}/s.db")
    state.hold_off("upstream", state.now() + 60)
    with pytest.raises(DeadlineExceeded):
        SharedPacer(state, interval_s=0.05).wait_turn(time.time() + 1)
