"""The three views on fakesnow, over the values the service produced (data/service_rows.jsonl).

Expected row counts and values are derived from the file, so it can be regenerated from the
real service without touching this test.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from .conftest import SQL_DIR, load_service_rows

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:fakesnow.cursor")

SCORE_FIELDS = (
    "product",
    "company_intent_score",
    "company_buying_stage",
    "company_profile_score",
    "company_profile_fit",
    "contact_intent_score",
    "contact_grade",
    "contact_profile_score",
    "contact_profile_fit",
)
ORDER = "order by email nulls last, country nulls last"


def _rows(connection: Any, sql: str) -> list[dict[str, Any]]:
    cursor = connection.cursor()
    cursor.execute(sql)
    names = [d[0].lower() for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _key(row: dict[str, Any]) -> tuple:
    return (row["email"] is None, row["email"] or "", row["country"] or "")


def _exploded(value: dict[str, Any], name: str) -> int:
    items = value.get(name)
    return len(items) if isinstance(items, list) and items else 1


def _by_lead(rows: list[dict[str, Any]]) -> dict[tuple, list[dict[str, Any]]]:
    grouped: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(_key(row), []).append(row)
    return grouped


def test_the_data_covers_every_case(service_rows):
    """The rows include ok leads with several scores/segments, ok leads with none, no_match,
    invalid_input and pending."""
    values = [r["value"] for r in service_rows]
    statuses = Counter(v["status"] for v in values)
    assert {"ok", "no_match", "invalid_input", "pending"} <= set(statuses)
    ok = [v for v in values if v["status"] == "ok"]
    assert any(len(v["scores"]) >= 2 and len(v["segments"]) >= 2 for v in ok)
    assert any(v["scores"] == [] and v["segments"] == [] for v in ok)
    assert len({_key(r) for r in service_rows}) == len(service_rows), "one row per lead"


def test_people_one_row_per_lead_with_every_key(views_connection, service_rows):
    """sixsense_people has one row per enriched lead and a column for every output key."""
    rows = _rows(views_connection, f"select * from sixsense.udf.sixsense_people {ORDER}")
    assert len(rows) == len(service_rows)
    output_keys = set(service_rows[0]["value"])
    assert output_keys <= set(rows[0]), output_keys - set(rows[0])
    assert Counter(r["status"] for r in rows) == Counter(r["value"]["status"] for r in service_rows)


def test_people_values_are_typed(views_connection, service_rows):
    """Numbers come back as numbers, fetched_at as a timestamp, from_cache as a boolean,
    arrays as arrays, text as text: all equal to the service's value."""
    rows = {
        _key(r): r for r in _rows(views_connection, f"select * from sixsense.udf.sixsense_people {ORDER}")
    }
    for source in service_rows:
        value, row = source["value"], rows[_key(source)]
        count = value["company_employee_count"]
        assert row["company_employee_count"] == (None if count is None else Decimal(count))
        revenue = value["company_annual_revenue"]
        assert row["company_annual_revenue"] == (
            None if revenue is None else Decimal(str(revenue)).quantize(Decimal("0.01"))
        )
        if value["fetched_at"] is None:
            assert row["fetched_at"] is None
        else:
            assert isinstance(row["fetched_at"], datetime) and row["fetched_at"].tzinfo
            expected = datetime.fromisoformat(value["fetched_at"].replace("Z", "+00:00"))
            assert row["fetched_at"] == expected
        assert row["from_cache"] is value["from_cache"]
        for name in ("scores", "segments", "segment_ids", "segment_names"):
            assert json.loads(row[name]) == value[name], name
        for name in (
            "status",
            "error",
            "company_name",
            "company_domain",
            "company_sic_code",
            "contact_title_level",
        ):
            expected_text = value[name]
            assert row[name] == (None if expected_text is None else str(expected_text)), name


def test_scores_one_row_per_product_and_one_per_scoreless_lead(views_connection, service_rows):
    """sixsense_scores: a row per lead and product, in array order, typed; a lead without
    scores appears exactly once with NULL index and score columns."""
    rows = _rows(
        views_connection, f"select * from sixsense.udf.sixsense_scores {ORDER}, score_index nulls first"
    )
    assert len(rows) == sum(_exploded(r["value"], "scores") for r in service_rows)
    grouped = _by_lead(rows)
    assert len(grouped) == len(service_rows)
    for source in service_rows:
        scores, got = source["value"]["scores"], grouped[_key(source)]
        if not scores:
            assert len(got) == 1
            assert all(got[0][f] is None for f in ("score_index", *SCORE_FIELDS))
            assert got[0]["status"] == source["value"]["status"]
            continue
        assert [r["score_index"] for r in got] == list(range(len(scores)))
        for row, score in zip(got, scores, strict=True):
            for field in SCORE_FIELDS:
                expected = score[field]
                if isinstance(expected, int):
                    assert row[field] == Decimal(expected), field
                else:
                    assert row[field] == expected, field


def test_segments_one_row_per_segment_and_one_per_segmentless_lead(views_connection, service_rows):
    """sixsense_segments: a row per lead and segment with id and name; a lead without
    segments appears exactly once with NULLs."""
    rows = _rows(
        views_connection, f"select * from sixsense.udf.sixsense_segments {ORDER}, segment_index nulls first"
    )
    assert len(rows) == sum(_exploded(r["value"], "segments") for r in service_rows)
    grouped = _by_lead(rows)
    for source in service_rows:
        segments, got = source["value"]["segments"], grouped[_key(source)]
        if not segments:
            assert [(r["segment_index"], r["segment_id"], r["segment_name"]) for r in got] == [
                (None, None, None)
            ]
            continue
        assert [(r["segment_index"], r["segment_id"], r["segment_name"]) for r in got] == [
            (i, Decimal(s["id"]), s["name"]) for i, s in enumerate(segments)
        ]


def test_pinned_lead_without_scores(views_connection):
    """Pinned: an invalid_input lead is one row in each view, with its error and NULLs."""
    invalid = next(r for r in load_service_rows() if r["value"]["status"] == "invalid_input")
    where = "where email = %s" if invalid["email"] is not None else "where email is null"
    params = (invalid["email"],) if invalid["email"] is not None else None
    for view in ("sixsense_people", "sixsense_scores", "sixsense_segments"):
        cursor = views_connection.cursor()
        cursor.execute(f"select count(*) from sixsense.udf.{view} {where}", params)
        assert cursor.fetchone()[0] == 1, view
    cursor = views_connection.cursor()
    cursor.execute(
        f"select status, error, company_name, scores from sixsense.udf.sixsense_people {where}", params
    )
    assert cursor.fetchall() == [("invalid_input", invalid["value"]["error"], None, "[]")]
    cursor.execute(f"select score_index, product from sixsense.udf.sixsense_scores {where}", params)
    assert cursor.fetchall() == [(None, None)]


def test_views_do_not_rely_on_flatten_outer():
    """The views never use OUTER => TRUE, which fakesnow ignores (rows would differ)."""
    paths = [*(SQL_DIR / "views").glob("*.sql"), *(SQL_DIR / "dbt" / "models").glob("*.sql")]
    for path in paths:
        code = re.sub(r"\{#.*?#\}", "", path.read_text(), flags=re.S)
        code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith("--"))
        assert not re.search(r"\bouter\s*=>", code, re.I), path
