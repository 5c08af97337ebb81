"""``CountingState``: a ``State`` that counts every call by method, then passes it on unchanged.

For measuring, not serving: the benchmark's "state operations per fetched lead" and the test that
holds the writes to at most 3 wrap the service's real backend in it. ``KINDS`` is the one place
where each public method of ``State`` is classified, and ``tests/state/test_counting.py`` fails
when a method of ``State`` is missing from it, so a new operation cannot go uncounted.

    write  may change the shared state (one transaction on SQLite, one script or command on Redis)
    read   only reads it (one round trip on Redis; a read under the connection lock on SQLite)
    local  no round trip at all (``close``)

``IDLE``: a call of these that answered nothing changed nothing, and is counted as a read.
"""

from __future__ import annotations

import abc
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from .base import State

READ, WRITE, LOCAL = "read", "write", "local"

KINDS: dict[str, str] = {
    # lifecycle: now() asks the Redis server's TIME; ping(write=True) is counted as a read too,
    # since only /readyz asks for the write and no workload here calls it
    "now": READ,
    "ping": READ,
    "close": LOCAL,
    "sweep": WRITE,
    # cache
    "cache_get_many": READ,
    "cache_set_many": WRITE,
    "cache_count": READ,
    "cache_scan": READ,
    # fetch queue
    "fetch_push": WRITE,
    "fetch_push_take": WRITE,
    "fetch_take": WRITE,
    "fetch_renew": WRITE,
    "fetch_release": WRITE,
    "fetch_done": WRITE,
    "fetch_depth": READ,
    "answers_get": READ,
    "before_send": READ,
    # rate limiter
    "reserve_slot": WRITE,
    "hold_off": WRITE,
    "slot_backlog": READ,
    # counters and flags
    "incr": WRITE,
    "get_ints": READ,
    "get_int": READ,
    "flag_set": WRITE,
    "flags_get": READ,
    "flag_get": READ,
    "flag_ttl": READ,
    # jobs
    "job_create": WRITE,
    "job_get": READ,
    "job_lease": WRITE,
    "job_finish": WRITE,
    "jobs_orphaned": READ,
    "jobs_running": READ,
    # workers
    "heartbeat": WRITE,
}


# A take that found nothing ready changed nothing: on SQLite it is a read that never takes the
# write lock, on Redis a script that leased nothing (an expired lease it puts back is taken by the
# same call). Idle polls are counted as reads, under their own name, so they are not mistaken
# for the writes a fetched lead costs.
IDLE = {"fetch_take": "fetch_take, nothing ready"}


def kind_of(name: str) -> str:
    """The kind of a tallied name: a method of ``KINDS``, or an idle call of ``IDLE``."""
    return READ if name in IDLE.values() else KINDS[name]


def public_methods(cls: type = State) -> set[str]:
    """The public methods of ``cls`` (what ``KINDS`` must classify)."""
    return {name for name in dir(cls) if not name.startswith("_") and callable(getattr(cls, name))}


class Tally:
    """Calls by method, shared by every ``CountingState`` of one measurement (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()

    def add(self, name: str) -> None:
        with self.lock:
            self.calls[name] += 1

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(self.calls)

    def total(self, kind: str) -> int:
        """Calls of every method of ``kind`` (read, write or local)."""
        return sum(count for name, count in self.snapshot().items() if kind_of(name) == kind)


class CountingState(State):
    """Counts each call in ``tally`` and hands it to ``inner``, arguments and answer unchanged.

    A derived method (``get_int``) is counted once, under its own name: ``inner`` runs it on its
    own primitives, which the tally does not see again.
    """

    def __init__(self, inner: State, tally: Tally | None = None) -> None:
        self.inner = inner
        self.tally = tally or Tally()


def _counted(name: str) -> Callable[..., Any]:
    def method(self: CountingState, *args: Any, **kwargs: Any) -> Any:
        if name not in IDLE:
            self.tally.add(name)
            return getattr(self.inner, name)(*args, **kwargs)
        try:
            answer = getattr(self.inner, name)(*args, **kwargs)
        except BaseException:
            self.tally.add(name)  # it may have run: counted as what it may have been
            raise
        self.tally.add(name if answer else IDLE[name])
        return answer

    method.__name__ = method.__qualname__ = name
    method.__doc__ = getattr(State, name).__doc__
    return method


# Every classified method is generated from the table, so the table and the wrapper cannot
# disagree; then the ABC forgets the abstract methods it defined.
for _name in KINDS:
    setattr(CountingState, _name, _counted(_name))
abc.update_abstractmethods(CountingState)
