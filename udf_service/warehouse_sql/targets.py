"""Targets: one way to deploy (its scripts in order, the variables they read) and the template context."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..leads import FIELDS
from .variables import VARIABLES, Variable, VariableError

#: The service reads row arguments positionally in this order (DESIGN.md, "Input rows"): the lead
#: model's own list, so a function's arguments can never drift from what the service reads.
LEAD_FIELDS: tuple[str, ...] = FIELDS

#: The overloads every function gets: (email, country), all ten fields, one OBJECT.
SIGNATURES: tuple[tuple[tuple[str, str], ...], ...] = (
    tuple((name, "varchar") for name in LEAD_FIELDS[:2]),
    tuple((name, "varchar") for name in LEAD_FIELDS),
    (("lead", "object"),),
)

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
    context["signature_labels"] = [_label(sig) for sig in SIGNATURES]  # the comment above each overload
    return context


def _label(signature: tuple[tuple[str, str], ...]) -> str:
    """An overload as its comment names it: ``email, country, website, ..., industry``, ``lead object``."""
    names = [name if kind == "varchar" else f"{name} {kind}" for name, kind in signature]
    return ", ".join([*names[:3], "...", names[-1]] if len(names) > 4 else names)


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
