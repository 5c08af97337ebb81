"""Operations against a live service (`udf-service serve` under gunicorn, the simulator as its own
process): every metric the dashboard and the alert rules query exists in `/metrics`; `udf-service
status` prints the figures; `/status` in a real headless chromium, during a backfill, shows the
figures `/usage` answers (a screenshot is saved under the test's tmp dir)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.deploy.test_observability import HISTOGRAM_SUFFIXES, referenced_metrics
from tests.test_status import dig, figures_of, number
from udf_service.guards import HISTORY_TTL_S, calls_key, matched_key
from udf_service.state import state_from_url
from udf_service.testing.processes import TOKEN

pytestmark = pytest.mark.e2e

BACKFILL_ENV = {"SIXSENSE_RATE_LIMIT": "120/minute", "UDF_DAILY_CALL_BUDGET": "20000"}


def seed_history(state_url: str, minutes: int = 45) -> int:
    """The per-minute call counters of a backfill that has run at ~the limit for `minutes`
    minutes (so the chart and the rate have an hour to show); the calls it adds."""
    from udf_service.guards import Periods, SharedPacer

    state = state_from_url(state_url)
    pacer = SharedPacer(state, 0.5)
    periods, total = Periods(), 0
    try:
        for ago in range(minutes, 0, -1):
            calls = 112 + (ago * 7) % 9
            state.incr(calls_key(periods.minute(ago)), calls, HISTORY_TTL_S)
            total += calls
        for key, ttl in pacer.call_counters().items():
            if ":day:" in key or ":month:" in key:
                state.incr(key, total, ttl)
        for period in (periods.day(), periods.month()):  # about 4 in 5 leads match
            state.incr(matched_key(period), total * 4 // 5, 3 * 86400)
    finally:
        state.close()
    return total


def rows(prefix: str, count: int) -> list[list[Any]]:
    return [[i, f"{prefix}{i}@example.com", "US"] for i in range(count)]


def post(url: str, data: list[list[Any]], route: str = "/snowflake/people/full") -> httpx.Response:
    return httpx.post(url + route, content=orjson.dumps({"data": data}), timeout=60)


def usage(url: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/usage", timeout=10)
    response.raise_for_status()
    return response.json()


def sample_names(exposition: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", exposition, re.M)}


def test_every_dashboard_and_alert_metric_is_exported(service_factory: Any, simulator: Any) -> None:
    """After a run with retries, errors, matches, cache hits and a refill, `/metrics` has a sample
    of every metric the dashboard and the alert rules query."""
    simulator.faults(
        [
            {"status": 429, "match": "rl0@example.com", "times": 1},
            {"status": 503, "match": "down0@example.com", "times": 1},
        ]
    )
    service = service_factory(simulator.url, env={"UDF_DAILY_CALL_BUDGET": "5000"})
    data = rows("lead", 20) + rows("rl", 1) + rows("down", 1)
    assert post(service.url, data).status_code == 200
    assert post(service.url, data[:5]).status_code == 200  # cache hits
    assert post(service.url, rows("refill", 5), "/snowflake/people/full/cached").status_code == 200
    usage(service.url)
    exposition = httpx.get(f"{service.url}/metrics", timeout=10).text
    present = sample_names(exposition)
    wanted = referenced_metrics()
    assert len(wanted) >= 12
    missing = {
        name
        for name in wanted
        if name not in present and not any(name + suffix in present for suffix in HISTOGRAM_SUFFIXES)
    }
    assert not missing, f"queried but not exported: {sorted(missing)}"
    assert re.search(r'^sixsense_errors_total\{error_class="upstream_rate_limited"\} [1-9]', exposition, re.M)


def status_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UDF_")}
    command = [sys.executable, "-m", "udf_service.cli", "status", "--url", url, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip("chromium not installed (Debian package chromium; .ci/run installs it)")
    return found


def headless(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Debian's chromium, headless, its profile in the test's tmp dir; bounded."""
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    command += [f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1200,1000", *args, url]
    return subprocess.run(command, capture_output=True, text=True, timeout=90)


def between(value: float, first: float, second: float, slack: float = 0.0) -> bool:
    low, high = min(first, second), max(first, second)
    return low - slack <= value <= high + slack


def test_status_page_in_chromium_during_a_backfill(
    service_factory: Any, simulator: Any, tmp_path: Path
) -> None:
    """/status, rendered by headless chromium while a backfill runs at 120 calls/min, shows the
    figures /usage answers just before and just after it (each between the two)."""
    simulator.faults(
        [
            {"status": 429, "match": "*", "times": 1},  # the first two calls: errors on the page
            {"status": 503, "match": "*", "times": 1},
        ]
    )
    state_url = f"sqlite:///{tmp_path}/backfill.db"
    seeded = seed_history(state_url)
    service = service_factory(simulator.url, state_url, env=BACKFILL_ENV)
    assert post(service.url, rows("backfill", 400), "/snowflake/people/full/cached").status_code == 200
    deadline = time.monotonic() + 30
    while usage(service.url)["calls_today"] < seeded + 6 and time.monotonic() < deadline:
        time.sleep(0.5)
    post(service.url, rows("backfill", 5), "/snowflake/people/full/cached")  # some cache hits
    # Each worker hands its hit counts to the state once a second; until then only it sees them,
    # and the page and /usage may be answered by different workers.
    time.sleep(2.5)

    before = usage(service.url)
    dumped = headless(f"{service.url}/status", tmp_path, "--dump-dom")
    after = usage(service.url)
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    figures = figures_of(dumped.stdout)
    assert before["queue"]["depth"] > 100 and before["calls_today"] >= seeded + 6  # in progress
    assert sum(before["calls_per_minute"]["last_hour"]) >= seeded
    assert 0 < after["calls_per_minute"]["current"] <= 120 * 1.1  # paced: never above the limit
    compared = 0
    for key, figure in figures.items():
        first, second = dig(before, key), dig(after, key)
        if key == "generated_at":
            assert before["generated_at"] <= figure["text"] <= after["generated_at"]
        elif key in ("quota_circuit.open", "auth_circuit.open"):
            assert figure["data-open"] == "false" == str(first).lower() == str(second).lower()
        # Rates (and the ETA made from one) move fast early in a backfill and not monotonically
        # (slots reserved ahead are left out): they are compared within a share of the limit.
        elif key == "queue.eta_s":
            assert between(float(figure["data-seconds"]), first, second, slack=0.5 * max(first, second)), key
        elif key == "cache.hit_ratio_today":
            assert between(float(figure["data-ratio"]), first, second), key
        elif key in ("calls_per_minute.current", "queue.rate_per_minute"):
            assert between(number(figure["text"]), first, second, slack=0.15 * 120), key
        else:
            assert between(number(figure["text"]), first, second), (key, figure["text"], first, second)
        compared += 1
    assert compared >= 18
    assert "Last errors by class" in dumped.stdout and 'class="bar"' in dumped.stdout
    assert 'data-error-class="upstream_rate_limited"' in dumped.stdout

    shot = tmp_path / "status.png"  # the CI artefact
    taken = headless(f"{service.url}/status", tmp_path, f"--screenshot={shot}", "--hide-scrollbars")
    assert taken.returncode == 0 and shot.stat().st_size > 10_000, taken.stderr[-2000:]
    if os.environ.get("UDF_STATUS_SCREENSHOT"):  # how docs/status.png is made
        shutil.copy(shot, os.environ["UDF_STATUS_SCREENSHOT"])


def test_status_command_prints_the_figures(service_factory: Any, simulator: Any) -> None:
    """`udf-service status --url` prints the live figures as a table; `--json` prints /usage."""
    echo = {"status": "error", "message": f"lead lead3@example.com refused, Token {TOKEN}"}
    simulator.faults([{"status": 400, "match": "lead3@example.com", "times": 1, "body": echo}])
    service = service_factory(simulator.url, env={"UDF_DAILY_CALL_BUDGET": "5000"})
    assert post(service.url, rows("lead", 12)).status_code == 200
    assert post(service.url, rows("lead", 4)).status_code == 200
    # Each worker hands its cache hits to the state once a second: read until they are in.
    deadline = time.monotonic() + 10
    while True:
        table = status_cli(service.url)
        assert table.returncode == 0, table.stderr
        if "hit ratio today 18.8 %" in table.stdout or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert "upstream_error" in table.stdout and "<email>" in table.stdout
    assert "@" not in table.stdout and TOKEN not in table.stdout  # scrubbed where it is stored
    lines = dict(re.findall(r"^(\S[^\s].*?)\s{2,}(.*)$", table.stdout, re.M))
    assert lines["calls today"] == "13 (matched leads 12)", table.stdout  # lead3 asked twice
    assert lines["daily budget"] == "4,987 of 5,000 calls left today"
    assert lines["cache"].endswith("hit ratio today 18.8 %")  # 3 of 16: lead3 was not cached
    assert lines["402 circuit"] == "closed"
    assert lines["queue"].startswith("0 leads") and lines["async jobs"] == "0"
    as_json = status_cli(service.url, "--json")
    assert as_json.returncode == 0 and orjson.loads(as_json.stdout)["calls_today"] == 13
    unreachable = status_cli("http://127.0.0.1:9")
    assert unreachable.returncode == 1 and "cannot reach" in unreachable.stderr
