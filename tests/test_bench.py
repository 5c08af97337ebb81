"""The benchmark suite in its reduced mode, so it cannot rot. Counts are checked; times never are."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from udf_service import cli_bench

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_suite_runs_with_exact_economy_and_no_lost_rows(tmp_path: Path) -> None:
    """`python -m bench --quick` completes; one upstream call per unique lead; no row is lost."""
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    document = orjson.loads(out.read_bytes())
    assert document["failed"] == []
    figures = document["figures"]
    economy = [f for f in figures if f["section"] == "1 economy"]
    total = economy[-1]["raw"]
    assert total["calls"] == total["leads"] > 0 and total["wrong"] == 0
    assert all(f["raw"]["calls"] == f["raw"]["leads"] and f["raw"]["max_per_lead"] <= 1 for f in economy[:-1])
    soak = next(f for f in figures if f["section"] == "soak")["raw"]
    assert soak["lost_rows"] == 0 and soak["rows_sent"] == soak["rows"]
    assert soak["upstream_calls"] == soak["new_leads"]
    assert "1 economy" in result.stdout and "soak" in result.stdout


def test_cli_passes_its_options_to_the_suite(monkeypatch: pytest.MonkeyPatch) -> None:
    """`udf-service bench --quick --only a,b --json f` calls the suite with those values."""
    calls: list[dict[str, Any]] = []

    def run(**options: Any) -> int:
        calls.append(options)
        return 0

    monkeypatch.setattr(cli_bench, "load_suite", lambda: SimpleNamespace(run=run))
    result = CliRunner().invoke(cli_bench.bench, ["--quick", "--only", "economy, quota", "--json", "x.json"])
    assert result.exit_code == 0, result.output
    assert calls == [{"quick": True, "only": ["economy", "quota"], "json_path": "x.json", "markdown": False}]


def test_cli_rejects_unknown_sections() -> None:
    """An unknown section name is a usage error naming the valid ones, before anything starts."""
    result = CliRunner().invoke(cli_bench.bench, ["--only", "nope"])
    assert result.exit_code == 2 and "economy" in result.output


def test_steady_rate_ignores_ramp_and_tail() -> None:
    """The quota figure's rate is read between the first and last 5% of calls."""
    from bench.quota import steady_rate

    samples = [(0.0, 0), (1.0, 2), (2.0, 5), (7.0, 55), (11.0, 95), (15.0, 100)]
    assert steady_rate(samples, 100) == pytest.approx(90 / 9)
