"""The dbt package installs the way dbt users install packages: `dbt deps`, then `dbt parse`.

The throwaway project (tests/sql/throwaway_dbt.py) takes its packages.yml from the local-path
block of docs/snowflake-setup.md, so the documented entry is the tested one.
"""

from __future__ import annotations

import json

import pytest
import yaml

from .throwaway_dbt import SQL_DIR, documented_packages_yml

pytestmark = pytest.mark.e2e  # runs dbt deps and dbt parse


def test_docs_show_a_git_and_a_local_packages_yml_entry():
    """docs/snowflake-setup.md gives both entries: git with `subdirectory: sql/dbt`, and local."""
    blocks = documented_packages_yml()
    git = yaml.safe_load(blocks["git"])["packages"]
    local = yaml.safe_load(blocks["local"])["packages"]
    assert len(git) == 1 and git[0]["subdirectory"] == "sql/dbt" and git[0]["git"].endswith(".git")
    assert git[0]["revision"].startswith("v")
    assert len(local) == 1 and local[0]["local"].endswith("sql/dbt")


def test_dbt_deps_installs_the_package_from_a_local_path(dbt_project):
    """`dbt deps` puts sql/dbt into dbt_packages/sixsense_udf and records it in the lock file."""
    assert (dbt_project.installed / "dbt_project.yml").is_file()
    assert dbt_project.installed.resolve() == (SQL_DIR / "dbt").resolve() or (
        (dbt_project.installed / "models" / "sixsense_enriched.sql").read_text()
        == (SQL_DIR / "dbt" / "models" / "sixsense_enriched.sql").read_text()
    )
    lock = yaml.safe_load((dbt_project.directory / "package-lock.yml").read_text())
    assert [p["local"] for p in lock["packages"]] == [str(SQL_DIR / "dbt")]


def test_dbt_parse_sees_the_package_models_and_macros(dbt_project):
    """`dbt parse` of the installing project succeeds and finds the package's nodes."""
    result = dbt_project.dbt("parse", "--no-partial-parse")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    manifest = json.loads((dbt_project.directory / "target" / "manifest.json").read_text())
    models = {
        n["name"]
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["package_name"] == "sixsense_udf"
    }
    assert models == {"sixsense_enriched", "sixsense_people", "sixsense_scores", "sixsense_segments"}
    assert {"macro.sixsense_udf.people_full", "macro.sixsense_udf.lead_key"} <= set(manifest["macros"])
    enriched = manifest["nodes"]["model.sixsense_udf.sixsense_enriched"]
    assert enriched["config"]["materialized"] == "incremental"
    assert enriched["config"]["incremental_strategy"] == "merge"
