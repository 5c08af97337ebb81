"""The `backfill` target: a procedure and a TASK that re-ask `pending` rows through
people_full_cached until none are left, log every run, and suspend the task at the end.

fakesnow cannot create procedures or tasks (nor run Snowflake Scripting), so those statements
are no-ops there (conftest.FAKESNOW_CANNOT); the procedure's data statements (marked `-- step:`)
run on fakesnow with its control flow replayed here, against a stub people_full_cached."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from udf_service import warehouse_sql

from .conftest import REPO, REQUIRED_VARS

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:fakesnow.cursor")

TABLE = "sixsense.udf.sixsense_enriched"
LOG = "sixsense.udf.sixsense_backfill_runs"


def rendered() -> list[warehouse_sql.Script]:
    return warehouse_sql.render("backfill", REQUIRED_VARS["backfill"])


def procedure_steps() -> list[tuple[str, str]]:
    """The `-- step:` statements of the procedure body, in order: (name, sql)."""
    script = next(s for s in rendered() if s.name == "backfill/backfill_procedure.sql")
    body = script.sql.split("$$")[1]
    return re.findall(r"-- step: ([^\n]+)\n(.*?;)", body, re.S)


def test_renders_a_procedure_a_task_and_a_log() -> None:
    """The target creates the log table, the step procedure and a suspended-by-default task that
    calls it on a schedule; the step re-asks through <function_name>_cached and can suspend it."""
    text = warehouse_sql.render_text(rendered())
    assert "create table if not exists sixsense.udf.sixsense_backfill_runs" in text
    assert "create or replace procedure sixsense.udf.sixsense_backfill_step()" in text
    assert "sixsense.udf.people_full_cached(asked.email, asked.country)" in text
    assert re.search(
        r"create task if not exists sixsense\.udf\.sixsense_backfill\s+warehouse = compute_wh", text
    )
    assert "schedule = '5 MINUTE'" in text and "call sixsense.udf.sixsense_backfill_step();" in text
    suspend = re.search(
        r"if \(pending_after = 0\) then\s+alter task sixsense\.udf\.sixsense_backfill suspend;", text
    )
    assert suspend, "the step must suspend its task once nothing is pending"
    assert "grant execute task on account to role sysadmin" in text
    assert [name for name, _ in procedure_steps()] == [
        "count pending",
        "ask and merge",
        "count pending",
        "log the run",
    ]


def test_variables_change_the_rendering() -> None:
    """Schedule, batch size, names and the function are the target's variables."""
    values = {
        **REQUIRED_VARS["backfill"],
        "backfill_every_minutes": "15",
        "backfill_batch_rows": "2500",
        "backfill_task": "refill",
        "function_name": "enrich",
    }
    text = warehouse_sql.render_text(warehouse_sql.render("backfill", values))
    assert "schedule = '15 MINUTE'" in text and "limit 2500" in text
    assert "sixsense.udf.refill_step()" in text and "sixsense.udf.enrich_cached(" in text


class Backfill:
    """The procedure's control flow, replayed statement by statement on fakesnow."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.cursor = connection.cursor()
        self.steps = procedure_steps()
        self.suspended = False

    def service_fetched(self, emails: set[str]) -> None:
        """people_full_cached answers ok for `emails` (fetched by the service), pending for the rest."""
        listed = ", ".join(f"'{e}'" for e in sorted(emails)) or "''"
        self.connection._duck_conn.execute(
            "create or replace macro sixsense.udf.people_full_cached(email, country) as "
            f"case when email in ({listed}) then json_object('status', 'ok', 'company_name', 'Acme') "
            "else json_object('status', 'pending') end"
        )

    def _count(self, sql: str) -> int:
        self.cursor.execute(re.sub(r"into :\w+\s+", "", sql))
        return int(self.cursor.fetchone()[0])

    def run(self) -> str:
        (_, count), (_, merge), _, (_, log) = self.steps
        pending_before = self._count(count)
        rows_asked = pending_after = 0
        if pending_before > 0:
            self.cursor.execute(merge)
            rows_asked = int(self.cursor.fetchone()[0])  # sqlrowcount
            pending_after = self._count(count)
        binds = {"pending_before": pending_before, "rows_asked": rows_asked, "pending_after": pending_after}
        sql = log.replace(":started_at", "current_timestamp()")
        for name, value in binds.items():
            sql = sql.replace(f":{name}", str(value))
        self.cursor.execute(sql)
        if pending_after == 0:
            self.suspended = True  # `alter task ... suspend` (a no-op on fakesnow)
            return "backfill complete"
        return f"{pending_after} rows still pending"


@pytest.fixture
def backfill_connection(fake_snowflake: Any) -> Any:
    """fakesnow with the target applied (procedure, task and grants are no-ops: FAKESNOW_CANNOT)."""
    connection = fake_snowflake.connect()
    warehouse_sql.apply(rendered(), connection=connection)
    yield connection
    connection.close()


def test_backfill_runs_until_nothing_is_pending(backfill_connection: Any) -> None:
    """Each run merges what the service fetched meanwhile; the run that leaves nothing pending
    logs backfill_complete and suspends the task. Answered rows and other statuses stay as they were."""
    cursor = backfill_connection.cursor()
    rows = [("a@x.com", "pending"), ("b@x.com", "pending"), ("c@x.com", "pending"), ("c@x.com", "pending")]
    rows += [("old@x.com", "ok"), ("bad", "invalid_input")]
    for email, status in rows:
        cursor.execute(
            f"insert into {TABLE} (email, country, enrichment) select %s, 'US', parse_json(%s)",
            (email, json.dumps({"status": status})),
        )
    backfill = Backfill(backfill_connection)

    backfill.service_fetched({"a@x.com"})
    assert backfill.run() == "3 rows still pending" and not backfill.suspended
    backfill.service_fetched({"a@x.com", "b@x.com", "c@x.com"})
    assert backfill.run() == "backfill complete" and backfill.suspended

    cursor.execute(
        f"select email, enrichment:status::varchar, enrichment:company_name::varchar from {TABLE} order by 1"
    )
    assert cursor.fetchall() == [
        ("a@x.com", "ok", "Acme"),
        ("b@x.com", "ok", "Acme"),
        ("bad", "invalid_input", None),
        ("c@x.com", "ok", "Acme"),
        ("c@x.com", "ok", "Acme"),
        ("old@x.com", "ok", None),
    ]
    cursor.execute(
        f"select pending_before, rows_asked, rows_answered, pending_after, backfill_complete, "
        f"finished_at >= started_at from {LOG} order by started_at, pending_before desc"
    )
    assert cursor.fetchall() == [(4, 4, 1, 3, False, True), (3, 3, 3, 0, True, True)]


def test_docs_say_how_to_start_watch_and_stop_it() -> None:
    """docs/snowflake-setup.md renders the target and gives the statements that start, watch and stop it."""
    text = (REPO / "docs" / "snowflake-setup.md").read_text()
    assert "udf-service sql render --target backfill" in text
    assert "alter task sixsense.udf.sixsense_backfill resume;" in text
    assert "alter task sixsense.udf.sixsense_backfill suspend;" in text
    assert "from sixsense.udf.sixsense_backfill_runs" in text and "backfill_complete" in text
