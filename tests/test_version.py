"""One version: pyproject.toml's. Everything that shows it reads it, or is checked against it.

Read from the metadata: udf_service.__version__, `udf-service --version`, /healthz and /usage.
Literal copies, because their formats cannot read it: the dbt package's dbt_project.yml, the
Dockerfile's ARG VERSION (the image label), openapi.json's info.version, the release tag the
docs' packages.yml pins, and the versions the install instructions show (README, docs/install.md).
Each fails here when it differs.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import udf_service
from udf_service.app import create_app
from udf_service.cli import main
from udf_service.config import Settings

REPO = Path(__file__).resolve().parents[1]
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def test_package_version_is_pyprojects():
    """udf_service.__version__ is the installed metadata's, which is pyproject's."""
    assert udf_service.__version__ == importlib.metadata.version("sixsense-udf") == VERSION


def test_cli_prints_it():
    """`udf-service --version` prints the package version."""
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and result.output == f"udf-service, version {VERSION}\n"


def _dbt_project() -> str:
    return yaml.safe_load((REPO / "sql" / "dbt" / "dbt_project.yml").read_text())["version"]


def _dockerfile() -> str:
    match = re.search(r"^ARG VERSION=(\S+)$", (REPO / "Dockerfile").read_text(), re.M)
    assert match, "the Dockerfile has no ARG VERSION=<default>"
    return match.group(1)


def _openapi() -> str:
    return json.loads((REPO / "udf_service" / "openapi.json").read_text())["info"]["version"]


def _docs_release_tag() -> str:
    text = (REPO / "docs" / "snowflake-setup.md").read_text()
    match = re.search(r"subdirectory: sql/dbt\n\s+revision: v(\S+)", text)
    assert match, "docs/snowflake-setup.md has no git packages.yml entry with a release revision"
    return match.group(1)


@pytest.mark.parametrize(
    "copy",
    [
        pytest.param(_dbt_project, id="sql/dbt/dbt_project.yml"),
        pytest.param(_dockerfile, id="Dockerfile ARG VERSION"),
        pytest.param(_openapi, id="openapi.json info.version"),
        pytest.param(_docs_release_tag, id="docs packages.yml revision"),
    ],
)
def test_literal_copies_match(copy):
    """Each place that must repeat the version says pyproject's."""
    assert copy() == VERSION, f"{copy.__name__.strip('_')} says {copy()}, pyproject.toml says {VERSION}"


def test_healthz_and_usage_say_which_release_runs(tmp_path):
    """GET /healthz and GET /usage carry the version, so a running service tells its release."""
    settings = Settings(api_token="t", base_url="http://127.0.0.1:9", state_url=f"sqlite:///{tmp_path}/s.db")
    app = create_app(settings, background=False)
    try:
        client = app.test_client()
        assert client.get("/healthz").get_json() == {"status": "ok", "version": VERSION}
        assert client.get("/usage").get_json()["version"] == VERSION
    finally:
        app.extensions["udf"].shutdown(grace_s=0)


#: How the install instructions show a version: a wheel's file name, `--version`'s output, the
#: /healthz body, a git tag.
_SHOWN_VERSION = re.compile(
    r"sixsense_udf-(\d+\.\d+\.\d+)|version (\d+\.\d+\.\d+)|\"version\": \"(\d+\.\d+\.\d+)\"|@v(\d+\.\d+\.\d+)"
)


@pytest.mark.parametrize("document", ["README.md", "docs/install.md"])
def test_install_instructions_show_this_version(document):
    """Every version the install instructions show (wheel names, outputs, tags) is pyproject's."""
    text = (REPO / document).read_text()
    shown = [next(g for g in match.groups() if g) for match in _SHOWN_VERSION.finditer(text)]
    assert shown, f"{document} shows no version to check"
    assert set(shown) == {VERSION}, f"{document} shows {sorted(set(shown))}, pyproject.toml says {VERSION}"
