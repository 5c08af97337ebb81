"""Keeping what was paid for: export -> import into the other backend, warm from the warehouse.

In process (the app with the simulator as its transport); Redis where the other backend is Redis.
Each test ends by asking the same leads of a new app and counting the simulator's calls: 0.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from tests.fixtures import runtime_of
from udf_service.cache_transfer import Lifetimes, Tally, export_lines, import_lines, parse_time, warm_lines
from udf_service.cli import main
from udf_service.leads import Lead, lead_from_args
from udf_service.state import state_from_url
from udf_service.testing.snowflake import in_process

WEEK = Lifetimes(7 * 86400, 86400)


def _rows(count: int, prefix: str) -> list[list[Any]]:
    # firm0 ... match, nomatch-domain leads come back no_match from the simulator
    return [[f"{prefix}{i}@firm{i % 7}.com", ["US", "USA", "United States"][i % 3]] for i in range(count)]


def _paid(make_app: Any, state_url: str, rows: list[list[Any]]) -> list[dict[str, Any]]:
    app = make_app(state_url=state_url)
    values = in_process(app).query(rows)
    assert runtime_of(app).simulator.stats()["calls"] == len(rows)
    runtime_of(app).shutdown(grace_s=1)
    return values


def _asked_again(make_app: Any, state_url: str, rows: list[list[Any]], before: list[dict[str, Any]]) -> None:
    """A new app on ``state_url`` answers every row from the cache, identically, for 0 calls."""
    app = make_app(state_url=state_url)
    after = in_process(app).query(rows)
    assert runtime_of(app).simulator.stats()["calls"] == 0
    assert all(v["from_cache"] for v in after)
    drop = {"from_cache"}
    assert [{k: v for k, v in a.items() if k not in drop} for a in after] == [
        {k: v for k, v in b.items() if k not in drop} for b in before
    ]


@pytest.mark.redis
@pytest.mark.parametrize("direction", ["sqlite-to-redis", "redis-to-sqlite"])
def test_export_then_import_into_the_other_backend_costs_nothing(
    make_app: Any, tmp_path: Path, redis_url: str, direction: str
) -> None:
    sqlite_url = f"sqlite:///{tmp_path}/other.db"
    source, target = (sqlite_url, redis_url) if direction == "sqlite-to-redis" else (redis_url, sqlite_url)
    rows = _rows(60, "move")
    before = _paid(make_app, source, rows)
    exported = list(export_lines(state_from_url(source)))
    assert len(exported) == 60
    tally = import_lines(state_from_url(target), exported, WEEK)
    assert (tally.loaded, dict(tally.skipped)) == (60, {})
    _asked_again(make_app, target, rows, before)


def test_import_recomputes_expiry_from_the_answer_time(tmp_path: Path) -> None:
    """An entry answered 6 days ago has 1 day left after an import (not 7); one answered 8 days
    ago is skipped as expired; the key comes from the lead, not from the file."""
    state = state_from_url(f"sqlite:///{tmp_path}/s.db")
    now = state.now()
    lead = lead_from_args(["Ann@Firm1.com", "United States"])
    assert isinstance(lead, Lead)

    def line(days_ago: float, email: str) -> bytes:
        at = datetime.fromtimestamp(now - days_ago * 86400, UTC).isoformat().replace("+00:00", "Z")
        value = {"status": "ok", "company_name": "Firm", "fetched_at": at}
        return orjson.dumps({"lead": {"email": email, "country": "US"}, "key": "stale", "value": value})

    tally = import_lines(state, [line(6, "ann@firm1.com"), line(8, "old@firm1.com"), b"", b"{oops"], WEEK)
    assert tally.loaded == 1 and tally.skipped == {"expired": 1, "not JSON": 1}
    (record,) = list(state.cache_scan())
    assert record.key == lead.key
    assert abs(record.expires_at - (now + 86400)) < 5


def test_import_keeps_the_newest_answer_per_lead_and_loads_in_batches(tmp_path: Path) -> None:
    """Duplicates: the newest answer wins whatever the order; more than one write batch; a line
    with a key but no lead (an older export) keeps its key."""
    state = state_from_url(f"sqlite:///{tmp_path}/s.db")
    now = state.now()

    def line(email: str, hours_ago: float, name: str, lead: bool = True) -> bytes:
        at = datetime.fromtimestamp(now - hours_ago * 3600, UTC).isoformat()
        value = {"status": "ok", "company_name": name, "fetched_at": at}
        found = lead_from_args([email, "US"])
        assert isinstance(found, Lead)
        fields = {"email": email, "country": "US"} if lead else None
        return orjson.dumps({"lead": fields, "key": found.key, "value": value})

    lines = [line(f"bulk{i}@firm1.com", 1, "Bulk") for i in range(1200)]
    lines += [line("dup@firm1.com", 2, "Newer"), line("dup@firm1.com", 5, "Older")]
    lines += [line("keyonly@firm1.com", 1, "KeyOnly", lead=False)]
    tally = import_lines(state, lines, WEEK)
    assert tally.loaded == 1202 and tally.skipped == {"older duplicate": 1}
    for email, name in (("dup@firm1.com", "Newer"), ("keyonly@firm1.com", "KeyOnly")):
        lead = lead_from_args([email, "US"])
        assert isinstance(lead, Lead)
        assert orjson.loads(state.cache_get_many([lead.key])[lead.key])["company_name"] == name
    assert state.cache_count() == 1202


def _snowflake_rows(rows: list[list[Any]], values: list[dict[str, Any]]) -> list[bytes]:
    """What COPY INTO @stage FROM sixsense_enriched FILE_FORMAT = (TYPE = JSON) writes: upper-case
    columns, the VARIANT with its keys sorted, a TIMESTAMP_LTZ with a space and an offset."""
    lines = []
    for (email, country), value in zip(rows, values, strict=True):
        row = {
            "EMAIL": email,
            "COUNTRY": country,
            "ENRICHMENT": dict(sorted(value.items())),
            "ENRICHED_AT": datetime.now(UTC)
            .astimezone(timezone_minus_8())
            .strftime("%Y-%m-%d %H:%M:%S.%f %z"),
            "STATUS": value["status"],
        }
        lines.append(orjson.dumps(row, option=orjson.OPT_SORT_KEYS))
    return lines


def timezone_minus_8() -> Any:
    from datetime import timezone

    return timezone(timedelta(hours=-8))


def test_warm_from_a_snowflake_export_costs_nothing(make_app: Any, tmp_path: Path) -> None:
    rows = _rows(50, "warm")
    before = _paid(make_app, f"sqlite:///{tmp_path}/warehouse-side.db", rows)
    assert {v["status"] for v in before} >= {"ok"}
    lines = _snowflake_rows(rows, before)
    pending = {"EMAIL": "p@firm1.com", "COUNTRY": "US", "ENRICHMENT": {"status": "pending"}}
    error = {"EMAIL": "e@firm1.com", "COUNTRY": "US", "ENRICHMENT": '{"status": "error", "error": "x"}'}
    stale_at = (datetime.now(UTC) - timedelta(days=9)).strftime("%Y-%m-%d %H:%M:%S.000")
    stale = {"EMAIL": "s@firm1.com", "COUNTRY": "US", "ENRICHMENT": {**before[0], "fetched_at": stale_at}}
    extra = [orjson.dumps(r) for r in (pending, error, stale)]
    target = f"sqlite:///{tmp_path}/fresh.db"
    tally = warm_lines(state_from_url(target), [*lines, *extra, b"\n"], WEEK)
    assert tally.loaded == 50
    assert tally.skipped == {"status pending (not final)": 1, "status error (not final)": 1, "expired": 1}
    _asked_again(make_app, target, rows, before)


def test_parse_time_reads_what_snowflake_and_the_service_write() -> None:
    expected = datetime(2026, 12, 1, 18, 0, tzinfo=UTC).timestamp()
    for text in ("2026-12-01T18:00:00Z", "2026-12-01 10:00:00.000 -0800", "2026-12-01 18:00:00.000",
                 "2026-12-01T19:00:00+01:00", expected, datetime(2026, 12, 1, 18, 0)):  # fmt: skip
        assert parse_time(text) == expected, text
    assert parse_time("yesterday") is None and parse_time(None) is None


# ---------------------------------------------------------------------------------- the commands
def test_cache_commands_move_entries_between_files(make_app: Any, tmp_path: Path) -> None:
    """`udf-service cache export | import | warm` on --state-url, with the tallies they print."""
    rows = _rows(20, "cli")
    source = f"sqlite:///{tmp_path}/a.db"
    before = _paid(make_app, source, rows)
    runner = CliRunner()
    exported = tmp_path / "cache.jsonl"
    done = runner.invoke(main, ["cache", "export", "--state-url", source, "-o", str(exported)])
    assert done.exit_code == 0, done.output
    assert len(exported.read_bytes().splitlines()) == 20
    target = f"sqlite:///{tmp_path}/b.db"
    done = runner.invoke(main, ["cache", "import", "--state-url", target, str(exported)])
    assert done.exit_code == 0 and "loaded 20, skipped 0" in done.output, done.output
    _asked_again(make_app, target, rows, before)

    warehouse = tmp_path / "sixsense_enriched.json"
    warehouse.write_bytes(b"\n".join(_snowflake_rows(rows, before)) + b"\n")
    third = f"sqlite:///{tmp_path}/c.db"
    done = runner.invoke(main, ["cache", "warm", "--state-url", third, str(warehouse)])
    assert done.exit_code == 0 and "loaded 20, skipped 0" in done.output, done.output
    _asked_again(make_app, third, rows, before)


def test_warm_from_a_table_without_the_snowflake_extra_says_how(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "snowflake.connector", None)  # import fails as if absent
    args = ["cache", "warm", "--state-url", f"sqlite:///{tmp_path}/s.db"]
    done = CliRunner().invoke(main, [*args, "--connection", "prod", "--table", "db.udf.sixsense_enriched"])
    assert done.exit_code == 1
    assert "pip install 'sixsense-udf[snowflake]'" in done.output
    done = CliRunner().invoke(main, [*args, "--table", "db.udf.x; drop table y"])
    assert done.exit_code == 2 and "db.schema.table" in done.output


def test_warm_reads_rows_of_a_query(tmp_path: Path) -> None:
    """Rows as the connector's DictCursor returns them: a VARIANT as text, a datetime."""
    state = state_from_url(f"sqlite:///{tmp_path}/s.db")
    at = datetime.now(UTC).replace(tzinfo=None)
    value = '{"status": "no_match", "fetched_at": null}'
    row = {"EMAIL": "Q@Firm2.com", "COUNTRY": "usa", "WEBSITE": None, "ENRICHMENT": value, "ENRICHED_AT": at}
    tally: Tally = warm_lines(state, iter([row]), WEEK)
    assert tally.loaded == 1
    lead = lead_from_args(["q@firm2.com", "US"])
    assert isinstance(lead, Lead)
    cached = state.cache_get_many([lead.key])
    assert orjson.loads(cached[lead.key])["status"] == "no_match"


def test_docs_show_each_command() -> None:
    """README and the docs show the commands, the named volume and the warehouse round trip."""
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    cache_doc = (root / "docs" / "cache.md").read_text()
    setup = (root / "docs" / "snowflake-setup.md").read_text()
    for command in ("cache export", "cache import", "cache warm", "--connection", "--table"):
        assert f"udf-service {command}" in readme or command in readme, command
        assert command in cache_doc, command
    assert "docker run" in readme and "-v sixsense-udf-state:/var/lib/udf" in readme
    for scheme in ("rediss://", "redis+cluster://", "rediss+cluster://", "ssl_ca_certs"):
        assert scheme in cache_doc, scheme
    assert "copy into @" in setup and "udf-service cache warm" in setup
