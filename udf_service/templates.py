"""Where the SQL templates are: inside the installed package, or the checkout's ``sql/``.

The repository keeps them in one place, ``sql/`` at its top (every warehouse, the views and the
dbt package). The wheel carries that directory as ``udf_service/sql`` (hatchling force-include,
see pyproject.toml), so an installed package finds it through importlib.resources from any
working directory. An editable install imports ``udf_service`` from the checkout, whose package
directory has no ``sql/``: then the checkout's own ``sql/`` is the one, so edits show at once.
``UDF_SQL_DIR`` overrides both, for people who keep edited templates elsewhere.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from .errors import ConfigError

__all__ = ["SQL_DIR_ENV", "TemplatesNotFound", "dbt_package_dir", "sql_dir"]

SQL_DIR_ENV = "UDF_SQL_DIR"


class TemplatesNotFound(ConfigError):
    """Neither the package nor a checkout holds the SQL templates (a broken install)."""


def _packaged() -> Path | None:
    # A wheel installs into a real directory, so the Traversable is a Path; a zipped install
    # (zipimport) is not supported, and falls through to the error below.
    candidate = resources.files("udf_service").joinpath("sql")
    return candidate if isinstance(candidate, Path) and candidate.is_dir() else None


def _checkout() -> Path | None:
    candidate = Path(__file__).resolve().parents[1] / "sql"
    return candidate if (candidate / "common").is_dir() else None


def sql_dir() -> Path:
    """The directory of the SQL templates: ``UDF_SQL_DIR``, else the package's, else the checkout's."""
    override = os.environ.get(SQL_DIR_ENV)
    if override:
        return Path(override)
    found = _packaged() or _checkout()
    if found is None:
        raise TemplatesNotFound(
            "the SQL templates are missing from this installation of sixsense-udf "
            f"(no udf_service/sql): reinstall it (pip install --force-reinstall sixsense-udf), "
            f"or point {SQL_DIR_ENV} at a copy of the repository's sql/ directory"
        )
    return found


def dbt_package_dir() -> Path:
    """The dbt package (``sql/dbt``) of this installation, for a ``local:`` entry in packages.yml."""
    return sql_dir() / "dbt"
