"""Where `udf-service sql` finds its templates, and what it says when something is missing.

The wheel itself is checked in tests/e2e (built, installed into a fresh venv, run from an empty
directory); these are the lookup rules, in-process.
"""

from __future__ import annotations

import builtins
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from udf_service import templates, warehouse_sql
from udf_service.cli_sql import sql

from .conftest import REQUIRED_VARS, SQL_DIR


def test_editable_install_uses_the_checkouts_sql(monkeypatch):
    """From a checkout (editable install: udf_service/ has no sql/), the templates are ./sql."""
    monkeypatch.delenv("UDF_SQL_DIR", raising=False)
    assert not (Path(templates.__file__).parent / "sql").exists()
    assert templates.sql_dir() == SQL_DIR
    assert warehouse_sql.sql_dir is templates.sql_dir


def test_packaged_templates_win_over_the_checkout(monkeypatch, tmp_path):
    """When the package carries sql/ (a wheel install), that copy is the one."""
    packaged = tmp_path / "udf_service"
    (packaged / "sql" / "common").mkdir(parents=True)
    monkeypatch.delenv("UDF_SQL_DIR", raising=False)
    monkeypatch.setattr(templates.resources, "files", lambda name: packaged)
    assert templates.sql_dir() == packaged / "sql"


def test_udf_sql_dir_overrides_both(monkeypatch, tmp_path):
    monkeypatch.setenv("UDF_SQL_DIR", str(tmp_path))
    assert templates.sql_dir() == tmp_path


def test_missing_templates_are_one_clear_error(monkeypatch, tmp_path):
    """Neither the package nor a checkout has them: one line saying how to repair, no traceback."""
    monkeypatch.delenv("UDF_SQL_DIR", raising=False)
    monkeypatch.setattr(templates.resources, "files", lambda name: tmp_path)
    monkeypatch.setattr(templates, "_checkout", lambda: None)
    result = CliRunner().invoke(sql, ["render", "-t", "views", "--var", "caller_role=analyst"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: the SQL templates are missing")
    assert "UDF_SQL_DIR" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_sql_path_prints_the_templates_and_the_dbt_package(monkeypatch):
    """`udf-service sql path [--dbt]`: what a packages.yml `local:` entry can point at."""
    monkeypatch.delenv("UDF_SQL_DIR", raising=False)
    assert CliRunner().invoke(sql, ["path"]).output == f"{SQL_DIR}\n"
    dbt = CliRunner().invoke(sql, ["path", "--dbt"]).output.strip()
    assert dbt == str(SQL_DIR / "dbt") and (Path(dbt) / "dbt_project.yml").is_file()


def test_apply_without_the_connector_names_the_extra(monkeypatch):
    """Without snowflake-connector-python, `sql apply` says in one line how to install it."""
    real_import = builtins.__import__

    def no_connector(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "snowflake.connector" or name.startswith("snowflake.connector."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    for module in [m for m in sys.modules if m == "snowflake.connector" or m.startswith("snowflake.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setattr(builtins, "__import__", no_connector)
    args = [f"{name}={value}" for name, value in REQUIRED_VARS["views"].items()]
    result = CliRunner().invoke(sql, ["apply", "-t", "views", *[a for v in args for a in ("--var", v)]])
    assert result.exit_code == 1, result.output
    assert result.output == (
        "Error: sql apply needs snowflake-connector-python: pip install 'sixsense-udf[snowflake]'\n"
    )
    assert not isinstance(result.exception, ImportError)
