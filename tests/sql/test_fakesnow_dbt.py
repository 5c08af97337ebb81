"""The fakesnow gaps that tests/sql/fakesnow_dbt.py works around, each shown to exist and to be
closed by its workaround, so a fakesnow upgrade that fixes one says so here (drop the rewrite).

Runs in the project's venv (fakesnow is a test dependency); dbt is not needed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import fakesnow
import pytest

from .fakesnow_dbt import patched, qualify_merge_insert_values, rewrite

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:fakesnow.cursor")

# The statements dbt-snowflake 1.11 writes for an incremental merge (names shortened).
TMP_VIEW = "create or replace  temporary view sixsense.s.m__dbt_tmp as (select 'b' as k, '3' as v)"
MERGE = """merge into sixsense.s.m as DBT_INTERNAL_DEST
        using sixsense.s.m__dbt_tmp as DBT_INTERNAL_SOURCE
        on ((DBT_INTERNAL_SOURCE.k = DBT_INTERNAL_DEST.k))
    when matched then update set
        "K" = DBT_INTERNAL_SOURCE."K","V" = DBT_INTERNAL_SOURCE."V"
    when not matched then insert
        ("K", "V")
    values
        ("K", "V")
"""
BEGIN = "-- back compat for old kwarg name\n  \n  begin"


def _table(cursor: Any) -> None:
    cursor.execute("create or replace table sixsense.s.m (k varchar, v varchar)")
    cursor.execute("insert into sixsense.s.m values ('a', '1')")


@contextlib.contextmanager
def session(patch: Any) -> Iterator[Any]:
    """A cursor on a fresh fakesnow; ``patch`` is fakesnow.patch (as it is) or the harness's."""
    import snowflake.connector

    with patch():
        connection = snowflake.connector.connect(database="sixsense", schema="s")
        try:
            yield connection.cursor()
        finally:
            connection.close()


def test_gap_1_temporary_relations_outside_the_temp_catalog():
    """A TEMPORARY view with a database and schema fails; rewritten, it is a view there."""
    with session(fakesnow.patch) as plain, pytest.raises(Exception, match="TEMPORARY table names"):
        plain.execute(TMP_VIEW)
    assert rewrite(TMP_VIEW).startswith("create or replace  view sixsense.s.m__dbt_tmp")
    with session(patched) as worked_around:
        worked_around.execute(TMP_VIEW)
        worked_around.execute("select k, v from sixsense.s.m__dbt_tmp")
        assert worked_around.fetchall() == [("b", "3")]


def test_gap_2_merge_insert_values_are_ambiguous():
    """dbt's MERGE does not bind; with the VALUES qualified it merges as Snowflake would."""
    with session(fakesnow.patch) as plain:
        _table(plain)
        plain.execute(rewrite(TMP_VIEW))
        with pytest.raises(Exception, match="Ambiguous reference to column name"):
            plain.execute(MERGE)
    assert 'VALUES (DBT_INTERNAL_SOURCE."K", DBT_INTERNAL_SOURCE."V")' in qualify_merge_insert_values(MERGE)
    with session(patched) as worked_around:
        _table(worked_around)
        worked_around.execute(TMP_VIEW)
        worked_around.execute(MERGE)
        worked_around.execute("select k, v from sixsense.s.m order by k")
        assert worked_around.fetchall() == [("a", "1"), ("b", "3")]


def test_gap_3_merge_inside_a_transaction():
    """A (fixed) MERGE inside begin ... fails on fakesnow's own bookkeeping; begin/commit are
    no-ops with the workaround, and the merge lands."""
    with session(fakesnow.patch) as plain:
        _table(plain)
        plain.execute(rewrite(TMP_VIEW))
        plain.execute(BEGIN)
        with pytest.raises(Exception, match="single transaction can only write to a single"):
            plain.execute(qualify_merge_insert_values(MERGE))
    with session(patched) as worked_around:
        _table(worked_around)
        worked_around.execute(TMP_VIEW)
        worked_around.execute(BEGIN)
        worked_around.execute(MERGE)
        worked_around.execute("commit")
        worked_around.execute("select count(*) from sixsense.s.m")
        assert worked_around.fetchone() == (2,)
