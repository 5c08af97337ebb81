"""`udf-service demo`: the whole path in one command, against the built-in simulator.

Starts `udf-service serve` in simulator mode on a loopback port, sends a sample batch the way
Snowflake does (gzip, sf-* headers), prints the answers as a table, sends it again to show the
cache, and stops the server.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

import orjson
import requests

from .server import free_port

SAMPLE_ROWS: list[list[Any]] = [
    [0, "jane.doe@acme.com", "US"],
    [1, "raj.patel@globex.io", "United States"],
    [2, "li.wei@initech.de", "Germany"],
    [3, "JANE.DOE@ACME.COM ", "usa"],  # same lead as row 0: one upstream call
    [4, "someone@gmail.com", "US"],  # free mail: 6sense finds no company
    [5, "not-an-email", "US"],  # invalid: never sent upstream
    [6, None, "US"],  # NULL email: invalid
    [7, {"email": "ana@umbrella.co.uk", "country": "GB", "title": "VP Marketing"}],
]


def run_demo() -> int:
    port = free_port()
    state_dir = tempfile.mkdtemp(prefix="udf-demo-")
    env = {
        **os.environ,
        "SIXSENSE_SIMULATE": "1",
        "UDF_STATE_URL": f"sqlite:///{state_dir}/state.db",
        "SIXSENSE_RATE_LIMIT": "600/minute",
        "UDF_LOG_LEVEL": "WARNING",
    }
    env.pop("SIXSENSE_API_TOKEN", None)
    env.pop("SIXSENSE_BASE_URL", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "udf_service.cli", "serve", "--port", str(port), "--workers", "1"], env=env
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, server)
        print(f"\nService running on {base} with the built-in 6sense SIMULATOR (not real 6sense data).\n")
        for attempt in ("first call", "second call (same batch: served from the cache)"):
            print(f"POST /snowflake/people/full  ({attempt})")
            rows = _call(base, f"demo-{attempt[:5]}")
            _print_table(rows)
            print()
        return 0
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_ready(base: str, server: subprocess.Popen[bytes]) -> None:
    end = time.monotonic() + 30
    while time.monotonic() < end:
        if server.poll() is not None:
            raise SystemExit("the service exited during start-up; see the log above")
        try:
            if requests.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit("the service did not become ready within 30 s")


def _call(base: str, batch_id: str) -> list[list[Any]]:
    headers = {
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        "Accept-Encoding": "gzip",
        "sf-external-function-format": "json",
        "sf-external-function-format-version": "1.0",
        "sf-external-function-query-batch-id": batch_id,
        "sf-external-function-current-query-id": "01demo-0000-0000-0000-000000000000",
    }
    body = gzip.compress(orjson.dumps({"data": SAMPLE_ROWS}))
    response = requests.post(f"{base}/snowflake/people/full", data=body, headers=headers, timeout=60)
    while response.status_code == 202:
        time.sleep(0.5)
        response = requests.get(f"{base}/snowflake/people/full", headers=headers, timeout=60)
    response.raise_for_status()
    return response.json()["data"]


def _print_table(rows: list[list[Any]]) -> None:
    columns = (
        "row",
        "email",
        "status",
        "company_name",
        "employees",
        "top product score",
        "segments",
        "cached",
    )
    table = []
    for (number, value), sample in zip(rows, SAMPLE_ROWS, strict=True):
        email = sample[1]["email"] if isinstance(sample[1], dict) else sample[1]
        top = max(value["scores"], key=lambda s: s["company_intent_score"] or 0, default=None)
        table.append(
            (
                str(number),
                str(email)[:26],
                value["status"],
                value["company_name"] or "",
                "" if value["company_employee_count"] is None else str(value["company_employee_count"]),
                f"{top['product']}: {top['company_intent_score']} ({top['company_buying_stage']})"
                if top
                else "",
                ", ".join(value["segment_names"])[:34],
                "yes" if value["from_cache"] else "no",
            )
        )
    widths = [max(len(c), *(len(r[i]) for r in table)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in table:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
    errors = [(n, v["error"]) for n, v in rows if v["error"]]
    for number, error in errors:
        print(f"  row {number}: {error}")
