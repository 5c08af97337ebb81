"""`udf-service sql` commands: thin wrappers over udf_service.warehouse_sql."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from udf_service import warehouse_sql
from udf_service.cli_sql import sql

from .conftest import FAKESNOW_CANNOT, REQUIRED_VARS

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:fakesnow.cursor")


def _var_args(target: str) -> list[str]:
    return [arg for name, value in REQUIRED_VARS[target].items() for arg in ("--var", f"{name}={value}")]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_attached_to_the_main_group():
    """`udf-service sql` is reachable from the main CLI."""
    from udf_service.cli import main

    assert main.get_command(None, "sql") is sql


def test_targets_lists_every_target(runner):
    """`sql targets` names every target."""
    result = runner.invoke(sql, ["targets"])
    assert result.exit_code == 0
    assert [line.split()[0] for line in result.output.splitlines()] == list(warehouse_sql.TARGETS)


def test_variables_marks_required_ones(runner):
    """`sql variables` shows defaults and which variables are required."""
    result = runner.invoke(sql, ["variables", "--target", "aws"])
    assert result.exit_code == 0
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert "(required)" in lines["gateway_url"] and "'sixsense'" in lines["database"]


@pytest.mark.parametrize("target", sorted(warehouse_sql.TARGETS))
def test_render_prints_the_library_rendering(runner, target):
    """`sql render` prints exactly what warehouse_sql.render_text gives."""
    result = runner.invoke(
        sql,
        ["render", "--target", target, *_var_args(target)],
        env={"SIXSENSE_API_TOKEN": None, "UDF_AUTH_SECRET": None},
    )
    assert result.exit_code == 0, result.output
    expected = warehouse_sql.render_text(warehouse_sql.render(target, REQUIRED_VARS[target], environ={}))
    assert result.output == expected


def test_render_missing_variable_is_a_usage_error(runner):
    """A missing variable exits 2 and says which --var to pass."""
    result = runner.invoke(sql, ["render", "-t", "aws", "--var", "caller_role=analyst"])
    assert result.exit_code == 2
    assert "--var gateway_url=" in result.output and "--var aws_role_arn=" in result.output


def test_malformed_var_is_refused(runner):
    """--var needs NAME=VALUE."""
    result = runner.invoke(sql, ["render", "-t", "views", "--var", "caller_role"])
    assert result.exit_code == 2 and "NAME=VALUE" in result.output


def test_apply_dry_run_connects_to_nothing(runner, monkeypatch):
    """`sql apply --dry-run` prints the numbered statements and opens no connection."""

    def refuse(*_: Any) -> None:
        raise AssertionError("dry run must not connect")

    monkeypatch.setattr(warehouse_sql, "open_connection", refuse)
    result = runner.invoke(sql, ["apply", "-t", "views", "--dry-run", *_var_args("views")])
    assert result.exit_code == 0, result.output
    count = len(list(warehouse_sql.iter_statements(warehouse_sql.render("views", REQUIRED_VARS["views"]))))
    assert f"-- [{count}] views/grants.sql" in result.output
    assert result.output.count("-- [") == count


def test_apply_uses_the_named_connection(runner, monkeypatch, fake_snowflake):
    """`sql apply --connection NAME` opens that connection and reports every statement."""
    names: list[str | None] = []

    def open_connection(name: str | None) -> Any:
        names.append(name)
        return fake_snowflake.connect()

    monkeypatch.setattr(warehouse_sql, "open_connection", open_connection)
    result = runner.invoke(sql, ["apply", "-t", "spcs", "-c", "prod", *_var_args("spcs")])
    assert result.exit_code == 0, result.output
    assert names == ["prod"]
    count = len(list(warehouse_sql.iter_statements(warehouse_sql.render("spcs", REQUIRED_VARS["spcs"]))))
    assert f"{count} statements applied for target spcs." in result.output


def test_apply_from_environment_settings_on_fakesnow(runner, fake_snowflake):
    """Without --connection, SNOWFLAKE_* settings reach the connector (fakesnow here)."""
    result = runner.invoke(
        sql,
        ["apply", "-t", "views", *_var_args("views")],
        env={"SNOWFLAKE_ACCOUNT": "fake", "SNOWFLAKE_USER": "me"},
    )
    assert result.exit_code == 0, result.output
    assert "[1] ok   common/database.sql: use role sysadmin\n" in result.output
    assert "[2] ok   common/database.sql: create database if not exists sixsense" in result.output


def test_apply_failure_exits_1_with_the_statement(runner, monkeypatch):
    """A failing statement exits 1 and names the statement and Snowflake's message."""
    fakesnow = pytest.importorskip("fakesnow")
    import snowflake.connector

    assert FAKESNOW_CANNOT  # the skip list is what makes the other apply tests pass
    with fakesnow.patch():  # no skip list: the API integration fails
        monkeypatch.setattr(warehouse_sql, "open_connection", lambda name: snowflake.connector.connect())
        result = runner.invoke(sql, ["apply", "-t", "aws", *_var_args("aws")])
    assert result.exit_code == 1
    assert "failed (external/api_integration_aws.sql, line" in result.output
    assert "create api integration if not exists sixsense_api" in result.output
