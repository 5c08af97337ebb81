"""The dbt package's incremental model runs for real: three dbt runs on each route.

dbt (its own venv) runs the installed package (the throwaway project of tests/sql/throwaway_dbt.py)
against fakesnow; the functions the model calls go to the real service (gunicorn + simulator,
started by udf_service.testing.processes), through the same Snowflake stand-in as the other tests.
tests/sql/run_dbt_models.py drives the runs; tests/sql/fakesnow_dbt.py names what fakesnow cannot do
for dbt-snowflake and how the harness works around it.

Runs: 1. five source rows (a duplicate, a no-match, an invalid email); 2. new leads arrive, and an
already answered lead again in other letter case; 3. nothing new.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from udf_service.simulator import lead_answer
from udf_service.testing.processes import start_service, start_simulator

from .throwaway_dbt import DBT_PYTHON, REPO

pytestmark = pytest.mark.e2e  # runs dbt against the live service

HERE = Path(__file__).resolve().parent

FIRST = [
    ["ann@acme-one.com", "US"],
    ["bob@beta-two.com", "DE"],
    [" BOB@Beta-Two.com ", "de"],  # the same lead as bob: lead_key trims and folds case
    ["cat@gmail.com", "US"],  # free mail: 6sense has no company for it
    ["not-an-email", "US"],  # never leaves the service
]
SECOND = [
    ["dan@delta-three.com", "US"],
    ["eve@echo-four.com", "GB"],
    ["Ann@Acme-One.com", "us"],  # answered in run 1: not asked again
]
VALID = ["ann@acme-one.com", "bob@beta-two.com", "cat@gmail.com", "dan@delta-three.com", "eve@echo-four.com"]


def expected_status(email: str) -> str:
    """What the service answers once 6sense (the simulator) has been asked."""
    if "@" not in email:
        return "invalid_input"
    status, _ = lead_answer({"email": email.strip().lower(), "country": "US"})
    return {200: "ok", 404: "no_match"}[status]


def _run_dbt(project: Any, route: str, tmp_path: Path) -> dict[str, Any]:
    simulator = start_simulator()
    service = None
    try:
        service = start_service(
            simulator.url, f"sqlite:///{tmp_path}/state.db", tmp_path / "service.log", workers=2, threads=4
        )
        plan = {
            "project_dir": str(project.directory),
            "profiles_dir": str(project.directory),
            "work_dir": str(tmp_path),
            "service_url": service.url,
            "route": route,
            "runs": [FIRST, SECOND, []],
            "wait_timeout_s": 60,
        }
        (tmp_path / "plan.json").write_text(json.dumps(plan))
        env = {
            **os.environ,
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)]),
        }
        result = subprocess.run(
            [str(DBT_PYTHON), str(HERE / "run_dbt_models.py"), str(tmp_path / "plan.json")],
            capture_output=True,
            text=True,
            timeout=400,
            env=env,
            check=False,
        )
        report_file = tmp_path / "report.json"
        assert result.returncode == 0 and report_file.exists(), result.stdout[-3000:] + result.stderr[-4000:]
        report = json.loads(report_file.read_text())
        report["upstream"] = simulator.stats()
        return report
    finally:
        if service is not None:
            service.stop()
        simulator.stop()


@pytest.fixture(scope="module", params=["full", "cached"])
def dbt_runs(
    request: pytest.FixtureRequest, dbt_project: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, dict[str, Any]]:
    route = request.param
    report = _run_dbt(dbt_project, route, tmp_path_factory.mktemp(f"dbt-run-{route}"))
    return route, report


def _asked(run: dict[str, Any]) -> Counter[str]:
    return Counter(row["email"].strip().lower() for row in run["asked"])


def _statuses(run: dict[str, Any]) -> dict[str, str]:
    return {row["email"].strip().lower(): row["status"] for row in run["rows"]}


def test_three_runs_succeed(dbt_runs):
    """Every dbt run builds the incremental model and the three exploded views."""
    _, report = dbt_runs
    assert [run["success"] for run in report["runs"]] == [True, True, True], [
        run["error"] for run in report["runs"]
    ]
    for run in report["runs"]:
        assert run["exploded"]["sixsense_people"] == len(run["rows"])


def test_first_run_asks_each_lead_once(dbt_runs):
    """Run 1: one row per lead (the duplicate folded), each asked once, on the chosen route."""
    route, report = dbt_runs
    first = report["runs"][0]
    function = "people_full" if route == "full" else "people_full_cached"
    assert {row["function"] for row in first["asked"]} == {function}
    assert _asked(first) == Counter(["ann@acme-one.com", "bob@beta-two.com", "cat@gmail.com", "not-an-email"])
    statuses = _statuses(first)
    assert statuses["not-an-email"] == "invalid_input"
    for email in ("ann@acme-one.com", "bob@beta-two.com", "cat@gmail.com"):
        assert statuses[email] == (expected_status(email) if route == "full" else "pending"), email
    assert len(first["rows"]) == 4


def test_second_run_asks_only_new_and_pending_leads(dbt_runs):
    """Run 2: new leads are asked; answered ones (ann again, in capitals) are not; on the cached
    route the pending ones are asked again and come back with their answers."""
    route, report = dbt_runs
    second = report["runs"][1]
    new = ["dan@delta-three.com", "eve@echo-four.com"]
    re_asked = [] if route == "full" else ["ann@acme-one.com", "bob@beta-two.com", "cat@gmail.com"]
    assert _asked(second) == Counter(new + re_asked)
    statuses = _statuses(second)
    assert len(second["rows"]) == 6
    for email in ("ann@acme-one.com", "bob@beta-two.com", "cat@gmail.com"):
        assert statuses[email] == expected_status(email), email
    for email in new:
        assert statuses[email] == (expected_status(email) if route == "full" else "pending"), email


def test_third_run_asks_only_what_is_still_pending(dbt_runs):
    """Run 3, nothing new: the full route asks nothing; the cached route asks only run 2's
    pending leads, which are now answered. Every row is final and right."""
    route, report = dbt_runs
    third = report["runs"][2]
    assert _asked(third) == Counter([] if route == "full" else ["dan@delta-three.com", "eve@echo-four.com"])
    statuses = _statuses(third)
    assert statuses == {email: expected_status(email) for email in [*VALID, "not-an-email"]}


def test_answered_rows_keep_their_answer(dbt_runs):
    """A row answered in run 1 is left alone afterwards: same value, same enriched_at."""
    route, report = dbt_runs
    answered_in = 0 if route == "full" else 1
    before = {r["lead_key"]: r for r in report["runs"][answered_in]["rows"]}
    after = {r["lead_key"]: r for r in report["runs"][2]["rows"]}
    kept = [key for key, row in before.items() if row["status"] in ("ok", "no_match", "invalid_input")]
    assert len(kept) >= 4
    for key in kept:
        assert after[key]["enriched_at"] == before[key]["enriched_at"]
        assert after[key]["enrichment"] == before[key]["enrichment"]


def test_values_are_the_services(dbt_runs):
    """ok rows carry the company 6sense (the simulator) has for the email's domain."""
    _, report = dbt_runs
    for row in report["runs"][2]["rows"]:
        value = row["enrichment"]
        assert value["status"] == row["status"]
        if row["status"] == "ok":
            assert value["company_domain"] == row["email"].strip().lower().split("@")[1]


def test_one_upstream_call_per_unique_valid_lead(dbt_runs):
    """Across the three runs 6sense is asked once per unique valid lead: five calls."""
    _, report = dbt_runs
    assert report["upstream"]["calls"] == len(VALID)
    assert report["upstream"]["by_email"] == {email: 1 for email in VALID}
