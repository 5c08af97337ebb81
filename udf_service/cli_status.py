"""`udf-service status`: the figures of `/usage` from a service running anywhere, as a table.

Reads `GET <url>/usage` (sending `UDF_AUTH_HEADER: UDF_AUTH_SECRET` when both are set, as the
warehouse does) and prints the same figures the `/status` page shows; `--json` prints the
document as it came, for scripts.
"""

from __future__ import annotations

import os
from typing import Any

import click
import httpx
import orjson

from .display import duration

DEFAULT_URL = "http://127.0.0.1:8080"


def fetch_usage(url: str, timeout_s: float = 10.0) -> dict[str, Any]:
    """The service's `/usage` document; ClickException with a readable reason when it fails."""
    headers = {}
    header, secret = os.environ.get("UDF_AUTH_HEADER"), os.environ.get("UDF_AUTH_SECRET")
    if header and secret:
        headers[header] = secret
    try:
        response = httpx.get(f"{url.rstrip('/')}/usage", headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach {url}: {exc}") from None
    if response.status_code != 200:
        reason = (
            response.json().get("error", "")
            if response.headers.get("content-type", "").startswith("application/json")
            else response.text[:200]
        )
        raise click.ClickException(f"{url}/usage answered {response.status_code}: {reason}")
    return response.json()


def _n(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def _circuit(circuit: dict[str, Any]) -> str:
    return f"OPEN, retry in {duration(circuit['retry_in_s'])}" if circuit["open"] else "closed"


def render(u: dict[str, Any]) -> str:
    """The human-readable table: one figure per line, grouped as on the page."""
    queue, cache, cpm = u["queue"], u["cache"], u["calls_per_minute"]
    budget = "none set"
    if u["daily_call_budget"] is not None:
        budget = f"{_n(u['daily_budget_left'])} of {_n(u['daily_call_budget'])} calls left today"
    ratio = "-" if cache["hit_ratio_today"] is None else f"{cache['hit_ratio_today'] * 100:.1f} %"
    rows = [
        ("service", f"sixsense-udf {u['version']} at {u['generated_at']}"),
        ("calls / min", f"{_n(cpm['current'])} now (limit {_n(cpm['limit'])}); "
                        f"last hour {sum(cpm['last_hour']):,}"),
        ("queue", f"{_n(queue['depth'])} leads ({_n(queue['interactive'])} waiting, "
                  f"{_n(queue['background'])} background)"),
        ("queue ETA", f"{duration(queue['eta_s'])} at {_n(queue['rate_per_minute'])}/min; "
                      f"{duration(queue['eta_at_limit_s'])} at the limit"),
        ("calls today", f"{_n(u['calls_today'])} (matched leads {_n(u['matched_today'])})"),
        ("calls this month", f"{_n(u['calls_this_month'])} (matched leads {_n(u['matched_this_month'])})"),
        ("daily budget", budget),
        ("402 circuit", _circuit(u["quota_circuit"])),
        ("token circuit", _circuit(u["auth_circuit"])),
        ("cache", f"{_n(cache['entries'])} entries; hit ratio today {ratio}"),
        ("async jobs", _n(u["jobs_running"])),
    ]  # fmt: skip
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    lines.append("last errors" + ("" if u["errors"] else ": none in the last 24 h"))
    for error in u["errors"]:
        lines.append(f"  {error['class']:<22} {error['count_today']:>6} today, last {error['last_at']}: "
                     f"{error['last_message']}")  # fmt: skip
    return "\n".join(lines)


@click.command()
@click.option(
    "--url",
    envvar="UDF_STATUS_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="The service's base URL (env UDF_STATUS_URL).",
)
@click.option("--json", "as_json", is_flag=True, help="Print /usage as JSON, for scripts.")
def status(url: str, as_json: bool) -> None:
    """Show a running service's quota, queue and ETA, spend, circuits, cache and last errors."""
    document = fetch_usage(url)
    click.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() if as_json else render(document))
