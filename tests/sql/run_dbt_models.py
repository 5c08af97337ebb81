"""Run by tests/sql/test_run_dbt_models.py with the dbt venv's Python (.venv-dbt), not the project's.

Runs the sql/dbt package's models with dbt for real, several times, in one process (so dbt and
the emulated warehouse start once): fakesnow stands in for Snowflake (gaps and workarounds in
fakesnow_dbt.py), and the functions the incremental model calls are answered by the real service
whose URL the plan gives. Before each run the plan's new leads are inserted into
``sixsense.crm.leads``; after it, the rows of ``sixsense_enriched``, what each function was asked
and dbt's outcome go into WORK_DIR/report.json. On the cached route it then waits (bounded) until
the service has fetched every pending lead, as a scheduler's next run would find them. Usage:
    .venv-dbt/bin/python tests/sql/run_dbt_models.py PLAN.json
PLAN: {"project_dir", "profiles_dir", "work_dir", "service_url", "route": "full" | "cached",
       "runs": [[[email, country], ...] new leads per run, ...], "wait_timeout_s": 60}

(No helper module here is named ``dbt_*``: dbt's plugin manager imports every top-level module
with that prefix it finds on sys.path, and this directory is on it.)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import snowflake.connector
from dbt.cli.main import dbtRunner

# Both on PYTHONPATH (tests/sql/test_dbt_run.py sets it): the harness beside this file, and
# udf_service.testing.snowflake, the Snowflake stand-in every other test calls the service with
# (a plain module: httpx and orjson, nothing else of the package).
from fakesnow_dbt import Recorder, patched, register_functions

from udf_service.testing.snowflake import SnowflakeCaller

ROUTES = {  # function name -> (route path, MAX_BATCH_ROWS as sql/external/*.sql declare them)
    "people_full": ("/snowflake/people/full", 100),
    "people_full_cached": ("/snowflake/people/full/cached", 1000),
}


def _callers(service_url: str) -> dict[str, SnowflakeCaller]:
    return {
        name: SnowflakeCaller(
            service_url + path, max_batch_rows=rows, parallel=2, function_name=f"SIXSENSE.UDF.{name.upper()}"
        )
        for name, (path, rows) in ROUTES.items()
    }


def _snapshot(cursor: Any) -> list[dict[str, Any]]:
    cursor.execute(
        "select lead_key, email, country, status, enrichment, enriched_at "
        "from sixsense.dbt_it.sixsense_enriched order by lead_key"
    )
    return [
        {
            "lead_key": key,
            "email": email,
            "country": country,
            "status": status,
            "enrichment": json.loads(enrichment) if enrichment else None,
            "enriched_at": enriched_at.isoformat(),
        }
        for key, email, country, status, enrichment, enriched_at in cursor.fetchall()
    ]


def _exploded_counts(cursor: Any) -> dict[str, int]:
    counts = {}
    for view in ("sixsense_people", "sixsense_scores", "sixsense_segments"):
        cursor.execute(f"select count(*) from sixsense.dbt_it.{view}")
        counts[view] = cursor.fetchone()[0]
    return counts


def _wait_until_cached(estimate: SnowflakeCaller, rows: list[list[Any]], timeout_s: float) -> float:
    """Poll the estimate route (it calls nothing) until every row's answer is in the cache."""
    started = time.monotonic()
    while rows and time.monotonic() - started < timeout_s:
        if {value["reason"] for value in estimate.query(rows)} == {"cached"}:
            break
        time.sleep(0.25)
    return round(time.monotonic() - started, 2)


def main(plan: dict[str, Any]) -> dict[str, Any]:
    work = Path(plan["work_dir"])
    common = [
        "--project-dir",
        plan["project_dir"],
        "--profiles-dir",
        plan["profiles_dir"],
        "--target-path",
        str(work / "target"),
        "--log-path",
        str(work / "logs"),
        "--no-version-check",
        "--no-send-anonymous-usage-stats",
        "--quiet",
        "--vars",
        json.dumps({"sixsense_route": plan["route"]}),
    ]
    estimate = SnowflakeCaller(
        plan["service_url"] + "/snowflake/people/full/estimate", max_batch_rows=1000, parallel=1
    )
    recorder = Recorder()
    report: dict[str, Any] = {"runs": []}
    with patched() as duck:
        register_functions(duck, _callers(plan["service_url"]), recorder)
        connection = snowflake.connector.connect(database="sixsense", schema="crm")
        cursor = connection.cursor()
        cursor.execute("create table sixsense.crm.leads (email varchar, country varchar)")
        for new_leads in plan["runs"]:
            for email, country in new_leads:
                cursor.execute("insert into sixsense.crm.leads values (%s, %s)", (email, country))
            started = time.monotonic()
            result = dbtRunner().invoke(["run", *common])
            run: dict[str, Any] = {
                "success": result.success,
                "error": str(result.exception or "")
                or "; ".join(
                    str(r.message)
                    for r in getattr(result.result, "results", []) or []
                    if r.status != "success"
                ),
                "seconds": round(time.monotonic() - started, 2),
                "asked": recorder.take(),
                "rows": _snapshot(cursor) if result.success else [],
                "exploded": _exploded_counts(cursor) if result.success else {},
            }
            pending = [[r["email"], r["country"]] for r in run["rows"] if r["status"] == "pending"]
            run["waited_s"] = _wait_until_cached(estimate, pending, plan.get("wait_timeout_s", 60))
            report["runs"].append(run)
            if not result.success:
                break
        connection.close()
    return report


if __name__ == "__main__":
    document = json.loads(Path(sys.argv[1]).read_text())
    outcome = main(document)
    (Path(document["work_dir"]) / "report.json").write_text(json.dumps(outcome, indent=1))
