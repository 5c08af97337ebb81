"""Applying: run a target's statements in order through snowflake-connector-python, stopping at the
first error with Snowflake's own message (the connector is the optional [snowflake] extra)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .rendering import Script
from .statements import Statement, iter_statements
from .variables import WarehouseSqlError


class ApplyError(WarehouseSqlError):
    """A statement failed in Snowflake; carries where it was and Snowflake's message."""

    def __init__(
        self,
        statement: Statement,
        total: int,
        message: str,
        errno: int | None = None,
        sqlstate: str | None = None,
    ) -> None:
        self.statement = statement
        self.total = total
        self.message = message
        self.errno = errno
        self.sqlstate = sqlstate
        super().__init__(
            f"statement {statement.number} of {total} failed "
            f"({statement.script}, line {statement.line}): {message}\n"
            f"    {statement.excerpt()}\n"
            f"{statement.number - 1} statement(s) before it ran; none after it did"
        )


_ENV_PARAMS = {
    "SNOWFLAKE_ACCOUNT": "account",
    "SNOWFLAKE_USER": "user",
    "SNOWFLAKE_PASSWORD": "password",
    "SNOWFLAKE_ROLE": "role",
    "SNOWFLAKE_WAREHOUSE": "warehouse",
    "SNOWFLAKE_DATABASE": "database",
    "SNOWFLAKE_SCHEMA": "schema",
    "SNOWFLAKE_AUTHENTICATOR": "authenticator",
    "SNOWFLAKE_HOST": "host",
    "SNOWFLAKE_PRIVATE_KEY_FILE": "private_key_file",
    "SNOWFLAKE_PRIVATE_KEY_FILE_PWD": "private_key_file_pwd",
    "SNOWFLAKE_TOKEN": "token",
}


def connect_params_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """snowflake.connector.connect() keyword arguments from SNOWFLAKE_* environment variables."""
    environ = os.environ if environ is None else environ
    return {param: environ[name] for name, param in _ENV_PARAMS.items() if environ.get(name)}


def open_connection(connection_name: str | None = None) -> Any:
    """Open a Snowflake connection with the standard settings.

    ``connection_name`` picks a section of ``connections.toml``; otherwise SNOWFLAKE_ACCOUNT,
    SNOWFLAKE_USER, SNOWFLAKE_PASSWORD, ... from the environment; otherwise the connector's
    default connection (``connections.toml``, ``SNOWFLAKE_DEFAULT_CONNECTION_NAME``).
    """
    try:
        import snowflake.connector
    except ImportError as exc:  # the connector is the optional [snowflake] extra
        raise WarehouseSqlError(
            "sql apply needs snowflake-connector-python: pip install 'sixsense-udf[snowflake]'"
        ) from exc
    if connection_name:
        return snowflake.connector.connect(connection_name=connection_name)
    return snowflake.connector.connect(**connect_params_from_env())


def _database_errors() -> tuple[type[BaseException], ...]:
    try:
        from snowflake.connector.errors import Error
    except ImportError:
        return ()
    return (Error,)


@dataclass(frozen=True)
class Executed:
    """A statement that ran, with the rows it returned (DESCRIBE and SHOW return some)."""

    statement: Statement
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


def apply(
    scripts: Iterable[Script],
    *,
    connection: Any = None,
    connect: Callable[[], Any] | None = None,
    on_executed: Callable[[Executed], None] | None = None,
) -> list[Executed]:
    """Run every statement of ``scripts`` in order on one connection; stop at the first error.

    Pass an open ``connection`` (left open), or a ``connect`` callable (the connection it opens
    is closed at the end); with neither, :func:`open_connection` opens one from the standard
    settings.
    A failing statement raises :class:`ApplyError` with its number, script, line, an excerpt
    and Snowflake's message; the statements before it stay applied (DDL is not transactional).
    """
    statements = list(iter_statements(scripts))
    own = connection is None
    if own:
        connection = connect() if connect else open_connection()
    errors = _database_errors()
    done: list[Executed] = []
    try:
        for statement in statements:
            cursor = connection.cursor()
            try:
                cursor.execute(statement.sql)
                columns = tuple(d[0] for d in (cursor.description or ()))
                rows = tuple(tuple(r) for r in cursor.fetchall()) if columns else ()
            except errors as exc:
                raise ApplyError(
                    statement,
                    len(statements),
                    message=getattr(exc, "msg", None) or str(exc),
                    errno=getattr(exc, "errno", None),
                    sqlstate=getattr(exc, "sqlstate", None),
                ) from exc
            finally:
                cursor.close()
            executed = Executed(statement, columns, rows)
            done.append(executed)
            if on_executed:
                on_executed(executed)
    finally:
        if own:
            connection.close()
    return done
