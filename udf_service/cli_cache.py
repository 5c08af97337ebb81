"""`udf-service cache export | import | warm`: keep what was paid for across backends and redeploys.

Every command works on the state that ``UDF_STATE_URL`` names (or ``--state-url``) and never calls
6sense, so none needs ``SIXSENSE_API_TOKEN``. Lifetimes are the service's own
(``UDF_CACHE_TTL_OK_S``, ``UDF_CACHE_TTL_NO_MATCH_S``). See docs/cache.md.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import click

from .errors import ConfigError, StateError

# db.schema.table, each part a plain identifier or a double-quoted one.
_IDENTIFIER = r'(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")+")'
_TABLE = re.compile(rf"^{_IDENTIFIER}(?:\.{_IDENTIFIER}){{0,2}}$")
SNOWFLAKE_EXTRA = "pip install 'sixsense-udf[snowflake]'"


def _settings() -> Any:
    from .config import Settings

    env = dict(os.environ)
    if not env.get("SIXSENSE_API_TOKEN"):  # these commands never call 6sense: no token needed
        env["SIXSENSE_SIMULATE"] = "1"
    return Settings.from_env(env)


@contextmanager
def _state(state_url: str | None) -> Iterator[tuple[Any, Any]]:
    from .state import state_from_url

    try:
        settings = _settings()
        state = state_from_url(state_url or settings.state_url)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        yield state, settings
    except StateError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        state.close()


_state_option = click.option(
    "--state-url", metavar="URL", help="State to use (default: UDF_STATE_URL, as the service does)."
)


@click.group()
def cache() -> None:
    """Export, import and warm the cache of paid answers (never calls 6sense)."""


@cache.command("export")
@_state_option
@click.option("-o", "--output", type=click.File("wb"), default="-", show_default=True, help="JSONL file.")
def export(state_url: str | None, output: IO[bytes]) -> None:
    """Write every fresh cache entry as one JSON line (lead fields, value, fetched_at)."""
    from .cache_transfer import export_lines

    count = 0
    with _state(state_url) as (state, _):
        for line in export_lines(state):
            output.write(line)
            count += 1
    click.echo(f"exported {count:,} entries", err=True)


@cache.command("import")
@_state_option
@click.argument("source", type=click.File("rb"))
def import_(state_url: str | None, source: IO[bytes]) -> None:
    """Load a `cache export` file; keys and expiries are recomputed, expired entries skipped."""
    from .cache_transfer import Lifetimes, import_lines

    with _state(state_url) as (state, settings):
        tally = import_lines(state, source, Lifetimes.of_settings(settings))
    click.echo(tally.render())


@cache.command()
@_state_option
@click.argument("source", type=click.File("rb"), required=False)
@click.option(
    "--connection", "-c", "connection_name", metavar="NAME", help="Snowflake connection (connections.toml)."
)
@click.option(
    "--table", metavar="DB.SCHEMA.TABLE", help="Table to read, e.g. sixsense.udf.sixsense_enriched."
)
def warm(
    state_url: str | None, source: IO[bytes] | None, connection_name: str | None, table: str | None
) -> None:
    """Load final answers (ok, no_match) still within their lifetime from the warehouse.

    SOURCE: JSON lines as written by COPY INTO @stage FROM sixsense_enriched FILE_FORMAT =
    (TYPE = JSON) ('-' for stdin); or, with the snowflake extra, --connection NAME --table T.
    """
    from .cache_transfer import Lifetimes, warm_lines

    if (source is None) == (table is None):
        raise click.UsageError("give a SOURCE file or --table (with --connection), not both")
    rows = _table_rows(connection_name, table) if table else source
    with _state(state_url) as (state, settings):
        tally = warm_lines(state, rows, Lifetimes.of_settings(settings), settings.default_country)
    click.echo(tally.render())


def _table_rows(connection_name: str | None, table: str) -> Iterator[dict[str, Any]]:
    if not _TABLE.match(table):
        raise click.UsageError(f"--table must be db.schema.table, got {table!r}")
    try:
        import snowflake.connector
    except ImportError:
        raise click.ClickException(
            f"cache warm --table reads Snowflake through snowflake-connector-python: {SNOWFLAKE_EXTRA}"
        ) from None
    from . import warehouse_sql

    connection = warehouse_sql.open_connection(connection_name)

    def rows() -> Iterator[dict[str, Any]]:
        try:
            cursor = connection.cursor(snowflake.connector.DictCursor)
            cursor.execute(f"select * from {table}")  # validated identifier, not user data
            while batch := cursor.fetchmany(1000):
                yield from batch
        finally:
            connection.close()

    return rows()


if __name__ == "__main__":
    cache(sys.argv[1:])
