"""deploy/spcs/spec.yaml: the SPCS service specification for the same image, in step with the
specification that sql/spcs/service.sql writes inline."""

from __future__ import annotations

import re

import jinja2
import pytest
import yaml

from .helpers import CONTRACT_ENV, REPO, SECRET_ENV, SPCS_SPEC, read_dockerfile

SERVICE_SQL = REPO / "sql" / "spcs" / "service.sql"
PLACEHOLDERS = {"image", "database", "schema", "secret_name"}
SAMPLE = {
    "image": "/sixsense/udf/images/sixsense-udf:0.1.0",
    "database": "sixsense",
    "schema": "udf",
    "secret_name": "sixsense_api_token",
    "endpoint_name": "api",
    "upstream_host": "scribe.6sense.com",
    "state_url": "",
    "rate_limit": "",
    "default_country": "",
    "state_volume_size": "10Gi",
}


def _render(template: str) -> dict:
    text = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(template).render(SAMPLE)
    return yaml.safe_load(text)


def _spec() -> dict:
    return yaml.safe_load(SPCS_SPEC.read_text())


def _container(spec: dict) -> dict:
    containers = spec["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def test_spec_parses_as_yaml():
    """The specification is valid YAML, before and after its placeholders are filled."""
    for spec in (_spec(), _render(SPCS_SPEC.read_text())):
        assert spec["spec"]["containers"] and spec["spec"]["endpoints"]


def test_endpoint_api_on_the_image_port():
    """Endpoint `api` is HTTP and not public, on the port the image listens on (UDF_PORT)."""
    port = int(read_dockerfile().env()["UDF_PORT"])
    endpoints = {e["name"]: e for e in _spec()["spec"]["endpoints"]}
    assert endpoints["api"] == {"name": "api", "port": port, "protocol": "HTTP", "public": False}
    assert read_dockerfile().env()["UDF_HOST"] == "0.0.0.0"  # the spec relies on the image for it


def test_readiness_probe_is_readyz():
    """The readiness probe asks /readyz on the service port."""
    assert _container(_spec())["readinessProbe"] == {"port": 8080, "path": "/readyz"}


def test_token_from_a_snowflake_secret():
    """SIXSENSE_API_TOKEN comes from a Snowflake SECRET (secret_string), never from env."""
    container = _container(_spec())
    assert container["secrets"] == [
        {
            "snowflakeSecret": {"objectName": "{{ database }}.{{ schema }}.{{ secret_name }}"},
            "secretKeyRef": "secret_string",
            "envVarName": "SIXSENSE_API_TOKEN",
        }
    ]
    assert not set(container["env"]) & SECRET_ENV


def test_env_names_are_contract_names():
    """Every env var in the spec is a name the service reads, with string values."""
    env = _container(_spec())["env"]
    assert set(env) <= CONTRACT_ENV, set(env) - CONTRACT_ENV
    assert all(isinstance(v, str) for v in env.values())
    assert env["UDF_STATE_URL"] == read_dockerfile().env()["UDF_STATE_URL"]


def test_placeholders_are_documented():
    """The template's placeholders are exactly those its header comment explains."""
    text = SPCS_SPEC.read_text()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    used = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", body))
    assert used == PLACEHOLDERS
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    for name in used:
        assert "{{ " + name + " }}" in header


def test_matches_the_specification_in_the_sql():
    """Container, image, secret, readiness probe and endpoint equal those of sql/spcs/service.sql."""
    if not SERVICE_SQL.exists():
        pytest.skip(f"{SERVICE_SQL} not written yet")
    match = re.search(
        r"\{%-?\s*set specification\s*-?%\}(.*?)\{%-?\s*endset\s*-?%\}", SERVICE_SQL.read_text(), re.S
    )
    assert match, "service.sql no longer sets `specification`"
    theirs, ours = _render(match.group(1)), _render(SPCS_SPEC.read_text())
    keys = ("name", "image", "secrets", "readinessProbe")
    assert {k: _container(ours)[k] for k in keys} == {k: _container(theirs)[k] for k in keys}
    assert ours["spec"]["endpoints"] == theirs["spec"]["endpoints"]
    assert _container(ours)["volumeMounts"] == _container(theirs)["volumeMounts"]
    assert [v["source"] for v in ours["spec"]["volumes"]] == [v["source"] for v in theirs["spec"]["volumes"]]
    assert _container(ours)["env"]["SIXSENSE_BASE_URL"] == _container(theirs)["env"]["SIXSENSE_BASE_URL"]


def test_state_lives_on_a_block_volume():
    """The SQLite state is on SPCS block storage, so a restart or an upgrade keeps the paid answers."""
    spec = _render(SPCS_SPEC.read_text())
    (volume,) = spec["spec"]["volumes"]
    assert volume["source"] == "block" and volume["size"].endswith("Gi")
    mount = _container(spec)["volumeMounts"][0]
    assert mount["name"] == volume["name"] and mount["mountPath"] == "/var/lib/udf"
    assert _container(spec)["env"]["UDF_STATE_URL"] == "sqlite:////var/lib/udf/state.db"
