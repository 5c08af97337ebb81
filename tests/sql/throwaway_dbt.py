"""A throwaway dbt project that installs sql/dbt the way a dbt user does, and dbt to run it.

dbt lives in its own venv (.venv-dbt, made by the Makefile from tests/sql/requirements-dbt.txt),
so dbt-snowflake's pins never touch the project's snowflake-connector-python. Without it the dbt
tests skip, except in CI, where they fail.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SQL_DIR = REPO / "sql"
DBT_VENV = REPO / ".venv-dbt"
DBT = DBT_VENV / "bin" / "dbt"
DBT_PYTHON = DBT_VENV / "bin" / "python"
SETUP_DOC = REPO / "docs" / "snowflake-setup.md"

PROFILE = """\
# A dummy Snowflake profile: nothing here is a real account. `dbt deps` and `dbt parse` never
# connect; tests/sql/run_dbt_models.py patches the connector with fakesnow before dbt connects.
throwaway:
  target: fake
  outputs:
    fake:
      type: snowflake
      account: offline-placeholder
      user: dbt
      password: not-a-password
      role: sysadmin
      warehouse: compute_wh
      database: sixsense
      schema: dbt_it
      threads: 1
"""

PROJECT = """\
name: throwaway
version: "1.0.0"
config-version: 2
profile: throwaway
vars:
  # The test's stand-in functions are DuckDB Python UDFs, which DuckDB keeps in its system
  # catalog, so the models call them unqualified (tests/sql/fakesnow_dbt.py, gap 4).
  sixsense_function: people_full
"""


def require_dbt() -> Path:
    """The dbt executable of .venv-dbt; skip (fail in CI) when it is missing."""
    if DBT.exists() and DBT_PYTHON.exists():
        return DBT
    message = f"{DBT} is missing: make .venv-dbt/.installed (pip install -r tests/sql/requirements-dbt.txt)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def dbt_env() -> dict[str, str]:
    return {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}


def documented_packages_yml() -> dict[str, str]:
    """The `packages.yml` blocks of docs/snowflake-setup.md, by kind: "git" and "local"."""
    blocks = re.findall(r"```yaml\n(# packages\.yml.*?)```", SETUP_DOC.read_text(), re.S)
    found = {}
    for block in blocks:
        kind = "git" if "git:" in block else "local" if "local:" in block else None
        if kind:
            found[kind] = block
    return found


@dataclass(frozen=True)
class ThrowawayProject:
    directory: Path

    @property
    def installed(self) -> Path:
        return self.directory / "dbt_packages" / "sixsense_udf"

    def dbt(self, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
        command = [
            str(DBT),
            *args,
            "--project-dir",
            str(self.directory),
            "--profiles-dir",
            str(self.directory),
        ]
        return subprocess.run(
            command,
            cwd=self.directory,
            env=dbt_env(),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )


def make_project(directory: Path) -> ThrowawayProject:
    """The project, with docs/snowflake-setup.md's local-path packages.yml pointing at sql/dbt."""
    directory.mkdir(parents=True, exist_ok=True)
    local = documented_packages_yml()["local"]
    packages = re.sub(r"(local:\s*)\S+", lambda m: m.group(1) + str(SQL_DIR / "dbt"), local)
    (directory / "packages.yml").write_text(packages)
    (directory / "dbt_project.yml").write_text(PROJECT)
    (directory / "profiles.yml").write_text(PROFILE)
    return ThrowawayProject(directory)
