"""fakesnow as the warehouse for real dbt-snowflake runs, with each gap named and worked around.

Runs in the dbt venv (.venv-dbt: dbt-core, dbt-snowflake, fakesnow, numpy, orjson), imported by
tests/sql/run_dbt_models.py. Every workaround lives here, in the test harness, at the fake connector:
none changes what the package (sql/dbt) emits, and each rewrites SQL that real Snowflake runs
as written into SQL with the same meaning that fakesnow 0.12.1 can run. The gaps, observed with
dbt-core 1.11.16, dbt-snowflake 1.11.6 and fakesnow 0.12.1 (shared/reference/tooling.md 2b):

1. TEMPORARY relations. An incremental run builds ``<model>__dbt_tmp`` with
   ``create or replace temporary view <db>.<schema>.<name>``; DuckDB keeps temporary objects only
   in its ``temp`` catalog ("TEMPORARY table names can *only* use the temp catalog"). Here they
   become ordinary views in the same schema (the next run replaces them).
2. MERGE's insert values. dbt-snowflake writes ``when not matched then insert (...) values
   ("LEAD_KEY", ...)``: Snowflake resolves the unqualified names to the source, fakesnow's MERGE
   emulation selects them from a join of target and source and DuckDB calls them ambiguous.
   Here they are qualified with the source alias, which is what Snowflake reads them as.
3. Transactions around a MERGE. fakesnow emulates MERGE with a table it creates, and records
   that table's metadata in its own ``_fs_global`` database; DuckDB refuses a transaction that
   writes to two attached databases ("a single transaction can only write to a single attached
   database"). dbt's explicit ``begin`` / ``commit`` become no-ops: every statement commits on
   its own, and the one dbt wraps in them (the MERGE) is a single statement anyway.
4. External functions. fakesnow accepts ``CREATE EXTERNAL FUNCTION`` but a call returns the URL
   text. The functions are DuckDB Python UDFs instead (:func:`register_functions`), vectorised
   with Arrow so one call gets a whole vector, like a Snowflake batch, and sent on to the real
   service through udf_service/testing/snowflake.py (Snowflake's batching, headers, 202 polls and
   retries). DuckDB keeps Python UDFs in its system catalog, so the models call them unqualified:
   the test project sets the package's own ``sixsense_function`` var to ``people_full``.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import duckdb
import fakesnow
import orjson
import pyarrow as pa
import snowflake.connector
import sqlglot
from fakesnow.cursor import FakeSnowflakeCursor
from sqlglot import exp

# Gap 1: `create or replace temporary view|table` -> `create or replace view|table`.
_TEMPORARY = re.compile(r"\A(\s*create\s+or\s+replace\s+)temporary\s+", re.IGNORECASE)
# Gap 2: only MERGE statements are parsed and rewritten.
_MERGE = re.compile(r"\A\s*merge\s+into\b", re.IGNORECASE)
# Gap 3: dbt's `begin` / `commit`, possibly after `-- comment` lines.
_TRANSACTION = r"\A\s*(--[^\n]*\n\s*)*(begin|commit)\b"


def qualify_merge_insert_values(sql: str) -> str:
    """Gap 2: qualify the unqualified columns of MERGE's insert VALUES with the source alias."""
    tree = sqlglot.parse_one(sql, read="snowflake")
    source = tree.args["using"].alias_or_name
    for when in tree.args["whens"]:
        then = when.args.get("then")
        if when.args.get("matched") or not isinstance(then, exp.Insert):
            continue
        for column in then.expression.expressions:
            if isinstance(column, exp.Column) and not column.table:
                column.set("table", exp.to_identifier(source))
    return tree.sql(dialect="snowflake")


def rewrite(sql: str) -> str:
    """Gaps 1 and 2 for one statement; anything else passes through unchanged."""
    sql = _TEMPORARY.sub(r"\1", sql)
    if _MERGE.match(sql):
        sql = qualify_merge_insert_values(sql)
    return sql


@contextlib.contextmanager
def patched() -> Iterator[duckdb.DuckDBPyConnection]:
    """fakesnow patched in, with the rewrites; yields the DuckDB connection behind every session."""
    original = FakeSnowflakeCursor.execute

    def execute(self: FakeSnowflakeCursor, command: str, *args: Any, **kwargs: Any) -> Any:
        return original(self, rewrite(command), *args, **kwargs)

    FakeSnowflakeCursor.execute = execute  # type: ignore[method-assign]
    try:
        with fakesnow.patch(nop_regexes=[_TRANSACTION]):
            # fakesnow.patch replaces connect() with a mock whose side effect is the bound
            # FakeSnow.connect: its instance owns the one DuckDB database all sessions share.
            yield snowflake.connector.connect.side_effect.__self__.duck_conn  # type: ignore[attr-defined]
    finally:
        FakeSnowflakeCursor.execute = original  # type: ignore[method-assign]


# --------------------------------------------------------------------------- gap 4: the functions


class Recorder:
    """Every row each function was asked about, per run (thread-safe: DuckDB may call in parallel)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.asked: list[dict[str, Any]] = []

    def add(self, function: str, rows: list[list[Any]], values: list[Any]) -> None:
        with self._lock:
            for (email, country), value in zip(rows, values, strict=True):
                status = value.get("status") if isinstance(value, dict) else None
                self.asked.append(
                    {"function": function, "email": email, "country": country, "status": status}
                )

    def take(self) -> list[dict[str, Any]]:
        with self._lock:
            taken, self.asked = self.asked, []
        return taken


def external_function(name: str, caller: Any, recorder: Recorder) -> Callable[..., pa.Array]:
    """A vectorised (email, country) -> VARIANT function that asks the service through ``caller``."""

    def call(email: pa.Array, country: pa.Array) -> pa.Array:
        rows = [list(pair) for pair in zip(email.to_pylist(), country.to_pylist(), strict=True)]
        values = caller.query(rows) if rows else []
        recorder.add(name, rows, values)
        # fakesnow stores VARIANT as DuckDB JSON, which takes Arrow's canonical JSON extension type.
        return pa.array([None if v is None else orjson.dumps(v).decode() for v in values], type=pa.json_())

    return call


def register_functions(duck: duckdb.DuckDBPyConnection, callers: dict[str, Any], recorder: Recorder) -> None:
    """``people_full`` and ``people_full_cached`` (email, country) as DuckDB Python UDFs."""
    varchar = duckdb.sqltype("VARCHAR")
    for name, caller in callers.items():
        duck.create_function(
            name,
            external_function(name, caller, recorder),
            [varchar, varchar],
            duckdb.sqltype("JSON"),
            type="arrow",
            null_handling="special",  # Snowflake sends NULL arguments to the function too
            side_effects=True,  # it calls a service: never fold, cache or skip a call
        )
