"""The benchmark command and its pure figures. The quick suite itself runs from the installed wheel
(tests/e2e/test_wheel.py::test_bench_quick). Counts are checked; times never are."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

from udf_service import cli_bench


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
    from udf_service.bench.quota import steady_rate

    samples = [(0.0, 0), (1.0, 2), (2.0, 5), (7.0, 55), (11.0, 95), (15.0, 100)]
    assert steady_rate(samples, 100) == pytest.approx(90 / 9)
