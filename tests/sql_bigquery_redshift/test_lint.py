"""The BigQuery and Redshift SQL: sqlfluff-clean in their own dialects, fully parsed wherever the
dialect has a grammar, and in step with the service (routes, argument counts, output keys).
"""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
import pytest
from flask import Flask
from sqlfluff.core import FluffConfig, Linter

from udf_service.protocols import bigquery, redshift
from udf_service.routes import bigquery as bigquery_routes
from udf_service.sixsense.flatten import OUTPUT_KEYS, SCORE_FIELDS

SQL = Path(__file__).resolve().parents[2] / "sql"
DIALECTS = ["bigquery", "redshift"]
# Statements sqlfluff 4.5 has no grammar for: the function DDL, and nothing else.
UNPARSABLE_ALLOWED = {"bigquery": "people_full*.sql", "redshift": "people_full.sql"}


def _linter(dialect: str) -> Linter:
    return Linter(config=FluffConfig.from_path(str(SQL / dialect)))


def _text(dialect: str, name: str) -> str:
    return (SQL / dialect / name).read_text()


def _rendered(dialect: str, name: str) -> str:
    """The script with the sample values of its folder's .sqlfluff, comments removed."""
    context = FluffConfig.from_path(str(SQL / dialect)).get_section(("templater", "jinja", "context"))
    text = jinja2.Template(_text(dialect, name), undefined=jinja2.StrictUndefined).render(**context)
    return re.sub(r"--[^\n]*", "", text)


@pytest.mark.e2e  # sqlfluff over every script: seconds per dialect
@pytest.mark.parametrize("dialect", DIALECTS)
def test_scripts_lint_clean(dialect: str) -> None:
    """Every script lints clean with sqlfluff in its warehouse's dialect."""
    linter = _linter(dialect)
    assert linter.config.get("dialect") == dialect
    records = linter.lint_paths((str(SQL / dialect),)).as_records()
    assert len(records) >= 5
    problems = [(r["filepath"], v["code"], v["description"]) for r in records for v in r["violations"]]
    assert problems == []


@pytest.mark.parametrize("dialect", DIALECTS)
def test_only_function_ddl_escapes_the_parser(dialect: str) -> None:
    """Tables, views and grants parse completely; only the function DDL may need `noqa: PRS`."""
    linter = _linter(dialect)
    for path in sorted((SQL / dialect).glob("*.sql")):
        unparsable = any("unparsable" in parsed.tree.type_set() for parsed in linter.parse_path(str(path)))
        if unparsable:
            assert path.match(UNPARSABLE_ALLOWED[dialect]), f"{path.name} does not parse"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_noqa_is_explained(dialect: str) -> None:
    """Each `noqa: <rule>` in a script is explained by a comment naming that rule's `noqa`."""
    for path in (SQL / dialect).glob("*.sql"):
        text = path.read_text()
        for rule in set(re.findall(r"-- noqa: (\w+)", text)):
            assert re.search(rf"^-- .*noqa\b.*\b{rule}\b", text, re.M), f"{path.name}: {rule}"


def test_bigquery_functions_call_routes_that_exist() -> None:
    """Each BigQuery function's endpoint is a route of the bigquery blueprint."""
    app = Flask(__name__)
    app.register_blueprint(bigquery_routes.bp)
    routes = {rule.rule for rule in app.url_map.iter_rules() if "POST" in (rule.methods or ())}
    for path in (SQL / "bigquery").glob("people_full*.sql"):
        endpoints = re.findall(r"endpoint = '\{\{ endpoint \}\}(/[^']+)'", path.read_text())
        assert endpoints and set(endpoints) <= routes, path.name


@pytest.mark.parametrize(
    ("dialect", "name", "counts"),
    [
        pytest.param("bigquery", "people_full.sql", [2], id="bq-people_full"),
        pytest.param("bigquery", "people_full_fields.sql", [10], id="bq-people_full_fields"),
        pytest.param("bigquery", "people_full_lead.sql", [1], id="bq-people_full_lead"),
        pytest.param("bigquery", "people_full_cached.sql", [2], id="bq-people_full_cached"),
        pytest.param("redshift", "people_full.sql", [2, 10, 1], id="rs-people_full"),
    ],
)
def test_function_arguments_are_what_the_service_reads(dialect: str, name: str, counts: list[int]) -> None:
    """Every declared argument list has a count the codecs accept: 2 to 10, or one object."""
    text = re.sub(r"\(\d+\)", "", _rendered(dialect, name))  # varchar(65535) -> varchar
    declared = re.findall(r"function\s+[^\s(]+\s*\(([^)]*)\)\s*returns", text, re.I)
    found = [len(args.split(",")) for args in declared]
    assert found == counts
    limit = bigquery.MAX_ARGS if dialect == "bigquery" else redshift.MAX_ARGS
    assert all(count == 1 or 2 <= count <= limit for count in found)


@pytest.mark.parametrize(
    ("dialect", "path_of"),
    [
        pytest.param("bigquery", "'$.{}'", id="bigquery"),
        pytest.param("redshift", "e.enrichment.{}", id="redshift"),
    ],
)
def test_people_view_has_every_output_key(dialect: str, path_of: str) -> None:
    """sixsense_people reads every key of the output value, each into a column of that name."""
    text = _text(dialect, "sixsense_people.sql")
    for key in OUTPUT_KEYS:
        assert path_of.format(key) in text and f" as {key}" in text, key


@pytest.mark.parametrize(
    ("dialect", "path_of"),
    [pytest.param("bigquery", "'$.{}'", id="bigquery"), pytest.param("redshift", "score.{}", id="redshift")],
)
def test_scores_view_has_every_score_field(dialect: str, path_of: str) -> None:
    """sixsense_scores reads every field of a score into a column of that name."""
    text = _text(dialect, "sixsense_scores.sql")
    for field in SCORE_FIELDS:
        assert path_of.format(field) in text and f" as {field}" in text, field
