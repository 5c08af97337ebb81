"""Render and apply the Snowflake SQL that registers the sixsense-udf functions and views.

What: the scripts under ``sql/`` are Jinja templates, one Snowflake object per file. A *target*
(``aws``, ``aws-private``, ``azure``, ``gcp``, ``spcs``, ``views``, ``backfill``) is an ordered list of those
scripts plus the variables they read. :func:`render` fills them in, :func:`split_statements` cuts
a script into statements (not fooled by ``$$...$$`` bodies, quotes or comments), and
:func:`apply` runs the statements one by one through snowflake-connector-python, stopping at the
first error with Snowflake's own message.

Why a library and not a shell script of ``sed`` calls: every value is checked and quoted once,
by kind (an identifier must be an identifier, a string is escaped for a SQL literal, a URL must
be https), a missing value is an error that names the ``--var name=value`` to pass, and the very
same rendering is what users paste, what ``udf-service sql apply`` runs and what the tests run
against fakesnow.

Where: the templates live in ``sql/`` at the top of the repository and ship in the wheel as
``udf_service/sql``; :func:`udf_service.templates.sql_dir` finds them (``UDF_SQL_DIR`` overrides
it). The CLI wrapper is ``udf_service/cli_sql.py``; the walkthrough for users is
``docs/snowflake-setup.md``.

One module per job: ``variables`` (the catalogue: every variable, checked and quoted by kind),
``targets`` (which scripts and variables a target has; the template context), ``rendering``,
``statements`` (splitting) and ``applying``. This package's namespace is the public API.
"""

from __future__ import annotations

from ..templates import sql_dir
from .applying import ApplyError, Executed, apply, connect_params_from_env, open_connection
from .rendering import Script, render, render_text
from .statements import Statement, iter_statements, split_statements
from .targets import LEAD_FIELDS, SIGNATURES, TARGETS, Target, resolve_variables, target_variables
from .variables import VARIABLES, Variable, VariableError, WarehouseSqlError

__all__ = [
    "LEAD_FIELDS",
    "SIGNATURES",
    "TARGETS",
    "VARIABLES",
    "ApplyError",
    "Executed",
    "Script",
    "Statement",
    "Target",
    "Variable",
    "VariableError",
    "WarehouseSqlError",
    "apply",
    "connect_params_from_env",
    "iter_statements",
    "open_connection",
    "render",
    "render_text",
    "resolve_variables",
    "split_statements",
    "sql_dir",
    "target_variables",
]
