"""Stand-ins for dbt names, used only by sqlfluff when it lints this package (sql/dbt/.sqlfluff).

sqlfluff's jinja templater cannot run dbt: its own `var()` stub returns a string, so the
models' list variables would be iterated letter by letter, and it knows nothing of this
package's macros. These stubs return the package defaults and representative SQL; the real
macros are exercised by `dbt parse` / `dbt compile` in tests/sql/test_dbt.py.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

_DEFAULTS: dict[str, Any] = {
    "sixsense_leads": "crm.leads",
    "sixsense_function": "sixsense.udf.people_full",
    "sixsense_route": "full",
    "sixsense_lead_fields": [],
    "sixsense_retry_statuses": ["pending", "error", "quota_exhausted", "budget_exhausted"],
    "sixsense_stale_after_days": 30,
}


def var(name: str, default: Any = None) -> Any:
    """dbt's var(): the package default from dbt_project.yml."""
    return _DEFAULTS.get(name, default)


def _people_full(email: str | None = None, country: str | None = None, **_: Any) -> str:
    return f"sixsense.udf.people_full({email}, {country or 'null'})"


def _lead_key(email: str, country: str) -> str:
    return f"md5(lower(trim(coalesce({email}, ''))) || '|' || upper(trim(coalesce({country}, ''))))"


sixsense_udf = SimpleNamespace(people_full=_people_full, lead_key=_lead_key)
