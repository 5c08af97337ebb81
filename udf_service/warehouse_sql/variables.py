"""The variable catalogue of `udf-service sql`: every template variable, checked and quoted by kind.

A value is checked once, for its kind (an identifier must be an identifier, a string is escaped
for a SQL literal, a URL must be https), and a missing or bad one is an error that names the
``--var name=value`` to pass. Which target reads which variable is in `targets.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import UdfError


class WarehouseSqlError(UdfError):
    """Rendering or applying the warehouse SQL failed."""


class VariableError(WarehouseSqlError):
    """A template variable is missing, unknown or has a value of the wrong kind."""


REQUIRED = None  # a Variable whose default is REQUIRED must be given

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,254}$")
_HTTPS_URL = re.compile(r"^https://[^\s'\"\\$]+$")
_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
# HEADERS names: visible ASCII except space and ( ) , / : ; < > = " ? @ [ ] \ { } _
# (protocols.md 1.4, from CREATE EXTERNAL FUNCTION).
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.0-9A-Z^`a-z|~]+$")


def _sql_literal(value: str) -> str:
    """Escape a value for the inside of a single-quoted Snowflake string literal."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


@dataclass(frozen=True)
class Variable:
    """One template variable: how it is checked and quoted, its default, where it comes from."""

    name: str
    help: str
    kind: str = "identifier"  # identifier | text | url | arn | integer | choice | header | spec
    default: str | None = REQUIRED
    env: str | None = None  # environment variable used when --var does not give it
    choices: tuple[str, ...] = ()
    example: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def clean(self, raw: str) -> str:
        """Check ``raw`` for this variable's kind and return it quoted for its place in SQL."""
        value = raw.strip()
        if value == "":
            if self.required:
                raise VariableError(f"{self.name} must not be empty; {self._how()}")
            return ""
        check = getattr(self, f"_clean_{self.kind}")
        return check(value)

    def _how(self) -> str:
        example = self.example or "VALUE"
        return f"pass it as --var {self.name}={example}"

    def _bad(self, value: str, expected: str) -> VariableError:
        return VariableError(f"{self.name}={value!r} is not {expected}; {self._how()}")

    def _clean_identifier(self, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise self._bad(value, "a plain Snowflake identifier (letters, digits, _ and $)")
        return value

    def _clean_text(self, value: str) -> str:
        if "\n" in value or "\r" in value:
            raise self._bad(value, "a one-line value")
        return _sql_literal(value)

    def _clean_url(self, value: str) -> str:
        if not _HTTPS_URL.match(value):
            raise self._bad(value, "an https:// URL without quotes or spaces")
        return value.rstrip("/")

    def _clean_arn(self, value: str) -> str:
        if not _ARN.match(value):
            raise self._bad(value, "an IAM role ARN (arn:aws:iam::<12 digits>:role/<name>)")
        return value

    def _clean_integer(self, value: str) -> str:
        if not value.isdigit() or int(value) < 1:
            raise self._bad(value, "a positive whole number")
        return str(int(value))

    def _clean_choice(self, value: str) -> str:
        if value.lower() not in self.choices:
            raise self._bad(value, "one of " + ", ".join(self.choices))
        return value.lower()

    def _clean_header(self, value: str) -> str:
        if not _HEADER_NAME.match(value) or value.lower().startswith("sf-"):
            raise self._bad(value, "a header name of letters, digits and - (no _, no sf- prefix)")
        return value.lower()

    def _clean_spec(self, value: str) -> str:
        # Goes inside a double-quoted YAML string inside $$...$$: keep it plain.
        if any(bad in value for bad in ('"', "\\", "$$", "\n", "\r")):
            raise self._bad(value, 'a one-line value without ", \\ or $$')
        return value


def _v(name: str, help: str, **kwargs: Any) -> Variable:
    return Variable(name=name, help=help, **kwargs)


VARIABLES: dict[str, Variable] = {
    v.name: v
    for v in (
        # every target
        _v("database", "database for the functions, table and views", default="sixsense"),
        _v("schema", "schema for the functions, table and views", default="udf"),
        _v(
            "owner_role",
            "role that owns the functions, table, views (and the SPCS service); "
            "must not be ACCOUNTADMIN on SPCS",
            default="sysadmin",
        ),
        _v(
            "caller_role",
            "role that may call the functions and read the views (granted USAGE and SELECT)",
            example="analyst",
        ),
        _v("enriched_table", "table of people_full values that the views read", default="sixsense_enriched"),
        # functions (external and SPCS)
        _v(
            "function_name",
            "base name of the functions (<name>, <name>_cached, <name>_estimate)",
            default="people_full",
        ),
        _v(
            "max_batch_rows",
            "MAX_BATCH_ROWS of <function_name> (the route that waits on 6sense)",
            kind="integer",
            default="100",
        ),
        _v(
            "max_batch_rows_cached",
            "MAX_BATCH_ROWS of the _cached and _estimate functions",
            kind="integer",
            default="1000",
        ),
        _v(
            "admin_role", "role that may create integrations (API or external access)", default="accountadmin"
        ),
        # external functions through a cloud API gateway
        _v("integration_name", "name of the API integration", default="sixsense_api"),
        _v(
            "gateway_url",
            "base URL of the API gateway stage; the functions call "
            "<gateway_url>/snowflake/people/full[/cached|/estimate]",
            kind="url",
            example="https://abc123.execute-api.us-east-1.amazonaws.com/prod",
        ),
        _v(
            "aws_role_arn",
            "IAM role Snowflake assumes to call API Gateway (terraform/aws output snowflake_role_arn)",
            kind="arn",
            example="arn:aws:iam::123456789012:role/sixsense-udf",
        ),
        _v(
            "azure_tenant_id",
            "Azure AD (Entra ID) tenant of the API Management instance",
            kind="text",
            example="00000000-0000-0000-0000-000000000000",
        ),
        _v(
            "azure_app_id",
            "application (client) id of the Azure AD app that protects the APIM API",
            kind="text",
            example="00000000-0000-0000-0000-000000000000",
        ),
        _v(
            "google_audience",
            "managed service name of the Google API Gateway API (JWT audience)",
            kind="text",
            example="sixsense-udf-abc123.apigateway.my-project.cloud.goog",
        ),
        _v(
            "api_key",
            "optional gateway API key (AWS usage-plan key, APIM subscription key)",
            kind="text",
            default="",
        ),
        _v(
            "auth_header",
            "optional shared-secret header name, without sf-custom-; Snowflake sends "
            "it as sf-custom-<name>, so run the service with UDF_AUTH_HEADER=sf-custom-<name>",
            kind="header",
            default="",
            example="sixsense-auth",
        ),
        _v(
            "auth_secret",
            "value of that header (the service's UDF_AUTH_SECRET)",
            kind="text",
            default="",
            env="UDF_AUTH_SECRET",
        ),
        _v(
            "compression",
            "COMPRESSION of the external functions",
            kind="choice",
            choices=("auto", "gzip", "deflate", "none"),
            default="auto",
        ),
        # Snowpark Container Services
        _v(
            "compute_pool",
            "compute pool the service runs in (docs/snowflake-setup.md creates one)",
            example="sixsense_pool",
        ),
        _v(
            "image",
            "image path in a Snowflake image repository",
            kind="spec",
            example="/sixsense/udf/images/sixsense-udf:0.1.0",
        ),
        _v(
            "sixsense_api_token",
            "the 6sense API token, stored in a SECRET",
            kind="text",
            env="SIXSENSE_API_TOKEN",
            example="TOKEN",
        ),
        _v("service_name", "name of the SPCS service", default="sixsense_udf_service"),
        _v("endpoint_name", "name of the service's HTTP endpoint (port 8080)", default="api"),
        _v("secret_name", "name of the SECRET holding the 6sense token", default="sixsense_api_token"),
        _v("network_rule_name", "name of the egress NETWORK RULE", default="sixsense_egress"),
        _v("eai_name", "name of the EXTERNAL ACCESS INTEGRATION", default="sixsense_egress_access"),
        _v(
            "upstream_host", "6sense API host the service may reach", kind="spec", default="scribe.6sense.com"
        ),
        _v(
            "state_url",
            "UDF_STATE_URL for the container; empty keeps its embedded SQLite, a "
            "redis:// URL is needed for more than one instance",
            kind="spec",
            default="",
        ),
        _v(
            "rate_limit",
            "SIXSENSE_RATE_LIMIT for the container, e.g. 100/minute; empty keeps the service default",
            kind="spec",
            default="",
        ),
        _v(
            "default_country",
            "SIXSENSE_DEFAULT_COUNTRY for the container; empty: none",
            kind="spec",
            default="",
        ),
        _v(
            "state_volume_size",
            "size of the SPCS block storage volume that keeps the SQLite state (and the paid "
            "answers) across restarts and upgrades, e.g. 10Gi; mounted unless state_url is Redis",
            kind="spec",
            default="10Gi",
        ),
        _v("min_instances", "MIN_INSTANCES of the service", kind="integer", default="1"),
        _v("max_instances", "MAX_INSTANCES of the service", kind="integer", default="1"),
        # the backfill task (target backfill)
        _v(
            "backfill_warehouse",
            "warehouse the backfill task runs on (an XS is plenty: it waits on nothing)",
            example="compute_wh",
        ),
        _v(
            "backfill_every_minutes",
            "minutes between backfill steps (each collects what the service fetched meanwhile)",
            kind="integer",
            default="5",
        ),
        _v(
            "backfill_batch_rows",
            "pending rows re-asked per backfill step",
            kind="integer",
            default="10000",
        ),
        _v(
            "backfill_task",
            "name of the backfill TASK (its procedure is <backfill_task>_step)",
            default="sixsense_backfill",
        ),
        _v(
            "backfill_log_table",
            "run log of the backfill; its backfill_complete row is the completion signal",
            default="sixsense_backfill_runs",
        ),
    )
}
