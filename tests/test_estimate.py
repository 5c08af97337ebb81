"""Cost preview: the estimate route and `enrich --dry-run` predict the upstream calls exactly."""

from __future__ import annotations

import csv
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.fixtures import SimulatorProcess, runtime_of
from udf_service.cli import main
from udf_service.testing.snowflake import in_process


def test_estimate_equals_the_calls_the_query_makes(make_app: Any) -> None:
    """Over cached, new, duplicate and invalid rows, the estimate's would_call count is the call count."""
    app = make_app()
    simulator = runtime_of(app).simulator
    warm = [[f"warm{i}@est{i % 7}.com", "US"] for i in range(20)]
    in_process(app).query(warm)
    calls_before = simulator.stats()["calls"]
    new = [[f"new{i}@est{i % 7}.com", "US"] for i in range(15)]
    rows = warm[:10] + new + new[:5] + [[None, "US"], ["nope", "US"]] + [[new[0][0].upper(), "usa"]]
    estimate = _estimate(app, rows)
    reasons = [e["reason"] for e in estimate]
    assert reasons.count("cached") == 10 and reasons.count("new") == 15
    assert reasons.count("duplicate") == 6 and reasons.count("invalid_input") == 2
    assert all(e["cached_until"] for e in estimate if e["reason"] == "cached")
    assert simulator.stats()["calls"] == calls_before, "the estimate calls nothing"
    in_process(app).query(rows)
    assert simulator.stats()["calls"] - calls_before == sum(e["would_call"] for e in estimate)


def _estimate(app: Any, rows: list[list[Any]]) -> list[Any]:
    caller = in_process(app)
    caller.url += "/estimate"
    return caller.query(rows)


def test_estimate_reports_budget_and_quota(make_app: Any) -> None:
    """New rows beyond the daily budget are budget_exhausted in the estimate."""
    app = make_app(daily_call_budget=3)
    rows = [[f"x{i}@est.com", "US"] for i in range(5)]
    estimate = _estimate(app, rows)
    assert [e["reason"] for e in estimate] == ["new"] * 3 + ["budget_exhausted"] * 2


def test_usage_reports_spend(make_app: Any) -> None:
    """/usage shows calls and matched leads today, the limiter and the cache."""
    app = make_app()
    in_process(app).query([["a@acme.com", "US"], ["b@gmail.com", "US"]])
    usage = app.test_client().get("/usage").get_json()
    assert usage["calls_today"] == 2 and usage["matched_today"] == 1
    assert usage["calls_this_month"] == 2 and usage["cache_entries"] == 2
    assert usage["limiter"]["rate_limit"] == "60000/60s" and usage["quota_circuit"]["open"] is False


def test_usage_counts_answers_still_being_written(make_app: Any, monkeypatch: Any) -> None:
    """A lead answered a moment ago is in /usage while its write is still under way (matched
    leads and cache entries come from the writer's hand-over, not only the state)."""
    app = make_app()
    state, release = runtime_of(app).state, threading.Event()
    real = state.fetch_done

    def held_write(done: Any, counters: Any, *take: Any) -> Any:
        release.wait(10)  # the writer thread, stalled until /usage has been read
        return real(done, counters, *take)

    monkeypatch.setattr(state, "fetch_done", held_write)
    try:
        in_process(app).query([["a@acme.com", "US"], ["b@gmail.com", "US"]])
        usage = app.test_client().get("/usage").get_json()
    finally:
        release.set()
    assert (usage["calls_today"], usage["matched_today"], usage["cache_entries"]) == (2, 1, 2)


def _write_csv(path: Path, rows: list[list[Any]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Email", "Country", "Title"])
        writer.writerows(rows)


@pytest.mark.e2e
def test_enrich_cli_dry_run_then_run_then_resume(
    tmp_path: Path, simulator: SimulatorProcess, monkeypatch: Any
) -> None:
    """`enrich --dry-run` predicts the calls; the run makes exactly them; a re-run makes none."""
    monkeypatch.setenv("SIXSENSE_API_TOKEN", "test-token-0123456789abcdef0123456789abcd")
    monkeypatch.setenv("SIXSENSE_BASE_URL", simulator.url)
    monkeypatch.setenv("UDF_STATE_URL", f"sqlite:///{tmp_path}/state.db")
    monkeypatch.setenv("SIXSENSE_RATE_LIMIT", "60000/minute")
    monkeypatch.delenv("SIXSENSE_SIMULATE", raising=False)
    leads = tmp_path / "leads.csv"
    _write_csv(
        leads,
        [[f"p{i}@enrich{i % 5}.com", "US", "CTO"] for i in range(30)]
        + [["bad", "US", ""]]
        + [["p1@enrich1.com", "US", "CTO"]],
    )
    runner = CliRunner()
    dry = runner.invoke(main, ["enrich", "--dry-run", str(leads)])
    assert dry.exit_code == 0, dry.output
    assert "upstream calls                30" in dry.output and "duplicate                    1" in dry.output
    out = tmp_path / "out.jsonl"
    result = runner.invoke(main, ["enrich", str(leads), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert simulator.stats()["calls"] == 30
    lines = out.read_text().splitlines()
    assert len(lines) == 32 and '"status":"invalid_input"' in lines[30]
    again = runner.invoke(main, ["enrich", str(leads), "-o", str(out)])
    assert again.exit_code == 0 and simulator.stats()["calls"] == 30
    assert (
        "upstream calls                 0" in runner.invoke(main, ["enrich", "--dry-run", str(leads)]).output
    )


def test_enrich_cli_needs_an_email_column(tmp_path: Path, monkeypatch: Any) -> None:
    """A CSV without an email column is a clear error, not a traceback."""
    monkeypatch.setenv("SIXSENSE_SIMULATE", "1")
    monkeypatch.setenv("UDF_STATE_URL", f"sqlite:///{tmp_path}/state.db")
    leads = tmp_path / "leads.csv"
    leads.write_text("name,country\nJane,US\n")
    result = CliRunner().invoke(main, ["enrich", "--dry-run", str(leads)])
    assert result.exit_code != 0 and "needs an 'email' column" in result.output
