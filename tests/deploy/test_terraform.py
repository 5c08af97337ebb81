"""The Terraform module in terraform/aws: it parses, it is formatted, and it contains what the
deployment issue demands (routes, auth, trust, outputs, secrets, shared state, toggles).

No provider registry is reachable here, so `terraform validate`/`plan` can't run: these checks
read the HCL with python-hcl2 instead, and `terraform fmt` runs when a binary is on PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from .helpers import (
    CONTRACT_ENV,
    ROUTES,
    SECRET_ENV,
    TF_EXAMPLE,
    TF_MODULE,
    TF_ROOT,
    first,
    load_tf,
    tf_files,
    tf_locals,
    tf_named,
    tf_resources,
)

ALL_TF = tf_files()


def _resource_paths(resources: dict) -> dict[str, str]:
    """Name of each aws_api_gateway_resource -> its full path, following parent_id references."""
    parents = {
        name: (body["parent_id"], body["path_part"])
        for (rtype, name), body in resources.items()
        if rtype == "aws_api_gateway_resource"
    }

    def path_of(name: str) -> str:
        parent, part = parents[name]
        match = re.fullmatch(r"\$\{aws_api_gateway_resource\.(\w+)\.id\}", parent)
        if match:
            return f"{path_of(match.group(1))}/{part}"
        assert "root_resource_id" in parent, parent
        return part

    return {name: path_of(name) for name in parents}


# -----------------------------------------------------------------------------------------------
# Syntax and layout
# -----------------------------------------------------------------------------------------------


def test_terraform_files_exist():
    """The module and its example exist where the docs point."""
    names = {p.relative_to(TF_ROOT).as_posix() for p in ALL_TF}
    for required in ("main.tf", "variables.tf", "outputs.tf", "versions.tf"):
        assert f"aws/{required}" in names
    for required in ("main.tf", "versions.tf"):
        assert f"aws/examples/minimal/{required}" in names


@pytest.mark.parametrize("path", ALL_TF, ids=[p.relative_to(TF_ROOT).as_posix() for p in ALL_TF])
def test_tf_file_parses(path):
    """Every .tf file parses with python-hcl2 and declares something."""
    assert load_tf(path), f"{path} parsed to nothing"


@pytest.mark.skipif(shutil.which("terraform") is None, reason="no terraform binary on PATH")
def test_terraform_fmt():
    """`terraform fmt -check -recursive` finds nothing to reformat."""
    env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull}
    result = subprocess.run(
        ["terraform", "fmt", "-check", "-diff", "-recursive", str(TF_ROOT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"terraform fmt would change:\n{result.stdout}{result.stderr}"


def test_versions_pin_terraform_and_providers():
    """versions.tf pins Terraform and every provider; the module itself configures none."""
    for directory in (TF_MODULE, TF_EXAMPLE):
        terraform = first(load_tf(directory / "versions.tf")["terraform"])
        assert terraform["required_version"].startswith(">=")
        providers = first(terraform["required_providers"])
        assert providers["aws"]["source"] == "hashicorp/aws"
        assert providers["aws"]["version"].startswith("~> 5.")
        assert providers["snowflake"]["source"].lower() in {
            "snowflakedb/snowflake",
            "snowflake-labs/snowflake",
        }
        assert re.match(r"^~> \d+\.\d+", providers["snowflake"]["version"])
        assert re.match(r"^~> \d+\.\d+", providers["random"]["version"])
    for path in TF_MODULE.glob("*.tf"):
        assert "provider" not in load_tf(path), f"{path.name}: provider blocks belong in the root module"


def test_example_is_a_root_module_calling_this_one():
    """examples/minimal calls the module by relative path and configures the providers."""
    main = load_tf(TF_EXAMPLE / "main.tf")
    modules = {name: body for block in main["module"] for name, body in block.items()}
    assert [m["source"] for m in modules.values()] == ["../../"]
    configured = {name for block in main["provider"] for name in block}
    assert {"aws", "snowflake"} <= configured


def test_every_variable_is_typed_and_described():
    """Every variable has a type and a description; validated ones explain their error."""
    for directory in (TF_MODULE, TF_EXAMPLE):
        for name, body in tf_named("variable", directory).items():
            assert body.get("type"), f"variable {name} has no type"
            assert len(body.get("description", "")) > 20, f"variable {name} has no real description"
            for validation in body.get("validation", []):
                assert validation["error_message"].strip(), f"variable {name}: empty error_message"


def test_every_output_is_described_and_guarded():
    """Outputs have descriptions; those reading resources go through try()."""
    for name, body in tf_named("output").items():
        assert body.get("description"), f"output {name} has no description"
        value = str(body["value"])
        if re.search(r"\baws_\w+\.\w+|snowflake_\w+\.\w+", value) and not value.startswith("${local."):
            assert "try(" in value, f"output {name} reads a resource without try(): {value}"


# -----------------------------------------------------------------------------------------------
# API Gateway
# -----------------------------------------------------------------------------------------------


def test_rest_api_regional_by_default_private_by_variable():
    """The API is a REST API (not HTTP API), REGIONAL by default, PRIVATE through a variable."""
    resources = tf_resources()
    assert not [r for r in resources if r[0].startswith("aws_apigatewayv2")]
    api = resources[("aws_api_gateway_rest_api", "this")]
    assert first(api["endpoint_configuration"])["types"] == ["${var.endpoint_type}"]
    endpoint_type = tf_named("variable")["endpoint_type"]
    assert endpoint_type["default"] == "REGIONAL"
    assert "PRIVATE" in endpoint_type["validation"][0]["condition"]


def test_routes_exist_as_resources():
    """The three service routes exist as API resources, and local.routes names the same paths."""
    resources = tf_resources()
    paths = _resource_paths(resources)
    assert set(ROUTES) <= set(paths.values())
    assert sorted(tf_locals()["routes"].values()) == sorted(ROUTES)
    ids = tf_locals()["route_resource_ids"]
    for key, path in tf_locals()["routes"].items():
        resource = re.fullmatch(r"\$\{aws_api_gateway_resource\.(\w+)\.id\}", ids[key]).group(1)
        assert paths[resource] == path, f"route {key} points at {paths[resource]}, not {path}"


def test_every_route_has_get_and_post():
    """Methods and integrations are built from every (route, method) pair of routes x {GET, POST}."""
    route_methods = tf_locals()["route_methods"]
    assert "setproduct(keys(local.routes)" in route_methods
    assert re.search(r'\[\s*"GET"\s*,\s*"POST"\s*\]', route_methods), route_methods
    resources = tf_resources()
    for rtype in ("aws_api_gateway_method", "aws_api_gateway_integration"):
        assert resources[(rtype, "this")]["for_each"] == "${local.route_methods}", rtype


def test_methods_use_aws_iam():
    """Every method requires SigV4 (AWS_IAM), so anonymous calls are refused."""
    methods = [b for (t, _), b in tf_resources().items() if t == "aws_api_gateway_method"]
    assert methods and all(m["authorization"] == "AWS_IAM" for m in methods)


def test_integration_proxies_path_through_vpc_link_with_29s_timeout():
    """HTTP proxy via the VPC link to the load balancer, same path, at most 29000 ms."""
    integration = tf_resources()[("aws_api_gateway_integration", "this")]
    assert integration["type"] == "HTTP_PROXY"
    assert integration["connection_type"] == "VPC_LINK"
    assert integration["integration_http_method"] == "${each.value.method}"
    assert integration["uri"].endswith("/${local.routes[each.value.route]}")
    assert "aws_lb.this.dns_name" in integration["uri"]
    assert integration["timeout_milliseconds"] == "${var.integration_timeout_ms}"
    timeout = tf_named("variable")["integration_timeout_ms"]
    assert timeout["default"] == 29000
    assert "29000" in timeout["validation"][0]["condition"]
    assert tf_named("variable")["sync_budget_s"]["default"] < 29


def test_binary_bodies_pass_through():
    """All media types are binary, so gzip request bodies reach the service unchanged."""
    api = tf_resources()[("aws_api_gateway_rest_api", "this")]
    assert api["binary_media_types"] == ["*/*"]


def test_resource_policy_admits_only_the_snowflake_role():
    """The resource policy allows the Snowflake role's session and denies every other principal."""
    policy = tf_resources()[("aws_api_gateway_rest_api_policy", "this")]["policy"]
    assert policy.count("execute-api:Invoke") == 2
    assert re.search(
        r'Effect = "Allow", Principal = \{AWS = concat\(\[local\.snowflake_session_arn\]', policy
    )
    assert re.search(r'Effect = "Deny", Principal = "\*"', policy)
    assert '"aws:PrincipalArn" = concat([local.snowflake_role_arn]' in policy
    local = tf_locals()
    assert local["snowflake_session_arn"].endswith(":assumed-role/${local.snowflake_role_name}/snowflake")
    assert ":role/${local.snowflake_role_name}" in local["snowflake_role_arn"]
    assert "aws:SourceVpc" in local["private_condition"]


def test_stage_has_access_logs_tracing_and_redeploys_on_change():
    """The stage writes access logs, traces with X-Ray, and a changed API triggers a redeployment."""
    resources = tf_resources()
    stage = resources[("aws_api_gateway_stage", "this")]
    assert (
        first(stage["access_log_settings"])["destination_arn"] == "${aws_cloudwatch_log_group.api_access.arn}"
    )
    assert stage["xray_tracing_enabled"] is True
    triggers = resources[("aws_api_gateway_deployment", "this")]["triggers"]
    for part in (
        "aws_api_gateway_method.this",
        "aws_api_gateway_integration.this",
        "aws_api_gateway_rest_api_policy.this.policy",
    ):
        assert part in triggers["redeployment"]
    settings = first(resources[("aws_api_gateway_method_settings", "this")]["settings"])
    assert settings["data_trace_enabled"] is False  # bodies hold e-mail addresses


# -----------------------------------------------------------------------------------------------
# IAM trust (two-step)
# -----------------------------------------------------------------------------------------------


def test_trust_policy_uses_snowflake_user_and_external_id():
    """The Snowflake role is assumable by the integration's IAM user, with its external id."""
    role = tf_resources()[("aws_iam_role", "snowflake")]
    policy = role["assume_role_policy"]
    assert '"sts:AssumeRole"' in policy
    assert "Principal = {AWS = local.snowflake_trust_principal}" in policy
    assert '"sts:ExternalId" = local.snowflake_trust_external_id' in policy
    local = tf_locals()
    assert "local.snowflake_iam_user_arn" in local["snowflake_trust_principal"]
    assert "local.snowflake_external_id" in local["snowflake_trust_external_id"]
    assert "var.snowflake_iam_user_arn" in local["snowflake_iam_user_arn"]
    assert "var.snowflake_external_id" in local["snowflake_external_id"]
    # Step 1: both unset -> placeholder trust (this account, unknown external id).
    assert ":root" in local["snowflake_trust_principal"]
    variables = tf_named("variable")
    for name in ("snowflake_iam_user_arn", "snowflake_external_id"):
        assert variables[name]["default"] is None
        assert "DESCRIBE INTEGRATION" in variables[name]["description"]


def test_role_arn_does_not_depend_on_the_role_resource():
    """The role ARN the Snowflake integration uses is computed, so trust and integration form no cycle."""
    assert "aws_iam_role" not in tf_locals()["snowflake_role_arn"]
    integration = tf_resources()[("snowflake_api_integration", "this")]
    assert integration["api_aws_role_arn"] == "${local.snowflake_role_arn}"
    assert integration["api_allowed_prefixes"] == ["${local.gateway_url}"]


# -----------------------------------------------------------------------------------------------
# Outputs the SQL needs
# -----------------------------------------------------------------------------------------------


def test_outputs_for_sql_render():
    """gateway_url (ending in '/') and snowflake_role_arn exist under exactly those names."""
    outputs = tf_named("output")
    assert outputs["gateway_url"]["value"] == "${try(local.gateway_url, null)}"
    gateway_url = tf_locals()["gateway_url"]
    assert gateway_url.startswith("https://${aws_api_gateway_rest_api.this.id}.execute-api.")
    assert gateway_url.endswith("/${var.stage_name}/")
    assert "aws_iam_role.snowflake.arn" in outputs["snowflake_role_arn"]["value"]
    for name in ("rest_api_id", "vpc_endpoint_ids", "api_provider", "sql_render_command"):
        assert name in outputs, f"missing output {name}"
    command = outputs["sql_render_command"]["value"]
    assert "udf-service sql render --target %s" in command and '"aws-private" : "aws"' in command
    assert "--var gateway_url=" in command and "--var aws_role_arn=" in command
    example_outputs = tf_named("output", TF_EXAMPLE)
    assert {"gateway_url", "snowflake_role_arn"} <= set(example_outputs)


# -----------------------------------------------------------------------------------------------
# Service
# -----------------------------------------------------------------------------------------------


def test_service_runs_on_fargate_behind_the_nlb():
    """ECS Fargate (amd64), registered in the target group the VPC link's load balancer forwards to."""
    resources = tf_resources()
    task = resources[("aws_ecs_task_definition", "this")]
    assert task["requires_compatibilities"] == ["FARGATE"]
    assert first(task["runtime_platform"])["cpu_architecture"] == "X86_64"
    service = resources[("aws_ecs_service", "this")]
    assert service["launch_type"] == "FARGATE"
    assert first(service["load_balancer"])["target_group_arn"] == "${aws_lb_target_group.this.arn}"
    assert resources[("aws_lb", "this")]["load_balancer_type"] == "network"
    assert resources[("aws_lb", "this")]["internal"] is True
    assert resources[("aws_api_gateway_vpc_link", "this")]["target_arns"] == ["${aws_lb.this.arn}"]
    health = first(resources[("aws_lb_target_group", "this")]["health_check"])
    assert health["path"] == "/readyz"
    assert "/healthz" in tf_locals()["healthcheck_command"]
    assert "readonlyRootFilesystem = true" in task["container_definitions"]


def test_container_environment_follows_the_contract():
    """The container environment uses only contract names, listens on 0.0.0.0 and holds no secret."""
    environment = tf_locals()["container_environment"]
    names = set(re.findall(r"\b([A-Z][A-Z0-9_]{2,})\s*=", environment))
    assert names, environment
    assert names <= CONTRACT_ENV, f"not in the contract: {names - CONTRACT_ENV}"
    assert not names & SECRET_ENV, "secrets must come from Secrets Manager"
    assert 'UDF_HOST = "0.0.0.0"' in environment
    assert "UDF_STATE_URL" in environment


def test_token_comes_from_secrets_manager():
    """SIXSENSE_API_TOKEN is injected from a Secrets Manager secret, readable by the execution role."""
    secrets = tf_locals()["container_secrets"]
    assert "SIXSENSE_API_TOKEN = local.sixsense_token_secret_arn" in secrets
    local = tf_locals()
    assert "aws_secretsmanager_secret.sixsense_token" in local["sixsense_token_secret_arn"]
    assert "local.sixsense_token_secret_arn" in local["ecs_task_secret_arns"]
    policy = tf_resources()[("aws_iam_role_policy", "execution_secrets")]["policy"]
    assert "secretsmanager:GetSecretValue" in policy and "local.ecs_task_secret_arns" in policy
    assert tf_named("variable")["sixsense_api_token"]["sensitive"] is True


def test_state_outlives_the_task_by_default():
    """ElastiCache by default, even for one task (the cache of paid answers survives task
    replacement); a replication group with snapshots, or Serverless Valkey in cluster mode."""
    local = tf_locals()
    assert local["use_redis"] == "${coalesce(var.create_redis, true)}"
    assert "var.autoscaling.max_capacity" in local["max_tasks"] and "var.desired_count" in local["max_tasks"]
    assert "UDF_STATE_URL = aws_secretsmanager_secret.state_url[0].arn" in local["container_secrets"]
    variables = tf_named("variable")
    assert variables["create_redis"]["default"] is None
    assert variables["state_store"]["default"] == "replication_group"
    resources = tf_resources()
    redis = resources[("aws_elasticache_replication_group", "this")]
    assert redis["count"] == "${local.use_replication_group ? 1 : 0}"
    assert redis["transit_encryption_enabled"] is True and redis["at_rest_encryption_enabled"] is True
    assert redis["snapshot_retention_limit"] == "${var.redis.snapshot_retention_limit}"
    serverless = resources[("aws_elasticache_serverless_cache", "this")]
    assert serverless["count"] == "${local.use_serverless ? 1 : 0}" and serverless["engine"] == "valkey"
    url = local["state_url"]
    assert "rediss+cluster://" in url and "rediss://" in url
    secret = resources[("aws_secretsmanager_secret_version", "state_url")]["secret_string"]
    assert secret == "${local.state_url}"
    task = resources[("aws_ecs_task_definition", "this")]
    assert any(
        "local.use_redis || local.max_tasks == 1" in p["condition"]
        for p in first(task["lifecycle"])["precondition"]
    )


def test_readme_shows_the_monthly_cost_of_the_default():
    readme = (TF_ROOT / "aws" / "README.md").read_text()
    assert "$23.36" in readme and "cache.t4g.micro" in readme


def test_autoscaling_on_cpu_and_requests():
    """Target tracking on average CPU and on API requests per running task."""
    resources = tf_resources()
    cpu = first(
        resources[("aws_appautoscaling_policy", "cpu")]["target_tracking_scaling_policy_configuration"]
    )
    assert (
        first(cpu["predefined_metric_specification"])["predefined_metric_type"]
        == "ECSServiceAverageCPUUtilization"
    )
    requests = first(
        resources[("aws_appautoscaling_policy", "requests")]["target_tracking_scaling_policy_configuration"]
    )
    metrics = first(requests["customized_metric_specification"])["metrics"]
    names = {first(first(m["metric_stat"])["metric"])["metric_name"] for m in metrics if "metric_stat" in m}
    assert names == {"Count", "RunningTaskCount"}


def test_logs_are_kept_and_encrypted():
    """Every log group has a retention and a KMS key."""
    groups = [b for (t, _), b in tf_resources().items() if t == "aws_cloudwatch_log_group"]
    assert len(groups) >= 2
    for group in groups:
        assert group["retention_in_days"] == "${var.log_retention_days}"
        assert group["kms_key_id"] == "${local.kms_key_arn}"


def test_snowflake_resources_are_behind_the_toggle():
    """Every snowflake_* resource is created only when var.create_snowflake_objects is true."""
    found = {k: b for k, b in tf_resources().items() if k[0].startswith("snowflake_")}
    assert {k[0] for k in found} == {"snowflake_api_integration", "snowflake_external_function"}
    for (rtype, name), body in found.items():
        toggle = body.get("count") or body.get("for_each")
        assert toggle and "var.create_snowflake_objects" in toggle, f"{rtype}.{name} is not behind the toggle"
    assert tf_named("variable")["create_snowflake_objects"]["default"] is False
    functions = tf_locals()["snowflake_functions"]
    assert "setproduct(keys(local.routes), keys(local.snowflake_signatures))" in functions
    assert set(tf_locals()["snowflake_signatures"]) == {"short", "fields", "object"}


def test_readme_documents_every_variable_and_output():
    """terraform/aws/README.md names every variable and output, and explains the two-step apply."""
    readme = (TF_MODULE / "README.md").read_text()
    for kind in ("variable", "output"):
        for name in tf_named(kind):
            assert f"`{name}`" in readme, f"README.md does not document {kind} {name}"
    assert "DESCRIBE INTEGRATION" in readme and "step 2" in readme.lower()
