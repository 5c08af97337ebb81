"""Render and apply the Snowflake SQL that registers the sixsense-udf functions and views.

What: the scripts under ``sql/`` are Jinja templates, one Snowflake object per file. A *target*
(``aws``, ``aws-private``, ``azure``, ``gcp``, ``spcs``, ``views``, ``backfill``) is an ordered list of those
scripts plus the variables they read. :func:`render` fills them in, :func:`split_statements` cuts
a script into statements (not fooled by ``$$...$$`` bodies, quotes or comments), and
:func:`apply` runs the statements one by one through snowflake-connector-python, stopping at the
first error with Snowflake's own message.

Why a library and not a shell script of ``sed`` calls: every value is checked and quoted once,
by kind (an identifier must be an identifier, a string is escaped for a SQL literal, a URL must
be https), a missing value is an error that names the ``--var name=value`` to pass, and the very
same rendering is what users paste, what ``udf-service sql apply`` runs and what the tests run
against fakesnow.

Where: the templates live in ``sql/`` at the top of the repository and ship in the wheel as
``udf_service/sql``; :func:`udf_service.templates.sql_dir` finds them (``UDF_SQL_DIR`` overrides
it). The CLI wrapper is ``udf_service/cli_sql.py``; the walkthrough for users is
``docs/snowflake-setup.md``.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from .errors import UdfError
from .templates import sql_dir

__all__ = [
    "LEAD_FIELDS",
    "TARGETS",
    "VARIABLES",
    "ApplyError",
    "Executed",
    "Script",
    "Statement",
    "Target",
    "Variable",
    "VariableError",
    "WarehouseSqlError",
    "apply",
    "connect_params_from_env",
    "iter_statements",
    "open_connection",
    "render",
    "render_text",
    "resolve_variables",
    "split_statements",
    "sql_dir",
    "target_variables",
]

#: The service reads row arguments positionally in this order (DESIGN.md, "Input rows").
LEAD_FIELDS = (
    "email",
    "country",
    "website",
    "company",
    "title",
    "leadsource",
    "firstname",
    "lastname",
    "role",
    "industry",
)

#: The overloads every function gets: (email, country), all ten fields, one OBJECT.
SIGNATURES: tuple[tuple[tuple[str, str], ...], ...] = (
    tuple((name, "varchar") for name in LEAD_FIELDS[:2]),
    tuple((name, "varchar") for name in LEAD_FIELDS),
    (("lead", "object"),),
)


# --- errors -------------------------------------------------------------------------------------


class WarehouseSqlError(UdfError):
    """Rendering or applying the warehouse SQL failed."""


class VariableError(WarehouseSqlError):
    """A template variable is missing, unknown or has a value of the wrong kind."""


class ApplyError(WarehouseSqlError):
    """A statement failed in Snowflake; carries where it was and Snowflake's message."""

    def __init__(
        self,
        statement: Statement,
        total: int,
        message: str,
        errno: int | None = None,
        sqlstate: str | None = None,
    ) -> None:
        self.statement = statement
        self.total = total
        self.message = message
        self.errno = errno
        self.sqlstate = sqlstate
        super().__init__(
            f"statement {statement.number} of {total} failed "
            f"({statement.script}, line {statement.line}): {message}\n"
            f"    {statement.excerpt()}\n"
            f"{statement.number - 1} statement(s) before it ran; none after it did"
        )


# --- variables ----------------------------------------------------------------------------------

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

_COMMON = ("database", "schema", "owner_role", "caller_role", "enriched_table")
_FUNCTIONS = ("function_name", "max_batch_rows", "max_batch_rows_cached", "admin_role")
_EXTERNAL = ("integration_name", "gateway_url", "api_key", "auth_header", "auth_secret", "compression")
_SPCS = (
    "compute_pool",
    "image",
    "sixsense_api_token",
    "service_name",
    "endpoint_name",
    "secret_name",
    "network_rule_name",
    "eai_name",
    "upstream_host",
    "state_url",
    "rate_limit",
    "default_country",
    "state_volume_size",
    "min_instances",
    "max_instances",
)

_BACKFILL = (
    "backfill_warehouse",
    "backfill_every_minutes",
    "backfill_batch_rows",
    "backfill_task",
    "backfill_log_table",
)
_VIEWS = (
    "views/sixsense_enriched.sql",
    "views/sixsense_people.sql",
    "views/sixsense_scores.sql",
    "views/sixsense_segments.sql",
    "views/grants.sql",
)
_SETUP = ("common/database.sql", "common/schema.sql")
_EXTERNAL_FUNCTIONS = (
    "external/people_full.sql",
    "external/people_full_cached.sql",
    "external/people_full_estimate.sql",
    "common/function_grants.sql",
)


@dataclass(frozen=True)
class Target:
    """One way to deploy: its scripts in order, the variables they read, values it fixes."""

    name: str
    description: str
    scripts: tuple[str, ...]
    variables: tuple[str, ...]
    fixed: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping[str, str] = field(default_factory=dict)


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target(
            "aws",
            "external functions through a regional Amazon API Gateway REST API",
            (*_SETUP, "external/api_integration_aws.sql", *_EXTERNAL_FUNCTIONS, *_VIEWS),
            (*_COMMON, *_FUNCTIONS, *_EXTERNAL, "aws_role_arn"),
            fixed={"api_provider": "aws_api_gateway"},
        ),
        Target(
            "aws-private",
            "external functions through a private Amazon API Gateway REST API",
            (*_SETUP, "external/api_integration_aws.sql", *_EXTERNAL_FUNCTIONS, *_VIEWS),
            (*_COMMON, *_FUNCTIONS, *_EXTERNAL, "aws_role_arn"),
            fixed={"api_provider": "aws_private_api_gateway"},
        ),
        Target(
            "azure",
            "external functions through Azure API Management",
            (*_SETUP, "external/api_integration_azure.sql", *_EXTERNAL_FUNCTIONS, *_VIEWS),
            (*_COMMON, *_FUNCTIONS, *_EXTERNAL, "azure_tenant_id", "azure_app_id"),
            defaults={"compression": "none"},
        ),
        Target(
            "gcp",
            "external functions through Google Cloud API Gateway",
            (*_SETUP, "external/api_integration_gcp.sql", *_EXTERNAL_FUNCTIONS, *_VIEWS),
            (*_COMMON, *_FUNCTIONS, *_EXTERNAL, "google_audience"),
            defaults={"compression": "none"},
        ),
        Target(
            "spcs",
            "service functions on a Snowpark Container Services service",
            (
                *_SETUP,
                "spcs/network_rule.sql",
                "spcs/secret.sql",
                "spcs/external_access_integration.sql",
                "spcs/service.sql",
                "spcs/people_full.sql",
                "spcs/people_full_cached.sql",
                "spcs/people_full_estimate.sql",
                "common/function_grants.sql",
                *_VIEWS,
            ),
            (*_COMMON, *_FUNCTIONS, *_SPCS),
        ),
        Target(
            "backfill",
            "a TASK that re-asks pending rows through <function_name>_cached until none are left",
            (
                *_SETUP,
                "views/sixsense_enriched.sql",
                "backfill/backfill_runs.sql",
                "backfill/backfill_procedure.sql",
                "backfill/backfill_task.sql",
                "backfill/grants.sql",
            ),
            (*_COMMON, "function_name", "admin_role", *_BACKFILL),
        ),
        Target(
            "views",
            "only the enrichment table and the three views (functions exist already)",
            (*_SETUP, *_VIEWS),
            _COMMON,
        ),
    )
}


def _target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise VariableError(f"unknown target {name!r}; choose one of {', '.join(TARGETS)}") from None


def target_variables(target: str) -> list[tuple[Variable, str | None]]:
    """The variables of ``target`` with the default that applies there (None: required)."""
    spec = _target(target)
    return [(VARIABLES[n], spec.defaults.get(n, VARIABLES[n].default)) for n in spec.variables]


def resolve_variables(
    target: str, given: Mapping[str, str], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Check ``given`` against ``target`` and return the full template context.

    Raises :class:`VariableError` listing every missing variable with the ``--var`` to pass,
    or naming an unknown one (with the closest known name).
    """
    spec = _target(target)
    environ = os.environ if environ is None else environ
    for name in given:
        if name not in spec.variables:
            close = difflib.get_close_matches(name, spec.variables, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise VariableError(
                f"unknown variable {name!r} for target {target}{hint} (known: {', '.join(spec.variables)})"
            )
    context: dict[str, Any] = {}
    missing: list[Variable] = []
    for variable, default in target_variables(target):
        raw = given.get(variable.name)
        if raw is None and variable.env:
            raw = environ.get(variable.env) or None
        if raw is None:
            raw = default
        if raw is None:
            missing.append(variable)
            continue
        context[variable.name] = variable.clean(raw)
    if missing:
        lines = [
            f"  --var {v.name}={v.example or 'VALUE'}   ({v.help}"
            + (f"; or set {v.env}" if v.env else "")
            + ")"
            for v in missing
        ]
        raise VariableError(f"target {target} needs {len(missing)} more variable(s):\n" + "\n".join(lines))
    _cross_check(target, context)
    context.update(spec.fixed)
    context["target"] = target
    context["lead_fields"] = list(LEAD_FIELDS)
    # One argument per line in the rendered CREATE FUNCTION; types alone for GRANT ... ON FUNCTION.
    context["signatures"] = [
        "\n" + ",\n".join(f"    {name} {kind}" for name, kind in sig) + "\n" for sig in SIGNATURES
    ]
    context["signature_types"] = [", ".join(kind for _, kind in sig) for sig in SIGNATURES]
    return context


def _cross_check(target: str, context: Mapping[str, Any]) -> None:
    """Rules that tie two variables together."""
    if "auth_header" in context and bool(context["auth_header"]) != bool(context["auth_secret"]):
        raise VariableError(
            "auth_header and auth_secret go together: pass both (--var auth_header=NAME "
            "--var auth_secret=VALUE, or UDF_AUTH_SECRET in the environment) or neither"
        )
    if "max_instances" in context:
        if int(context["min_instances"]) > int(context["max_instances"]):
            raise VariableError("min_instances must not exceed max_instances")
        if int(context["max_instances"]) > 1 and not context["state_url"].startswith("redis"):
            raise VariableError(
                "max_instances > 1 needs a shared state backend: pass "
                "--var state_url=redis://HOST:6379/0 (each instance's own SQLite would pay "
                "6sense twice and break the shared rate limit)"
            )


# --- rendering ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Script:
    """One rendered template: its name relative to the SQL directory and its text."""

    name: str
    sql: str

    def statements(self, start: int = 1) -> list[Statement]:
        """This script's statements, numbered from ``start``."""
        return [
            Statement(number=start + i, script=self.name, line=line, sql=sql)
            for i, (line, sql) in enumerate(_split_with_lines(self.sql))
        ]


def _environment(directory: Path) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # SQL, not HTML: values are checked and quoted by kind instead
    )


def render(
    target: str,
    variables: Mapping[str, str] | None = None,
    *,
    directory: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[Script]:
    """Render every script of ``target`` with ``variables`` (plus defaults) filled in."""
    context = resolve_variables(target, variables or {}, environ)
    env = _environment(directory or sql_dir())
    scripts = []
    for name in TARGETS[target].scripts:
        try:
            text = env.get_template(name).render(context)
        except jinja2.UndefinedError as exc:
            # A template uses a variable the target does not declare: a bug in this module.
            raise VariableError(
                f"{name}: {exc.message}; pass it as --var NAME=VALUE and declare it for target {target}"
            ) from exc
        scripts.append(Script(name=name, sql=text.strip() + "\n"))
    return scripts


def render_text(scripts: Iterable[Script]) -> str:
    """All scripts as one SQL text, each under a banner naming its file."""
    parts = [f"-- ==== {s.name} " + "=" * max(3, 88 - len(s.name)) + "\n\n" + s.sql for s in scripts]
    return "\n".join(parts)


# --- splitting ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    """One statement of a rendered script, numbered across the whole run."""

    number: int
    script: str
    line: int
    sql: str

    def excerpt(self, width: int = 100) -> str:
        """The statement's start on one line, for messages."""
        flat = " ".join(self.sql.split())
        return flat if len(flat) <= width else flat[: width - 3] + "..."


_LEADING_NOISE = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|//[^\n]*(?:\n|\Z)|/\*.*?\*/)+", re.S)


def _split_with_lines(sql: str) -> list[tuple[int, str]]:
    """Split on top-level semicolons; return (1-based line, statement) pairs.

    Semicolons inside '...' and "..." (with \\ escapes and doubled quotes), $$...$$ bodies,
    -- and // line comments and /* */ block comments do not end a statement. Leading comments
    are dropped from each statement (Snowflake ignores them, and so both fakesnow's nop rules
    and error excerpts see the statement's first keyword); comment-only pieces disappear.
    """
    pieces: list[tuple[int, str]] = []
    start = 0
    i = 0
    n = len(sql)
    while i < n:
        ch = sql[i]
        two = sql[i : i + 2]
        if two == "$$":
            end = sql.find("$$", i + 2)
            i = n if end < 0 else end + 2
        elif ch in "'\"":
            i += 1
            while i < n:
                if sql[i] == "\\" and ch == "'":
                    i += 2
                elif sql[i] == ch:
                    if sql[i + 1 : i + 2] == ch:  # doubled quote
                        i += 2
                    else:
                        i += 1
                        break
                else:
                    i += 1
        elif two in ("--", "//"):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif two == "/*":
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif ch == ";":
            pieces.append((start, sql[start:i]))
            i += 1
            start = i
        else:
            i += 1
    pieces.append((start, sql[start:]))
    result = []
    for offset, piece in pieces:
        noise = _LEADING_NOISE.match(piece)
        skip = noise.end() if noise else 0
        body = piece[skip:].rstrip()
        if body:
            result.append((sql.count("\n", 0, offset + skip) + 1, body))
    return result


def split_statements(sql: str) -> list[str]:
    """The statements of ``sql``, without their ``;`` and leading comments."""
    return [statement for _, statement in _split_with_lines(sql)]


def iter_statements(scripts: Iterable[Script]) -> Iterator[Statement]:
    """Every statement of every script, numbered 1.. across all of them."""
    number = 1
    for script in scripts:
        for statement in script.statements(start=number):
            yield statement
            number += 1


# --- applying -----------------------------------------------------------------------------------

_ENV_PARAMS = {
    "SNOWFLAKE_ACCOUNT": "account",
    "SNOWFLAKE_USER": "user",
    "SNOWFLAKE_PASSWORD": "password",
    "SNOWFLAKE_ROLE": "role",
    "SNOWFLAKE_WAREHOUSE": "warehouse",
    "SNOWFLAKE_DATABASE": "database",
    "SNOWFLAKE_SCHEMA": "schema",
    "SNOWFLAKE_AUTHENTICATOR": "authenticator",
    "SNOWFLAKE_HOST": "host",
    "SNOWFLAKE_PRIVATE_KEY_FILE": "private_key_file",
    "SNOWFLAKE_PRIVATE_KEY_FILE_PWD": "private_key_file_pwd",
    "SNOWFLAKE_TOKEN": "token",
}


def connect_params_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """snowflake.connector.connect() keyword arguments from SNOWFLAKE_* environment variables."""
    environ = os.environ if environ is None else environ
    return {param: environ[name] for name, param in _ENV_PARAMS.items() if environ.get(name)}


def open_connection(connection_name: str | None = None) -> Any:
    """Open a Snowflake connection with the standard settings.

    ``connection_name`` picks a section of ``connections.toml``; otherwise SNOWFLAKE_ACCOUNT,
    SNOWFLAKE_USER, SNOWFLAKE_PASSWORD, ... from the environment; otherwise the connector's
    default connection (``connections.toml``, ``SNOWFLAKE_DEFAULT_CONNECTION_NAME``).
    """
    try:
        import snowflake.connector
    except ImportError as exc:  # the connector is the optional [snowflake] extra
        raise WarehouseSqlError(
            "sql apply needs snowflake-connector-python: pip install 'sixsense-udf[snowflake]'"
        ) from exc
    if connection_name:
        return snowflake.connector.connect(connection_name=connection_name)
    return snowflake.connector.connect(**connect_params_from_env())


def _database_errors() -> tuple[type[BaseException], ...]:
    try:
        from snowflake.connector.errors import Error
    except ImportError:
        return ()
    return (Error,)


@dataclass(frozen=True)
class Executed:
    """A statement that ran, with the rows it returned (DESCRIBE and SHOW return some)."""

    statement: Statement
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


def apply(
    scripts: Iterable[Script],
    *,
    connection: Any = None,
    connect: Callable[[], Any] | None = None,
    on_executed: Callable[[Executed], None] | None = None,
) -> list[Executed]:
    """Run every statement of ``scripts`` in order on one connection; stop at the first error.

    Pass an open ``connection`` (left open), or a ``connect`` callable (the connection it opens
    is closed at the end); with neither, :func:`open_connection` opens one from the standard
    settings.
    A failing statement raises :class:`ApplyError` with its number, script, line, an excerpt
    and Snowflake's message; the statements before it stay applied (DDL is not transactional).
    """
    statements = list(iter_statements(scripts))
    own = connection is None
    if own:
        connection = connect() if connect else open_connection()
    errors = _database_errors()
    done: list[Executed] = []
    try:
        for statement in statements:
            cursor = connection.cursor()
            try:
                cursor.execute(statement.sql)
                columns = tuple(d[0] for d in (cursor.description or ()))
                rows = tuple(tuple(r) for r in cursor.fetchall()) if columns else ()
            except errors as exc:
                raise ApplyError(
                    statement,
                    len(statements),
                    message=getattr(exc, "msg", None) or str(exc),
                    errno=getattr(exc, "errno", None),
                    sqlstate=getattr(exc, "sqlstate", None),
                ) from exc
            finally:
                cursor.close()
            executed = Executed(statement, columns, rows)
            done.append(executed)
            if on_executed:
                on_executed(executed)
    finally:
        if own:
            connection.close()
    return done
