"""udf-service sql apply: statement by statement on fakesnow, skipping only the DDL kinds
fakesnow cannot emulate (conftest.FAKESNOW_CANNOT), and stopping at the first error."""

from __future__ import annotations

from typing import Any

import pytest

from udf_service import warehouse_sql
from udf_service.warehouse_sql import ApplyError, apply, render

from .conftest import FAKESNOW_CANNOT, REQUIRED_VARS, skipped_kind

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:fakesnow.cursor")

NOP_ANSWER = (("Statement executed successfully.",),)
SKIPPED = {
    "aws": {"api integration", "describe integration", "external function", "grant"},
    "azure": {"api integration", "describe integration", "external function", "grant"},
    "gcp": {"api integration", "describe integration", "external function", "grant"},
    "spcs": {"network rule", "secret", "external access integration", "service", "service function", "grant"},
    "views": {"grant"},
    "backfill": {"procedure", "task", "grant"},
}
SKIPPED["aws-private"] = SKIPPED["aws"]
#: What fakesnow really runs: everything that is not in FAKESNOW_CANNOT.
EXECUTED_PREFIXES = ("use role", "create database", "create schema", "create table", "create or replace view")


@pytest.mark.parametrize("target", sorted(warehouse_sql.TARGETS))
def test_apply_on_fakesnow_skips_only_the_listed_kinds(fake_snowflake, target):
    """Every statement runs; exactly the FAKESNOW_CANNOT kinds are no-ops, the rest is real,
    and the views exist and answer afterwards."""
    connection = fake_snowflake.connect()
    done = apply(render(target, REQUIRED_VARS[target], environ={}), connection=connection)
    statements = list(warehouse_sql.iter_statements(render(target, REQUIRED_VARS[target], environ={})))
    assert [d.statement for d in done] == statements
    kinds = {skipped_kind(d.statement.sql) for d in done} - {None}
    assert kinds == SKIPPED[target]
    for executed in done:
        if skipped_kind(executed.statement.sql):
            assert executed.rows == NOP_ANSWER, executed.statement.excerpt()
        else:
            assert executed.statement.sql.startswith(EXECUTED_PREFIXES), executed.statement.excerpt()
            if executed.statement.sql.startswith("create"):
                assert "successfully created" in executed.rows[0][0]
    cursor = connection.cursor()
    views = ("sixsense_people", "sixsense_scores", "sixsense_segments")
    for view in views if "views/grants.sql" in warehouse_sql.TARGETS[target].scripts else ():
        cursor.execute(f"select count(*) from sixsense.udf.{view}")
        assert cursor.fetchone() == (0,)


def test_every_listed_kind_is_needed():
    """Each FAKESNOW_CANNOT rule matches a statement of some target (no stale rule)."""
    used = set().union(*SKIPPED.values())
    assert used == set(FAKESNOW_CANNOT)


def test_apply_stops_at_the_first_error_with_snowflakes_message():
    """Without the skip list, apply stops at the API integration with its number, script,
    line and the database's message; nothing after it runs."""
    fakesnow = pytest.importorskip("fakesnow")
    import snowflake.connector

    scripts = render("aws", REQUIRED_VARS["aws"], environ={})
    statements = list(warehouse_sql.iter_statements(scripts))
    first_bad = next(s for s in statements if skipped_kind(s.sql) == "api integration")
    seen: list[int] = []
    with fakesnow.patch():
        connection = snowflake.connector.connect()
        with pytest.raises(ApplyError) as error:
            apply(scripts, connection=connection, on_executed=lambda e: seen.append(e.statement.number))
    failure = error.value
    assert failure.statement == first_bad
    assert seen == list(range(1, first_bad.number))
    assert "syntax error" in failure.message.lower()
    text = str(failure)
    assert f"statement {first_bad.number} of {len(statements)}" in text
    assert "external/api_integration_aws.sql, line" in text
    assert "create api integration if not exists sixsense_api" in text


def test_a_connection_apply_opens_is_closed():
    """apply closes a connection it opened itself, after success and after an error."""
    from snowflake.connector.errors import ProgrammingError

    class Cursor:
        description = None

        def execute(self, sql: str) -> None:
            if sql.startswith("bad"):
                raise ProgrammingError(msg="boom", errno=1003)

        def close(self) -> None:
            pass

    class Connection:
        closed = False

        def cursor(self) -> Cursor:
            return Cursor()

        def close(self) -> None:
            self.closed = True

    fine, failing = Connection(), Connection()
    apply([warehouse_sql.Script("x.sql", "select 1;")], connect=lambda: fine)
    with pytest.raises(ApplyError, match="boom") as error:
        apply([warehouse_sql.Script("x.sql", "select 1;\nbad 2;")], connect=lambda: failing)
    assert fine.closed and failing.closed
    assert error.value.errno == 1003 and error.value.statement.line == 2


def test_connection_settings_from_the_environment():
    """SNOWFLAKE_* variables become connector arguments; unset ones are left out."""
    params = warehouse_sql.connect_params_from_env(
        {
            "SNOWFLAKE_ACCOUNT": "xy12345",
            "SNOWFLAKE_USER": "deployer",
            "SNOWFLAKE_ROLE": "",
            "SNOWFLAKE_WAREHOUSE": "wh",
            "HOME": "/root",
        }
    )
    assert params == {"account": "xy12345", "user": "deployer", "warehouse": "wh"}


def test_named_connection_goes_to_connections_toml(monkeypatch):
    """--connection NAME is passed to the connector as connection_name (connections.toml)."""
    import snowflake.connector

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(snowflake.connector, "connect", lambda **kw: calls.append(kw))
    warehouse_sql.open_connection("prod")
    monkeypatch.setenv("SNOWFLAKE_ACCOUNT", "xy12345")
    warehouse_sql.open_connection(None)
    assert calls == [{"connection_name": "prod"}, {"account": "xy12345"}]
