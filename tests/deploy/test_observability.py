"""The Grafana dashboard and the Prometheus alert rules in deploy/: they load, every panel has a
datasource and a query, promtool accepts the rules and every query, and none shows a secret.
(That every metric they name exists in a live `/metrics` is in tests/test_status_live.py.)"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "sixsense-udf.json"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
METRIC = re.compile(r"\bsixsense_[a-z_]+\b")
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def dashboard_queries() -> list[str]:
    return [target["expr"] for panel in dashboard()["panels"] for target in panel["targets"]]


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def referenced_metrics() -> set[str]:
    """Every metric name the dashboard and the alert rules query."""
    expressions = dashboard_queries() + [rule["expr"] for rule in alert_rules()]
    return {name for expr in expressions for name in METRIC.findall(expr)}


def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.skip("promtool not installed (Debian package prometheus; .ci/run installs it)")
    return found


def test_dashboard_has_a_prometheus_datasource_variable() -> None:
    """The dashboard is importable anywhere: its datasource is a variable of type prometheus."""
    document = dashboard()
    variables = {v["name"]: v for v in document["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert document["uid"] and document["title"] and document["schemaVersion"] >= 36


def test_every_panel_has_a_datasource_and_a_query() -> None:
    """Each panel (and each of its targets) uses the variable and has a non-empty PromQL query."""
    panels = dashboard()["panels"]
    assert len(panels) >= 10
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}" and target["expr"].strip(), panel["title"]
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"])


def test_dashboard_covers_what_the_issue_asks() -> None:
    """Quota use, 429s and retries, calls and matched leads, queue depth and ETA, cache hit ratio,
    batch latency by route, errors by class: each is queried by some panel."""
    queries = " ".join(dashboard_queries())
    for needed in [
        "sixsense_rate_limit_per_minute",
        'status="429"',
        "sixsense_upstream_retries_total",
        "sixsense_matched_leads_total",
        "sixsense_refill_queue_depth",
        "sixsense_refill_queue_eta_seconds",
        'result="hit"',
        "by (le, route)",
        "by (error_class)",
    ]:
        assert needed in queries, needed


@pytest.mark.e2e  # runs promtool
def test_alert_rules_pass_promtool() -> None:
    """`promtool check rules` accepts deploy/prometheus/alerts.yml."""
    done = subprocess.run(
        [promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 7 rules found" in done.stdout


def test_alerts_cover_what_the_issue_asks() -> None:
    """Circuit open, budget spent, sustained 429s and 5xx, queue ETA, state down, no successful batch."""
    names = {rule["alert"] for rule in alert_rules()}
    assert names == {
        "SixsenseQuotaCircuitOpen",
        "SixsenseDailyBudgetSpent",
        "SixsenseUpstream429Sustained",
        "SixsenseUpstream5xxSustained",
        "SixsenseRefillQueueEtaHigh",
        "SixsenseStateBackendUnavailable",
        "SixsenseNoSuccessfulBatch",
    }
    for rule in alert_rules():
        assert rule["for"] and rule["labels"]["severity"] and rule["annotations"]["summary"], rule["alert"]


@pytest.mark.e2e  # runs promtool
def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """Every panel query parses: promtool checks them as recording rules."""
    rules = [{"record": f"dashboard:query_{i}", "expr": expr} for i, expr in enumerate(dashboard_queries())]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_email_or_secret_in_dashboard_or_alerts() -> None:
    """Neither file holds an address, a token or a label that could carry one (email, token)."""
    for path in (DASHBOARD, ALERTS):
        text = path.read_text()
        assert not re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", text), path
        assert not re.search(r"(?i)\b(email|token|secret)\s*=", text), path
