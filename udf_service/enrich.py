"""`udf-service enrich`: a CSV of leads through the same engine (cache, limiter, guards) to JSONL.

For analysts trying the adapter without a warehouse, and for backfills. Leads are processed in
chunks; every fetched answer is cached as it arrives, so an interrupted run resumes where it
stopped: a re-run gets the earlier leads from the cache at no cost. `--dry-run` calls nothing
and prints what the run would spend.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import orjson
from tqdm import tqdm

from .config import Settings
from .engine import Row
from .errors import ConfigError
from .leads import FIELDS, lead_from_args
from .runtime import build
from .values import as_dict, status_of

CHUNK = 50


@dataclass(frozen=True)
class Estimate:
    rows: int
    reasons: dict[str, int]
    rate_per_hour: float

    @property
    def calls(self) -> int:
        return self.reasons.get("new", 0)

    @property
    def hours(self) -> float:
        return self.calls / self.rate_per_hour if self.rate_per_hour else math.inf

    def render(self) -> str:
        lines = [f"rows                  {self.rows:>10,}"]
        for reason in ("cached", "duplicate", "invalid_input", "quota_exhausted", "budget_exhausted", "new"):
            lines.append(f"  {reason:<20}{self.reasons.get(reason, 0):>10,}")
        lines += [
            f"upstream calls        {self.calls:>10,}",
            f"credits (at most)     {self.calls:>10,}   (6sense bills matched leads only)",
            f"time at the quota     {self.hours:>10.2f} h = {self.hours * 60:,.0f} min "
            f"(at {self.rate_per_hour:,.0f} calls/hour)",
        ]
        return "\n".join(lines)


def read_rows(source: TextIO) -> Iterator[list[Any]]:
    """Rows of the CSV as positional arguments in the seed's order (header names any case)."""
    reader = csv.DictReader(source)
    columns = {name.strip().lower(): name for name in reader.fieldnames or []}
    if "email" not in columns:
        raise ConfigError(
            f"the CSV needs an 'email' column (found: {', '.join(columns) or 'none'}); "
            f"optional columns: {', '.join(FIELDS[1:])}"
        )
    for record in reader:
        yield [record.get(columns[f]) if f in columns else None for f in FIELDS]


def _leads(rows: list[list[Any]], settings: Settings) -> list[Row]:
    return [lead_from_args(row, settings.default_country) for row in rows]


def estimate(csv_path: Path) -> Estimate:
    """What enriching this file would cost now, without calling 6sense."""
    settings = Settings.from_env()
    with csv_path.open(newline="", encoding="utf-8-sig") as source:
        rows = list(read_rows(source))
    runtime = build(settings, background=False)
    try:
        reasons = Counter(item["reason"] for item in runtime.engine.estimate(_leads(rows, settings)))
    finally:
        runtime.shutdown(grace_s=0)
    per_hour = settings.rate_limit.per_second * 3600 / (1 + settings.rate_headroom)
    return Estimate(len(rows), dict(reasons), per_hour)


def enrich(csv_path: Path, output: Path) -> Counter[str]:
    """Enrich every row into `output` (JSONL, one line per input row, in order); row statuses."""
    settings = Settings.from_env()
    with csv_path.open(newline="", encoding="utf-8-sig") as source:
        rows = list(read_rows(source))
    runtime = build(settings, background=False)
    statuses: Counter[str] = Counter()
    try:
        with output.open("wb") as sink, tqdm(total=len(rows), unit="row", desc="enrich") as bar:
            for start in range(0, len(rows), CHUNK):
                chunk = rows[start : start + CHUNK]
                leads = _leads(chunk, settings)
                values = runtime.engine.enrich(leads, runtime.engine.deadline(3600), fetch_own=True)
                for offset, (args, value) in enumerate(zip(chunk, values, strict=True)):
                    statuses[status_of(value)] += 1
                    line = {"row": start + offset, "email": args[0], "country": args[1]}
                    sink.write(orjson.dumps(line | as_dict(value)) + b"\n")
                sink.flush()
                bar.update(len(chunk))
                bar.set_postfix(statuses)
    finally:
        runtime.shutdown(grace_s=10)  # answers already paid for are written before we exit
    return statuses
