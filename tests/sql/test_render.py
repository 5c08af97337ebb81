"""udf-service sql render: every target renders, every variable is used and checked."""

from __future__ import annotations

import re

import pytest

from udf_service import warehouse_sql
from udf_service.warehouse_sql import VariableError, render, render_text, split_statements

from .conftest import REQUIRED_VARS, SQL_DIR

TARGETS = sorted(warehouse_sql.TARGETS)
EXTERNAL = ["aws", "aws-private", "azure", "gcp"]
FUNCTION_TARGETS = [*EXTERNAL, "spcs"]
ROUTES = {"people_full": "", "people_full_cached": "/cached", "people_full_estimate": "/estimate"}
SIGNATURES = {
    "varchar, varchar",
    ", ".join(["varchar"] * 10),
    "object",
}


def _distinct_values(target: str) -> dict[str, str]:
    """A value for every variable of `target`, each one recognisable in the output."""
    values = dict(REQUIRED_VARS[target])
    for number, (variable, _) in enumerate(warehouse_sql.target_variables(target), start=1):
        if variable.name in values:
            continue
        values[variable.name] = {
            "identifier": f"x_{variable.name}_{number}",
            "text": f"text-{variable.name}-{number}",
            "integer": str(700 + number),
            "choice": "deflate",
            "header": "sixsense-auth",
            "spec": f"spec-{variable.name}-{number}",
        }[variable.kind]
    if "state_url" in values:
        values["state_url"] = "redis://redis.internal:6379/0"
        values["min_instances"], values["max_instances"] = "2", "3"
    if "rate_limit" in values:
        values["rate_limit"] = "90/minute"
    return values


def _function_statements(sql: str) -> list[str]:
    return [s for s in split_statements(sql) if re.match(r"create\s.*\bfunction\b", s, re.S)]


@pytest.mark.parametrize("target", TARGETS)
def test_renders_with_required_variables_only(target):
    """Each target renders from its required variables alone; no template syntax is left."""
    text = render_text(render(target, REQUIRED_VARS[target]))
    assert "{{" not in text and "{%" not in text and "}}" not in text
    assert split_statements(text)


@pytest.mark.parametrize("target", TARGETS)
def test_every_variable_is_used(target):
    """Every variable a target declares shows up in its rendering (none is dead)."""
    values = _distinct_values(target)
    text = render_text(render(target, values, environ={}))
    for name, value in values.items():
        if name == "state_volume_size":  # mounted for SQLite only: test_spcs_state_on_block_storage
            continue
        shown = value.rstrip("/") if name == "gateway_url" else value
        assert shown in text, f"{name}={value!r} not in the {target} rendering"


def test_spcs_state_on_block_storage():
    """Without state_url the SQLite state sits on a block storage volume of state_volume_size
    (a restart or an upgrade keeps the paid answers); with a Redis state_url there is none."""
    values = {**REQUIRED_VARS["spcs"], "state_volume_size": "25Gi"}
    text = render_text(render("spcs", values, environ={}))
    assert "source: block" in text and "size: 25Gi" in text and "mountPath: /var/lib/udf" in text
    values["state_url"] = "rediss+cluster://valkey.internal:6379/0"
    text = render_text(render("spcs", values, environ={}))
    assert "source: block" not in text and "volumeMounts" not in text


@pytest.mark.parametrize("target", TARGETS)
def test_every_script_exists_and_is_lowercase_sql(target):
    """A target lists only scripts that exist; statements start with lowercase keywords."""
    for name in warehouse_sql.TARGETS[target].scripts:
        assert (SQL_DIR / name).is_file(), name
    for statement in warehouse_sql.iter_statements(render(target, REQUIRED_VARS[target])):
        first = statement.sql.split()[0]
        assert first == first.lower(), statement.excerpt()


@pytest.mark.parametrize("target", FUNCTION_TARGETS)
def test_three_functions_with_three_overloads_on_their_routes(target):
    """people_full, _cached and _estimate each get (email, country), ten fields and OBJECT."""
    text = render_text(render(target, REQUIRED_VARS[target]))
    found: dict[str, set[str]] = {}
    for statement in _function_statements(text):
        name = re.search(r"\.(people_full\w*)\(", statement).group(1)
        arguments = re.search(r"\((.*?)\)\s*returns", statement, re.S).group(1)
        types = ", ".join(part.split()[1] for part in arguments.split(","))
        found.setdefault(name, set()).add(types)
        url = re.search(r"\bas\s+'([^']+)'\s*$", statement).group(1)
        assert url.endswith("/snowflake/people/full" + ROUTES[name]), (name, url)
    assert found == {name: SIGNATURES for name in ROUTES}


@pytest.mark.parametrize("target", FUNCTION_TARGETS)
def test_function_properties_are_explicit(target):
    """Every function states volatility, NULL handling, batch size and context headers."""
    for statement in _function_statements(render_text(render(target, REQUIRED_VARS[target]))):
        for clause in (
            "returns variant",
            "called on null input",
            "volatile",
            "context_headers = (current_account, current_user)",
            "max_batch_rows =",
        ):
            assert clause in statement, (clause, statement[:80])
        if target == "spcs":
            assert "service = sixsense.udf.sixsense_udf_service" in statement
            assert "endpoint = api" in statement and "on_batch_failure = abort" in statement
        else:
            assert statement.startswith("create or replace secure external function")
            assert "api_integration = sixsense_api" in statement
            assert "compression = " in statement


@pytest.mark.parametrize(
    ("target", "provider", "compression"),
    [
        ("aws", "aws_api_gateway", "auto"),
        ("aws-private", "aws_private_api_gateway", "auto"),
        ("azure", "azure_api_management", "none"),
        ("gcp", "google_api_gateway", "none"),
    ],
)
def test_provider_and_compression_per_gateway(target, provider, compression):
    """Each gateway gets its API_PROVIDER and its deliberate COMPRESSION default."""
    text = render_text(render(target, REQUIRED_VARS[target]))
    assert f"api_provider = {provider}\n" in text
    assert {m for m in re.findall(r"compression = (\w+)", text)} == {compression}
    assert "create api integration if not exists sixsense_api" in text
    assert "create or replace api integration" not in text  # would change the external id


@pytest.mark.parametrize("target", FUNCTION_TARGETS)
def test_caller_role_gets_usage_on_every_overload(target):
    """The grants give caller_role USAGE on all nine function signatures."""
    statements = split_statements(render_text(render(target, REQUIRED_VARS[target])))
    granted = {s for s in statements if s.startswith("grant usage on function")}
    expected = {
        f"grant usage on function sixsense.udf.{name}({types})\nto role analyst"
        for name in ROUTES
        for types in SIGNATURES
    }
    assert granted == expected


def test_headers_only_with_a_shared_secret():
    """HEADERS appears only when auth_header and auth_secret are given, quoted for SQL."""
    plain = render_text(render("aws", REQUIRED_VARS["aws"], environ={}))
    assert "\nheaders =" not in plain
    values = {**REQUIRED_VARS["aws"], "auth_header": "SixSense-Auth", "auth_secret": "it's\\x"}
    text = render_text(render("aws", values, environ={}))
    assert text.count("headers = ('sixsense-auth' = 'it\\'s\\\\x')") == 9
    assert "sf-custom-<auth_header>" in text  # the comment says what the service must expect


def test_auth_secret_can_come_from_the_environment():
    """auth_secret falls back to UDF_AUTH_SECRET; the token to SIXSENSE_API_TOKEN."""
    values = {**REQUIRED_VARS["aws"], "auth_header": "sixsense-auth"}
    text = render_text(render("aws", values, environ={"UDF_AUTH_SECRET": "from-env"}))
    assert "= 'from-env')" in text
    spcs = dict(REQUIRED_VARS["spcs"])
    del spcs["sixsense_api_token"]
    text = render_text(render("spcs", spcs, environ={"SIXSENSE_API_TOKEN": "env-token"}))
    assert "secret_string = 'env-token'" in text


def test_half_a_shared_secret_is_an_error():
    """auth_header without auth_secret (or the reverse) is refused."""
    with pytest.raises(VariableError, match="auth_header and auth_secret go together"):
        render("aws", {**REQUIRED_VARS["aws"], "auth_header": "sixsense-auth"}, environ={})


def test_missing_variable_names_it_and_how_to_pass_it():
    """A missing required variable is an error naming it and the --var to pass."""
    values = dict(REQUIRED_VARS["aws"])
    del values["gateway_url"]
    with pytest.raises(VariableError) as error:
        render("aws", values)
    message = str(error.value)
    assert "--var gateway_url=https://" in message
    assert "aws_role_arn" not in message  # only what is missing


def test_unknown_variable_suggests_the_closest():
    """A misspelt variable is refused with the closest known name."""
    with pytest.raises(VariableError, match="did you mean gateway_url"):
        render("aws", {**REQUIRED_VARS["aws"], "gatway_url": "https://x"})


def test_unknown_target_is_refused():
    """Only the listed targets render."""
    with pytest.raises(VariableError, match="unknown target 'oracle'"):
        render("oracle", {})


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        pytest.param("database", "sixsense; drop table x", "plain Snowflake identifier", id="ident"),
        pytest.param("gateway_url", "http://insecure.example", "https://", id="url"),
        pytest.param("aws_role_arn", "arn:aws:iam::1:user/x", "IAM role ARN", id="arn"),
        pytest.param("auth_header", "x_secret", "no _", id="header-underscore"),
        pytest.param("max_batch_rows", "0", "positive whole number", id="integer"),
        pytest.param("compression", "brotli", "one of auto", id="choice"),
        pytest.param("api_key", "two\nlines", "one-line", id="text"),
    ],
)
def test_values_are_checked_by_kind(name, value, expected):
    """Each variable kind refuses values that would break or inject into the SQL."""
    with pytest.raises(VariableError, match=expected):
        render("aws", {**REQUIRED_VARS["aws"], name: value}, environ={})


def test_spec_values_cannot_break_out_of_the_specification():
    """Values written into the inline $$ specification may not contain $$ or quotes."""
    with pytest.raises(VariableError, match="without"):
        render("spcs", {**REQUIRED_VARS["spcs"], "image": "/a/b/c:1$$; drop"})


def test_several_instances_need_redis():
    """max_instances > 1 is refused unless state_url is a redis:// URL."""
    with pytest.raises(VariableError, match="state_url=redis://"):
        render("spcs", {**REQUIRED_VARS["spcs"], "max_instances": "2"})
    text = render_text(
        render("spcs", {**REQUIRED_VARS["spcs"], "max_instances": "2", "state_url": "redis://r:6379/0"})
    )
    assert 'UDF_STATE_URL: "redis://r:6379/0"' in text and "max_instances = 2" in text


def test_spcs_specification_is_inline_and_consistent():
    """CREATE and ALTER SERVICE carry the same inline spec naming the secret and endpoint."""
    statements = split_statements(render_text(render("spcs", REQUIRED_VARS["spcs"])))
    specs = [re.search(r"\$\$(.*?)\$\$", s, re.S).group(1) for s in statements if "$$" in s]
    assert len(specs) == 2 and specs[0] == specs[1]
    spec = specs[0]
    assert 'objectName: "sixsense.udf.sixsense_api_token"' in spec
    assert "envVarName: SIXSENSE_API_TOKEN" in spec and "path: /readyz" in spec
    assert "- name: api\n      port: 8080" in spec and "public: false" in spec
    assert "UDF_STATE_URL" not in spec  # unset: the image's own default applies


def test_sql_dir_can_be_overridden(monkeypatch, tmp_path):
    """UDF_SQL_DIR points the renderer at another copy of the scripts."""
    monkeypatch.setenv("UDF_SQL_DIR", str(tmp_path))
    assert warehouse_sql.sql_dir() == tmp_path
    monkeypatch.delenv("UDF_SQL_DIR")
    assert warehouse_sql.sql_dir() == SQL_DIR


def test_every_variable_is_documented():
    """docs/snowflake-setup.md explains every variable of every target."""
    text = (SQL_DIR.parent / "docs" / "snowflake-setup.md").read_text()
    missing = [name for name in warehouse_sql.VARIABLES if f"`{name}`" not in text]
    assert missing == []
