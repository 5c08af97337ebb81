"""docs/deploy.md: every output, variable and CLI option the guide tells users to use exists."""

from __future__ import annotations

import re

import pytest

from .helpers import REPO, TF_EXAMPLE, tf_named

GUIDE = REPO / "docs" / "deploy.md"


def _guide() -> str:
    return GUIDE.read_text()


def test_guide_covers_both_paths_and_the_trust_steps():
    """The guide walks through AWS and SPCS and names both values DESCRIBE INTEGRATION gives."""
    text = _guide()
    for needle in (
        "## AWS",
        "## Snowpark Container Services",
        "DESCRIBE INTEGRATION",
        "API_AWS_IAM_USER_ARN",
        "API_AWS_EXTERNAL_ID",
        "--platform linux/amd64",
        "udf-service sql render --target aws",
        "udf-service sql render --target spcs",
    ):
        assert needle in text, f"docs/deploy.md lost {needle!r}"


def test_terraform_outputs_in_the_guide_exist():
    """Every `terraform output NAME` in the guide is an output of examples/minimal."""
    used = set(re.findall(r"terraform output (?:-raw )?(\w+)", _guide()))
    assert {"gateway_url", "snowflake_role_arn"} <= used
    missing = used - set(tf_named("output", TF_EXAMPLE))
    assert not missing, f"docs/deploy.md uses outputs examples/minimal lacks: {sorted(missing)}"


def test_tfvars_in_the_guide_are_variables():
    """Every `name = value` line of an hcl block in the guide is a variable of examples/minimal."""
    blocks = re.findall(r"```hcl\n(.*?)```", _guide(), re.S)
    blocks += re.findall(r"cat > terraform\.tfvars <<'EOF'\n(.*?)EOF", _guide(), re.S)
    names = {m for block in blocks for m in re.findall(r"^#?\s*(\w+)\s*=", block, re.M)}
    assert {"region", "image_tag", "snowflake_iam_user_arn", "snowflake_external_id"} <= names
    missing = names - set(tf_named("variable", TF_EXAMPLE))
    assert not missing, f"docs/deploy.md sets variables examples/minimal lacks: {sorted(missing)}"


def test_sql_render_vars_in_the_guide_exist():
    """Every `--var NAME=` in the guide is a variable `udf-service sql render` knows."""
    warehouse_sql = pytest.importorskip("udf_service.warehouse_sql")
    used = set(re.findall(r"--var (\w+)=", _guide()))
    assert {"gateway_url", "aws_role_arn", "caller_role", "image", "compute_pool"} <= used
    missing = used - set(warehouse_sql.VARIABLES)
    assert not missing, f"docs/deploy.md passes unknown --var: {sorted(missing)}"
