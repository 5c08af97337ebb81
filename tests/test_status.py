"""The operations figures (`udf_service.usage`): `/usage`'s new keys, the `/status` page showing
the same figures, its auth, and that neither ever shows an email address or the token."""

from __future__ import annotations

import re
import time
from datetime import datetime
from html.parser import HTMLParser
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient

from tests.fixtures import runtime_of
from udf_service.config import RateLimit
from udf_service.errors import StateError
from udf_service.recent_errors import CLASSES, scrub
from udf_service.sixsense.retry import RetryPolicy
from udf_service.usage import current_rate_per_min, eta_s

TOKEN = "tok-0123456789abcdefSECRET"
AUTH_SECRET = "shared-secret-9876543210"
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
FAST_RETRIES = RetryPolicy(backoff_factor=0.01, backoff_max=0.05)


class Figures(HTMLParser):
    """Every `data-figure` element's attributes and text, as the page shows them."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: dict[str, dict[str, Any]] = {}
        self.open: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        key = found.get("data-figure")
        if key:
            self.figures[key] = {**found, "text": ""}
        self.open.append(key)

    def handle_endtag(self, tag: str) -> None:
        if self.open:
            self.open.pop()

    def handle_data(self, data: str) -> None:
        for key in self.open:
            if key:
                self.figures[key]["text"] += data


def figures_of(html: str) -> dict[str, dict[str, Any]]:
    parser = Figures()
    parser.feed(html)
    return parser.figures


def dig(document: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        document = document[part]
    return document


def number(text: str) -> float:
    return float(text.replace(",", "").strip())


DRIFTING = {"calls_per_minute.current", "queue.rate_per_minute"}  # a rate moves with the clock


def assert_page_matches(page: str, usage: dict[str, Any]) -> int:
    """Every number on the page equals `/usage`'s figure of the same key (read a moment apart:
    rates within 25 %, since a rate over the first seconds of calls moves with every tenth of a
    second, and ETAs made from one; the time within 5 s); how many were compared."""
    figures = figures_of(page)
    compared = 0
    for key, figure in figures.items():
        expected = dig(usage, key)
        if key in ("quota_circuit.open", "auth_circuit.open"):
            assert figure["data-open"] == str(expected).lower(), key
        elif key == "queue.eta_s":
            shown, eta = figure["data-seconds"], usage["queue"]["eta_s"]
            assert (shown == "") == (eta is None)
            assert eta is None or float(shown) == pytest.approx(eta, rel=0.25)
        elif key == "cache.hit_ratio_today":
            assert figure["data-ratio"] == ("" if expected is None else str(expected)), key
        elif key == "generated_at":
            assert abs(_epoch(figure["text"]) - _epoch(expected)) <= 5
        elif key in DRIFTING:
            assert number(figure["text"]) == pytest.approx(expected, rel=0.25, abs=0.05), key
        elif expected is None:
            assert figure["text"].strip() == "\u2014", key
        else:
            assert number(figure["text"]) == pytest.approx(expected), key
        compared += 1
    return compared


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_rate_counts_from_the_first_busy_minute() -> None:
    """The current rate ignores idle minutes before the first call of the window."""
    assert current_rate_per_min([0] * 30, 5) == 0.0
    assert current_rate_per_min([0] * 28 + [17, 8], 5) == pytest.approx(25 / 15 * 60)
    assert current_rate_per_min([16] * 30, 0) == pytest.approx(480 / 291 * 60)
    assert current_rate_per_min([0] * 28 + [17, 8], 5, reserved_ahead=5) == pytest.approx(20 / 15 * 60)


def test_eta_at_a_rate() -> None:
    """ETA: depth over rate; 0 for an empty queue; unknown (None) when nothing is being called."""
    assert eta_s(0, 0) == 0.0
    assert eta_s(100, 0) is None
    assert eta_s(1000, 100) == 600.0


def test_usage_shows_queue_eta_cache_and_history(make_app: Any) -> None:
    """/usage has the new keys: a refill at 120 calls/min shows its depth, rate, ETA and hit ratio."""
    app = make_app(rate_limit=RateLimit(120, 60.0))
    client = app.test_client()
    rows = [[i, f"lead{i}@example.com", "US"] for i in range(40)]
    assert client.post("/snowflake/people/full/cached", json={"data": rows}).status_code == 200
    time.sleep(2.0)
    runtime_of(app).completer.flush(5)  # a refund of an unused slot would be in calls_today only
    usage = client.get("/usage").json
    assert usage["calls_per_minute"]["limit"] == 120
    assert len(usage["calls_per_minute"]["last_hour"]) == 60
    # The two seconds may straddle a minute: the hour's counts add up to today's (not at midnight).
    assert sum(usage["calls_per_minute"]["last_hour"]) == usage["calls_today"] >= 3
    assert usage["queue"]["depth"] == usage["queue_depth"] == usage["queue"]["background"] > 0
    assert usage["queue"]["eta_at_limit_s"] == pytest.approx(usage["queue"]["depth"] / 2, abs=0.1)
    queue = usage["queue"]
    assert queue["eta_s"] == pytest.approx(queue["depth"] / queue["rate_per_minute"] * 60, rel=0.01)
    assert usage["cache"]["misses_today"] == 40 and usage["cache"]["hits_today"] == 0
    assert usage["cache"]["hit_ratio_today"] == 0.0
    assert usage["jobs_running"] == 0 and usage["errors"] == []


def test_status_page_shows_the_usage_figures(make_app: Any, state_url: str) -> None:
    """/status is HTML with every figure equal to /usage's (budget set, some cache hits, a job
    running), on SQLite and on Redis."""
    app = make_app(daily_call_budget=500, state_url=state_url)
    client = app.test_client()
    runtime_of(app).state.job_create("sf-batch-1", b"rows", "another-worker", 60, 600)
    rows = [[i, f"lead{i}@example.com", "US"] for i in range(10)]
    assert client.post("/snowflake/people/full", json={"data": rows}).status_code == 200
    assert client.post("/snowflake/people/full", json={"data": rows[:4]}).status_code == 200
    # The background thread hands hit counts to the state once a second; a read that falls in
    # the middle of that write may miss them for a moment: read until they are in (bounded).
    for _ in range(50):
        runtime_of(app).completer.flush(5)
        usage = client.get("/usage").json
        if usage["cache"]["hit_ratio_today"] == pytest.approx(4 / 14, abs=1e-4):
            break
        time.sleep(0.1)
    assert usage["cache"]["hit_ratio_today"] == pytest.approx(4 / 14, abs=1e-4)
    page = client.get("/status")
    assert page.status_code == 200 and page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    usage = client.get("/usage").json
    assert usage["jobs_running"] == 1 and usage["daily_budget_left"] == 490
    assert assert_page_matches(text, usage) >= 18
    assert "<svg" in text and text.count('class="bar"') == 60
    assert "location.reload" in text  # the one script: auto-refresh


@pytest.mark.parametrize("path", ["/status", "/usage"], ids=["status", "usage"])
def test_status_needs_the_shared_secret(make_app: Any, path: str) -> None:
    """With UDF_AUTH_SECRET set, /status and /usage refuse a request without it."""
    client = make_app(auth_header="X-Udf-Secret", auth_secret=AUTH_SECRET).test_client()
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"X-Udf-Secret": AUTH_SECRET}).status_code == 200


def test_scrub_removes_emails_and_secrets() -> None:
    """A message keeps its sense but loses addresses, the token and Authorization values."""
    text = scrub(f"lead a.b+c@x.example.com failed; Authorization: Token {TOKEN}", [TOKEN])
    assert "@" not in text and TOKEN not in text and "<email>" in text


def _echo(status: int | None = None, **rule: Any) -> dict[str, Any]:
    """A fault whose body repeats what a careless upstream might: the email and the token."""
    body = {"status": "error", "message": f"lead {rule['match']} refused, Token {TOKEN} used"}
    return {"status": status, "body": body, **rule} if status else {"body": body, **rule}


def test_no_email_or_token_after_every_kind_of_error(make_app: Any) -> None:
    """After a run with every class of error, neither /status nor /usage shows an email or the token."""
    app = make_app(api_token=TOKEN, auth_header="X-Udf-Secret", auth_secret=AUTH_SECRET, daily_call_budget=40)
    rt = runtime_of(app)
    rt.dispatcher.fetcher.policy = FAST_RETRIES
    rt.simulator.set_faults(
        [
            _echo(429, match="rl@example.com", times=1),
            _echo(503, match="down@example.com", times=10),
            {"kind": "reset", "match": "reset@example.com", "times": 1},
            {"kind": "malformed", "match": "garbled@example.com", "times": 1},
            _echo(400, match="refused@example.com", times=1),
            _echo(402, match="broke@example.com", times=1),
        ]
    )
    client: FlaskClient = app.test_client()
    headers = {"X-Udf-Secret": AUTH_SECRET}
    emails = ["rl", "down", "reset", "garbled", "refused"]
    rows = [[i, f"{name}@example.com", "US"] for i, name in enumerate(emails)]
    assert client.post("/snowflake/people/full", json={"data": rows}, headers=headers).status_code == 200
    # The 402 opens the circuit (alone: it would stop the leads above): the next lead is not sent.
    client.post("/snowflake/people/full", json={"data": [[0, "broke@example.com", "US"]]}, headers=headers)
    client.post("/snowflake/people/full", json={"data": [[0, "after402@example.com", "US"]]}, headers=headers)
    rt.state.flag_set("circuit:quota", b"", 0)
    rt.simulator.set_faults([_echo(401, match="token@example.com", times=1)])
    client.post("/snowflake/people/full", json={"data": [[0, "token@example.com", "US"]]}, headers=headers)
    rt.state.flag_set("circuit:auth", b"", 0)
    # The daily budget spent, a malformed request, a missing secret, an overload, a state outage.
    rt.state.incr(f"usage:calls:{rt.guards.periods.day()}", 40, 86400)
    client.post("/snowflake/people/full", json={"data": [[0, "budget@example.com", "US"]]}, headers=headers)
    client.post("/snowflake/people/full", data=b"{not json secret@example.com", headers=headers)
    client.get("/usage")  # no secret: 401
    rt.errors.record("overloaded", f"too many requests from owner@example.com with Token {TOKEN}")
    original = rt.engine.lookup

    def broken(rows: Any) -> Any:
        raise StateError(f"sqlite: database is locked while reading state@example.com {TOKEN}")

    rt.engine.lookup = broken
    assert client.post("/snowflake/people/full", json={"data": rows[:1]}, headers=headers).status_code == 503
    rt.engine.lookup = original
    rt.completer.flush(5)

    usage = client.get("/usage", headers=headers)
    page = client.get("/status", headers=headers)
    seen = {e["class"] for e in usage.json["errors"]}
    # Not provoked here: an unexpected error, and a refused connection (the in-process simulator is
    # a transport and cannot refuse one; `upstream_connect` is recorded on the same path as timeouts).
    assert seen == set(CLASSES) - {"internal", "upstream_connect"}, set(CLASSES) - seen
    for body in (usage.get_data(as_text=True), page.get_data(as_text=True)):
        assert not EMAIL_RE.search(body), EMAIL_RE.search(body)
        assert TOKEN not in body and AUTH_SECRET not in body
    assert "<email>" in orjson.dumps(usage.json).decode()  # the echoed ones were scrubbed, not lost


def test_cli_import_leaves_prometheus_client_alone() -> None:
    """`udf-service` imports no prometheus_client before gunicorn starts: it picks its
    multiprocess mode at import, and a too-early import leaves the workers' /metrics empty."""
    import subprocess
    import sys

    code = "import sys, udf_service.cli; print('prometheus_client' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_lookup_tally_writes_at_most_once_a_second() -> None:
    """Cache hits and misses reach the state once a second, not once per batch; drain hands over
    the rest (the background thread's flush)."""
    from udf_service.guards import Periods
    from udf_service.testing.clock import ManualClock
    from udf_service.usage import LookupTally, hits_key, misses_key

    clock = ManualClock()
    periods = Periods(clock)
    tally = LookupTally(periods)
    day = periods.day()
    assert tally.add(3, 1) == {hits_key(day): (3, 259200), misses_key(day): (1, 259200)}
    assert tally.add(5, 0) == {} and tally.add(0, 2) == {} and tally.unwritten() == (5, 2)
    clock.advance(1.0)
    assert tally.add(1, 0) == {hits_key(day): (6, 259200), misses_key(day): (2, 259200)}
    tally.add(4, 0)
    assert tally.drain() == {hits_key(day): (4, 259200)} and tally.unwritten() == (0, 0)


def test_an_error_storm_costs_one_state_write_a_second(app: Any) -> None:
    """100 errors of one class: the first is written at once, the rest with the next flush;
    /usage counts all of them meanwhile (this worker's unwritten ones added)."""
    rt = runtime_of(app)
    if rt.background:
        rt.background.stop()  # no flush behind the test's back
    day = rt.errors._day()
    for i in range(100):
        rt.errors.record("upstream_rate_limited", f"429 number {i}")
    assert rt.state.get_int(f"errors:count:upstream_rate_limited:{day}") == 1
    (row,) = app.test_client().get("/usage").json["errors"]
    assert row["count_today"] == 100 and row["last_message"] == "429 number 99"
    rt.errors.flush()
    assert rt.state.get_int(f"errors:count:upstream_rate_limited:{day}") == 100
