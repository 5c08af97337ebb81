"""Secrets and PII in the service's logs (issue 7, item 6), read from a real run at UDF_LOG_LEVEL=DEBUG.

One mixed workload runs through a live service with the shared secret on: normal, repeated and invalid
rows, upstream 5xx/429/reset/malformed/read-timeout faults with their retries, a persistent failure,
a 400, an upstream 401 (the batch fails 424), a 402 (the quota circuit opens), asynchronous batches
and polls, the cached and estimate routes, 401s from the shared secret, malformed requests that carry
emails, and a locked state file (503). Then the log file is read as the operator would see it.
"""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from tests.leadgen import make_rows
from udf_service.leads import email_hash
from udf_service.testing.processes import TOKEN, start_service, start_simulator
from udf_service.testing.snowflake import ExternalFunctionError, SnowflakeCaller

pytestmark = pytest.mark.e2e  # gunicorn's own lines are part of what is read

SECRET = "s3cret-7f1e9a0c4b2d4e6f8a1b3c5d7e9f0a2b"
AUTH = {"UDF_AUTH_HEADER": "sf-custom-udf-secret", "UDF_AUTH_SECRET": SECRET}
EMAIL_LIKE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
FIELDS = {"ts", "level", "logger", "event"}
BATCH_FIELDS = {"route", "http_status", "seconds", "batch_id", "query_id", "rows", "statuses"}
FAULTY = {
    "retry503@company11.com": {"status": 503, "times": 2},
    "dead503@company12.com": {"status": 503, "times": 99},
    "retry429@company13.com": {"status": 429, "times": 2},
    "reset@company14.com": {"kind": "reset", "times": 1},
    "malformed@company15.com": {"kind": "malformed", "times": 1},
    "slow@company16.com": {"kind": "pass", "delay_ms": 1500, "times": 1},
    "rejected@company17.com": {"status": 400, "times": 99},
}
TOKEN_REJECTED = "tokenfail@company18.com"
OUT_OF_CREDITS = "broke@company19.com"


def _workload(tmp_path: Path) -> tuple[str, set[str]]:
    """Run everything once; return the service log and every email address the workload sent."""
    simulator = start_simulator()
    path = tmp_path / "state.db"
    env = {**AUTH, "UDF_SYNC_BUDGET_S": "1.5", "SIXSENSE_READ_TIMEOUT_S": "0.6", "UDF_LOG_LEVEL": "DEBUG"}
    env["UDF_QUOTA_COOLDOWN_S"] = "1"  # the 402 circuit closes before the token step below
    service = start_service(simulator.url, f"sqlite:///{path}", tmp_path / "service.log", env=env)
    emails: set[str] = set()
    try:
        rules = [{"match": email, **rule} for email, rule in FAULTY.items()]
        rules += [{"match": TOKEN_REJECTED, "status": 401, "times": 99}]
        rules += [{"match": OUT_OF_CREDITS, "status": 402, "times": 99}]
        simulator.faults(rules, latency_ms=60)
        secret = {"udf-secret": SECRET}
        rows = (
            make_rows(60, seed=61) + [[email, "US"] for email in FAULTY] + [[" Retry503@Company11.com", "us"]]
        )
        emails |= {str(r[0]) for r in rows if r[0]} | set(FAULTY)

        SnowflakeCaller(service.function_url, max_batch_rows=40, parallel=4, custom_headers=secret).query(
            rows
        )
        SnowflakeCaller(f"{service.function_url}/cached", custom_headers=secret).query(rows[:60])
        SnowflakeCaller(f"{service.function_url}/estimate", custom_headers=secret).query(rows[:60])
        SnowflakeCaller(service.function_url, custom_headers=secret).query(rows[:60])  # from the cache

        SnowflakeCaller(service.function_url, custom_headers=secret).query([[OUT_OF_CREDITS, "US"]])
        SnowflakeCaller(service.function_url, custom_headers=secret).query([["after402@company20.com", "US"]])
        emails |= {TOKEN_REJECTED, OUT_OF_CREDITS, "after402@company20.com"}

        hostile = {
            "unauthenticated": (b'{"data": [[0, "nosecret@company21.com", "US"]]}', {}),
            "wrong-secret": (b'{"data": []}', {"sf-custom-udf-secret": "guess-for-wrong@company22.com"}),
            "truncated-json": (b'{"data": [[0, "cut@company23.com", "U', {"sf-custom-udf-secret": SECRET}),
            "email-row-number": (
                b'{"data": [["rownum@company24.com", "US"]]}',
                {"sf-custom-udf-secret": SECRET},
            ),
            "12-arguments": (
                orjson.dumps({"data": [[0, *["twelve@company25.com"] * 12]]}),
                {"sf-custom-udf-secret": SECRET},
            ),
        }
        for body, headers in hostile.values():
            assert (
                requests.post(service.function_url, data=body, headers=headers, timeout=10).status_code < 500
            )
        emails |= {m.group(0) for body, headers in hostile.values() for m in EMAIL_LIKE.finditer(str(body))}
        emails |= {"guess-for-wrong@company22.com"}

        # Last of the upstream faults: a rejected token opens the auth circuit for every lead.
        time.sleep(1.2)
        with pytest.raises(ExternalFunctionError, match="424"):
            SnowflakeCaller(service.function_url, custom_headers=secret).query([[TOKEN_REJECTED, "US"]])

        db = sqlite3.connect(path, timeout=0.5, isolation_level=None)
        db.execute("begin exclusive")
        try:
            locked = requests.post(
                service.function_url,
                data=b'{"data": [[0, "locked@company26.com", "US"]]}',
                headers={"sf-custom-udf-secret": SECRET, "sf-external-function-query-batch-id": "locked-1"},
                timeout=30,
            )
            assert locked.status_code in {200, 503}
        finally:
            db.execute("rollback")
            db.close()
        emails.add("locked@company26.com")
        time.sleep(0.5)  # let the background threads log their last words
        return service.log_text(), {e.strip() for e in emails if "@" in e}
    finally:
        service.stop()
        simulator.stop()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, set[str]]:
    return _workload(tmp_path_factory.mktemp("logs"))


def _records(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


def test_no_token_secret_or_email_in_any_log_line(run: tuple[str, set[str]]) -> None:
    """Neither the 6sense token, nor the shared secret, nor any email (any spelling) appears in the log."""
    text, emails = run
    assert TOKEN not in text
    assert SECRET not in text
    lowered = text.lower()
    leaked = sorted(e for e in emails if e.lower() in lowered)
    assert not leaked, f"raw emails in the log: {leaked[:5]}"
    assert not EMAIL_LIKE.findall(text), EMAIL_LIKE.findall(text)[:5]


def test_every_line_is_a_json_object_with_the_standard_fields(run: tuple[str, set[str]]) -> None:
    """Each line is a JSON object with ts, level, logger, event; batch lines carry ids, counts, timings."""
    text, _ = run
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) > 20
    not_json = [line for line in lines if not line.startswith("{")]
    assert not not_json, f"lines that are not JSON: {not_json[:3]}"
    records = _records(text)
    assert all(set(r) >= FIELDS for r in records), [r for r in records if not set(r) >= FIELDS][:3]
    batches = [r for r in records if r["event"] == "batch"]
    assert {r["route"] for r in batches} >= {"full", "cached", "estimate", "poll"}
    assert all(set(r) >= BATCH_FIELDS for r in batches)
    assert any(r["query_id"] and r["batch_id"] and r["rows"] for r in batches)
    assert any(r["event"] == "state_unavailable" and r["level"] == "warning" for r in records)


def test_retries_and_upstream_failures_are_logged_with_an_email_hash(run: tuple[str, set[str]]) -> None:
    """Retries, give-ups, the 402 circuit and a rejected token are logged, naming leads by email hash."""
    text, _ = run
    records = _records(text)
    assert {"debug", "info", "warning", "error"} <= {r["level"] for r in records}
    hashes = {r.get("email_hash") for r in records}
    for email in ("retry503@company11.com", "dead503@company12.com", "retry429@company13.com"):
        assert email_hash(email) in hashes, f"no log line for the retries of {email_hash(email)}"
    assert any("402" in orjson.dumps(r).decode() for r in records if r["level"] in {"warning", "error"})
    assert any(r["level"] == "error" and "401" in orjson.dumps(r).decode() for r in records)
