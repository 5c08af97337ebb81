"""Regenerate `data/service_rows.jsonl` from the real service: `python -m tests.sql.make_service_rows`.

Starts the simulator and `udf-service serve`, asks the full route for matched, unmatched and
invalid leads and the cached route for one lead it has not seen (so `pending`), and writes each
answer as the view tests load it. Run it again whenever the output value changes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import orjson

from udf_service.testing.processes import start_service, start_simulator
from udf_service.testing.snowflake import SnowflakeCaller

OUT = Path(__file__).parent / "data" / "service_rows.jsonl"
FULL_ROWS: list[list[Any]] = [[f"lead{i}@company{i}.com", "USA"] for i in (2, 8, 11, 14, 18, 30, 32)] + [
    ["someone@gmail.com", "USA"],
    ["nobody@yahoo.com", "DEU"],
    ["not-an-email", "USA"],
    [None, "USA"],
]
PENDING_ROWS: list[list[Any]] = [["later@company77.com", "USA"]]


def main() -> None:
    simulator = start_simulator()
    with tempfile.TemporaryDirectory() as tmp:
        service = start_service(simulator.url, f"sqlite:///{tmp}/state.db", Path(tmp) / "service.log")
        try:
            full = SnowflakeCaller(service.function_url).query(FULL_ROWS)
            pending = SnowflakeCaller(f"{service.function_url}/cached").query(PENDING_ROWS)
        finally:
            service.stop()
            simulator.stop()
    with OUT.open("wb") as sink:
        for (email, country), value in zip(FULL_ROWS + PENDING_ROWS, full + pending, strict=True):
            sink.write(orjson.dumps({"email": email, "country": country, "value": value}) + b"\n")
    print(f"wrote {len(full) + len(pending)} rows to {OUT}")


if __name__ == "__main__":
    main()
