"""Fixtures for the warehouse-SQL tests: sample variables per target, the service rows file,
and fakesnow connections with an explicit, named list of the DDL fakesnow cannot emulate."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from udf_service import warehouse_sql

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SQL_DIR = REPO / "sql"
SERVICE_ROWS = HERE / "data" / "service_rows.jsonl"

#: The least each target needs; every other variable keeps its default.
REQUIRED_VARS: dict[str, dict[str, str]] = {
    "aws": {
        "caller_role": "analyst",
        "gateway_url": "https://abc123.execute-api.us-east-1.amazonaws.com/prod",
        "aws_role_arn": "arn:aws:iam::123456789012:role/sixsense-udf",
    },
    "azure": {
        "caller_role": "analyst",
        "gateway_url": "https://sixsense-udf.azure-api.net/udf",
        "azure_tenant_id": "11111111-2222-3333-4444-555555555555",
        "azure_app_id": "66666666-7777-8888-9999-000000000000",
    },
    "gcp": {
        "caller_role": "analyst",
        "gateway_url": "https://sixsense-udf-abc.uc.gateway.dev",
        "google_audience": "sixsense-udf-abc.apigateway.my-project.cloud.goog",
    },
    "spcs": {
        "caller_role": "analyst",
        "compute_pool": "sixsense_pool",
        "image": "/sixsense/udf/images/sixsense-udf:0.1.0",
        "sixsense_api_token": "tok-123",
    },
    "views": {"caller_role": "analyst"},
    "backfill": {"caller_role": "analyst", "backfill_warehouse": "compute_wh"},
}
REQUIRED_VARS["aws-private"] = dict(REQUIRED_VARS["aws"])

#: DDL that fakesnow cannot emulate: each kind named, so a skipped statement is never silent.
#: (fakesnow 0.12.1: API/EXTERNAL ACCESS INTEGRATION, NETWORK RULE, SECRET, SERVICE and GRANT
#: are parser errors; EXTERNAL FUNCTION and service functions are accepted but wrong: calling
#: them returns the URL/path text; DESCRIBE INTEGRATION has nothing to describe.)
FAKESNOW_CANNOT: dict[str, str] = {
    "api integration": r"(create|alter)\s+api\s+integration\b",
    "describe integration": r"(describe|desc)\s+integration\b",
    "external function": r"create\s+(or\s+replace\s+)?(secure\s+)?external\s+function\b",
    "service function": r"create\s+(or\s+replace\s+)?function\b[^;]*\bservice\s*=",
    "network rule": r"create\s+(or\s+replace\s+)?network\s+rule\b",
    "secret": r"(create|alter)\s+(or\s+replace\s+)?secret\b",
    "external access integration": r"create\s+(or\s+replace\s+)?external\s+access\s+integration\b",
    "service": r"(create|alter)\s+service\b",
    "grant": r"grant\s",
    # Snowflake Scripting procedures and tasks (the backfill target): parser errors;
    # tests/sql/test_backfill.py runs the procedure's statements one by one instead.
    "procedure": r"create\s+(or\s+replace\s+)?procedure\b",
    "task": r"(create|alter)\s+task\b",
}


def skipped_kind(sql: str) -> str | None:
    """Which FAKESNOW_CANNOT rule a statement matches (fakesnow matches from the start too)."""
    for kind, pattern in FAKESNOW_CANNOT.items():
        if re.match(pattern, sql, re.IGNORECASE | re.DOTALL):
            return kind
    return None


def load_service_rows() -> list[dict[str, Any]]:
    """The rows of tests/sql/data/service_rows.jsonl: {"email", "country", "value"}."""
    with SERVICE_ROWS.open() as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.fixture(scope="session")
def service_rows() -> list[dict[str, Any]]:
    return load_service_rows()


@pytest.fixture
def fake_snowflake() -> Iterator[Any]:
    """A fakesnow-patched snowflake.connector.connect that no-ops FAKESNOW_CANNOT statements."""
    fakesnow = pytest.importorskip("fakesnow")
    import snowflake.connector

    with fakesnow.patch(nop_regexes=list(FAKESNOW_CANNOT.values())):
        yield snowflake.connector


@pytest.fixture
def views_connection(fake_snowflake: Any, service_rows: list[dict[str, Any]]) -> Iterator[Any]:
    """fakesnow with the `views` target applied and the service rows loaded into the table."""
    connection = fake_snowflake.connect()
    warehouse_sql.apply(warehouse_sql.render("views", REQUIRED_VARS["views"]), connection=connection)
    cursor = connection.cursor()
    for row in service_rows:
        cursor.execute(
            "insert into sixsense.udf.sixsense_enriched (email, country, enrichment) "
            "select %s, %s, parse_json(%s)",
            (row["email"], row["country"], json.dumps(row["value"])),
        )
    yield connection
    connection.close()


@pytest.fixture(scope="session")
def dbt_project(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A throwaway dbt project that installed sql/dbt with `dbt deps` from a local path."""
    from .throwaway_dbt import make_project, require_dbt

    require_dbt()
    project = make_project(tmp_path_factory.mktemp("dbt-throwaway") / "project")
    result = project.dbt("deps")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return project
