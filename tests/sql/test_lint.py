"""sqlfluff (snowflake dialect, sql/.sqlfluff) passes on every script under sql/."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, SQL_DIR

SQLFLUFF = Path(sys.executable).parent / "sqlfluff"


@pytest.fixture(scope="module")
def lint_report() -> list[dict]:
    if not SQLFLUFF.exists():
        pytest.skip(f"sqlfluff is not installed next to {sys.executable}")
    result = subprocess.run(
        [str(SQLFLUFF), "lint", "sql", "--format", "json", "--disable-progress-bar"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


@pytest.mark.e2e  # sqlfluff over every script
def test_every_script_is_linted(lint_report):
    """sqlfluff sees every .sql file under sql/ (none is ignored or skipped)."""
    linted = {str(Path(entry["filepath"]).resolve().relative_to(SQL_DIR)) for entry in lint_report}
    on_disk = {
        str(p.relative_to(SQL_DIR))
        for p in SQL_DIR.rglob("*.sql")
        if "target" not in p.parts and "dbt_packages" not in p.parts
    }
    assert on_disk <= linted


@pytest.mark.e2e
def test_no_violations(lint_report):
    """No file has a sqlfluff violation (noqa only where sqlfluff cannot parse Snowflake DDL)."""
    problems = [
        f"{e['filepath']}:{v['start_line_no']} {v['code']} {v['description']}"
        for e in lint_report
        for v in e["violations"]
    ]
    assert problems == []


def test_every_noqa_is_for_a_parse_gap():
    """Inline noqa comments only silence PRS (unparsable Snowflake DDL), each with a reason."""
    for path in SQL_DIR.rglob("*.sql"):
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            directive = re.search(r"--\s*noqa:\s*(\S+)", line)
            if not directive:
                continue
            assert directive.group(1) in ("PRS", "disable=LT02", "enable=LT02"), (
                f"{path}:{number + 1}: {line}"
            )
            before = "\n".join(lines[:number])
            assert "sqlfluff 4.5" in before, f"{path}:{number + 1} has no reason above it"


def test_excluded_rules_have_reasons():
    """Every rule excluded in a .sqlfluff file is named again in a comment with its reason."""
    for config in SQL_DIR.rglob(".sqlfluff"):
        text = config.read_text()
        for line in text.splitlines():
            if line.startswith("exclude_rules"):
                for rule in line.split("=", 1)[1].split(","):
                    comments = [c for c in text.splitlines() if c.startswith("#")]
                    assert any(rule.strip() in c for c in comments), (config, rule)
