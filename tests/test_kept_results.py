"""Finished async results a worker keeps in memory (for polls during a state outage, and to store
them again if the backend loses them) stay within a byte budget, and nothing is lost by it:
a result no longer in memory is answered from the state."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures import runtime_of
from tests.leadgen import expected_value, stable
from udf_service import snowflake_jobs
from udf_service.simulator import Simulator, SimulatorTransport
from udf_service.testing.snowflake import in_process


def test_kept_results_stay_within_their_byte_budget(make_app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight async batches of 40 rows against a budget of about two results: memory keeps the
    newest within it, and every batch still ends 200 with its exact rows."""
    budget = 2 * 40 * 1500  # about two 40-row results (each row's answer is ~1.3 KB)
    monkeypatch.setattr(snowflake_jobs, "KEEP_FINISHED_BYTES", budget)
    simulator = Simulator(latency_ms=150)  # slower than the sync budget: every batch goes async
    app = make_app(transport=SimulatorTransport(simulator), sync_budget_s=0.05)
    jobs = runtime_of(app).jobs
    rows = [[f"kept{i}@corp{i % 7}.com", "US"] for i in range(8 * 40)]

    values = in_process(app, max_batch_rows=40, parallel=2, max_poll_s=60).query(rows)

    assert [stable(v) for v in values] == [expected_value(r) for r in rows]
    assert simulator.stats()["calls"] == len(rows)
    kept = list(jobs.finished.values())
    assert 1 <= len(kept) < 8, "the budget evicted the oldest results"
    assert jobs.finished_bytes == sum(len(k.outcome.body or b"") for k in kept) <= budget
