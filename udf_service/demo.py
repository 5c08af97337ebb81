"""`udf-service demo`: the whole path in one command, against the built-in simulator.

Starts `udf-service serve` in simulator mode on a loopback port, sends a sample batch the way
Snowflake does (gzip, sf-* headers, 202 polls), prints the answers as a table, sends it again to
show the cache, and stops the server.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from .testing.processes import start_service
from .testing.snowflake import SnowflakeCaller

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
    state_dir = Path(tempfile.mkdtemp(prefix="udf-demo-"))
    env = {"SIXSENSE_RATE_LIMIT": "600/minute", "UDF_LOG_LEVEL": "WARNING"}
    try:
        service = start_service(None, f"sqlite:///{state_dir}/state.db", state_dir / "service.log",
                                workers=1, env=env)  # fmt: skip
    except RuntimeError as exc:
        raise SystemExit(f"the service did not start: {exc}") from None
    try:
        print(
            f"\nService running on {service.url} with the built-in 6sense SIMULATOR (not real 6sense data).\n"
        )
        caller = SnowflakeCaller(service.function_url, max_batch_rows=len(SAMPLE_ROWS))
        for attempt in ("first call", "second call (same batch: served from the cache)"):
            print(f"POST /snowflake/people/full  ({attempt})")
            values = caller.query([row[1:] for row in SAMPLE_ROWS])
            _print_table([[number, value] for number, value in enumerate(values)])
            print()
        return 0
    finally:
        service.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


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
