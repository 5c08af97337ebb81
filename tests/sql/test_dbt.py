"""The dbt package in sql/dbt: `dbt parse` offline, `dbt compile` of what compiles offline,
the macro's overload choice and its errors, and the compiled exploded models on fakesnow.

dbt lives in its own venv (.venv-dbt, see the Makefile) so that dbt-snowflake's pins cannot
touch the project's snowflake-connector-python. Without it these tests skip, except in CI.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from .conftest import HERE, SQL_DIR
from .throwaway_dbt import DBT_PYTHON, require_dbt

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning:fakesnow.cursor"), pytest.mark.e2e]  # runs dbt


@pytest.fixture(scope="module")
def dbt_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    require_dbt()
    work = tmp_path_factory.mktemp("dbt")
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    result = subprocess.run(
        [
            str(DBT_PYTHON),
            str(HERE / "dbt_check.py"),
            str(SQL_DIR / "dbt"),
            str(HERE / "dbt_profile"),
            str(work),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    report_file = work / "report.json"
    assert result.returncode == 0 and report_file.exists(), result.stderr[-3000:]
    return json.loads(report_file.read_text())


def test_dbt_parse_succeeds_offline(dbt_report):
    """`dbt parse` succeeds on the package with a dummy profile and no network."""
    assert dbt_report["parse"] == {"success": True, "error": ""}


def test_models_and_their_dependencies(dbt_report):
    """Four models: the incremental one calls the macros on the leads source; the exploded
    ones read it."""
    models = dbt_report["models"]
    assert set(models) == {"sixsense_enriched", "sixsense_people", "sixsense_scores", "sixsense_segments"}
    assert {
        "macro.sixsense_udf.people_full",
        "macro.sixsense_udf.lead_key",
        "macro.dbt.is_incremental",
        "source.sixsense_udf.sixsense_udf.leads",
    } <= set(models["sixsense_enriched"])
    for name in ("sixsense_people", "sixsense_scores", "sixsense_segments"):
        assert models[name] == ["model.sixsense_udf.sixsense_enriched"]


def test_schema_tests_are_declared(dbt_report):
    """unique/not_null keys, accepted statuses, one row per (lead, index), every lead exploded."""
    tests = dbt_report["tests"]
    assert "unique_sixsense_enriched_lead_key" in tests
    assert any(t.startswith("accepted_values_sixsense_enriched_status") for t in tests)
    assert any("one_row_per_sixsense_scores_lead_key__score_index" in t for t in tests)
    assert any("one_row_per_sixsense_segments_lead_key__segment_index" in t for t in tests)
    assert any(t.startswith("relationships_sixsense_enriched_lead_key") and "scores" in t for t in tests)


def test_exploded_models_compile_offline(dbt_report):
    """`dbt compile` works offline for the exploded models (the incremental one needs a
    connection for is_incremental())."""
    assert dbt_report["compile"] == {"success": True, "error": ""}
    assert set(dbt_report["compiled"]) == {"sixsense_people", "sixsense_scores", "sixsense_segments"}


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("two_fields", "sixsense.udf.people_full(l.email, l.country)"),
        ("no_country", "sixsense.udf.people_full(l.email, null)"),
        (
            "ten_fields",
            "sixsense.udf.people_full(l.email, l.country, null, null, l.title, null, "
            "null, null, null, l.industry)",
        ),
        ("object", "sixsense.udf.people_full(object_construct('email', l.email))"),
        ("cached", "sixsense.udf.people_full_cached(l.email, l.country)"),
        ("estimate_elsewhere", "db.s.enrich_estimate(e, c)"),
    ],
)
def test_people_full_macro_picks_the_overload(dbt_report, case, expected):
    """people_full() calls the (email, country), ten-field or OBJECT overload on its route."""
    assert dbt_report["inline"][case] == {"sql": expected}


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("error_no_email", "In people_full(): email is required"),
        ("error_both", "In people_full(): pass either lead"),
        ("error_route", "In people_full(): route must be one of full, cached, estimate"),
    ],
)
def test_people_full_macro_errors_name_the_macro(dbt_report, case, message):
    """Bad calls fail at compile time with a message that names people_full()."""
    assert message in dbt_report["inline"][case]["error"]


def test_compiled_models_match_the_views_on_fakesnow(dbt_report, views_connection):
    """The compiled dbt models, run on fakesnow over the same rows, give the views' rows."""
    cursor = views_connection.cursor()
    cursor.execute("create schema if not exists sixsense.dbt_test")
    lead_key = dbt_report["inline"]["lead_key"]["sql"].replace("l.", "")
    cursor.execute(
        "create table sixsense.dbt_test.sixsense_enriched as "
        f"select {lead_key} as lead_key, * from sixsense.udf.sixsense_enriched"
    )
    for name, sql in dbt_report["compiled"].items():
        cursor.execute(f"select * from ({sql}) as model")
        names = [d[0].lower() for d in cursor.description]
        model_rows = Counter(
            tuple(v for n, v in zip(names, row, strict=True) if n != "lead_key") for row in cursor.fetchall()
        )
        cursor.execute(f"select * from sixsense.udf.{name}")
        view_rows = Counter(tuple(row) for row in cursor.fetchall())
        assert [n for n in names if n != "lead_key"] == [d[0].lower() for d in cursor.description]
        assert model_rows == view_rows, name


def test_profile_is_a_dummy():
    """The test profile names no real account or secret."""
    text = (HERE / "dbt_profile" / "profiles.yml").read_text()
    assert "offline-placeholder" in text and "not-a-password" in text
    assert Path(SQL_DIR / "dbt" / "dbt_project.yml").read_text().count("profile: sixsense_udf")
