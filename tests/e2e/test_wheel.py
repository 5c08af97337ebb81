"""The installed package is the product: the built wheel, in a fresh venv, from an empty directory.

One session fixture builds the sdist and the wheel once, checks them with twine, and installs the
wheel (not editable) into a venv outside the checkout (tests/e2e/installed.py). Every command
then runs from an empty directory of its own, without UDF_SQL_DIR or any other of our settings,
and its output is compared with what the checkout produces for the same input: the same SQL byte
for byte, the same values for the same leads.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import tarfile
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner

from udf_service import warehouse_sql
from udf_service.cli_sql import sql as sql_group
from udf_service.demo import SAMPLE_ROWS
from udf_service.testing.processes import start_service
from udf_service.testing.snowflake import SnowflakeCaller

from ..sql.conftest import REQUIRED_VARS
from .installed import REPO, Installed, shared_install

pytestmark = pytest.mark.e2e

VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
#: Keys that say when and from where a value came, not what it is.
VOLATILE = ("fetched_at", "from_cache")


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """One build, one venv, one install for the whole session (its xdist workers included)."""
    base = tmp_path_factory.getbasetemp()
    return shared_install(base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base)


@pytest.fixture
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty directory outside the checkout, the user's working directory."""
    directory = tmp_path_factory.mktemp("cwd")
    assert not directory.resolve().is_relative_to(REPO) and not any(directory.iterdir())
    return directory


def _stable(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if k not in VOLATILE}


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    return result.stdout


# --- the artefacts --------------------------------------------------------------------------------


def test_build_makes_an_sdist_and_a_wheel_that_twine_accepts(installed: Installed) -> None:
    """`python -m build` makes one sdist and one wheel of this version; `twine check --strict` passes both."""
    assert installed.wheel.name == f"sixsense_udf-{VERSION}-py3-none-any.whl"
    assert installed.sdist.name == f"sixsense_udf-{VERSION}.tar.gz"
    assert installed.twine_output.count("PASSED") == 2, installed.twine_output


def _tracked(under: str) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", under], cwd=REPO, capture_output=True, check=True, timeout=30
    ).stdout
    return sorted(name for name in listed.decode().split("\0") if name)


def test_every_template_under_sql_is_in_the_wheel(installed: Installed) -> None:
    """Each file tracked under sql/ is in the wheel at udf_service/sql/..., byte for byte, and the
    wheel's udf_service/sql holds nothing else (no dbt target/, logs or other local leftovers)."""
    sources = _tracked("sql")
    assert len(sources) > 20  # every warehouse, the views and the dbt package
    with zipfile.ZipFile(installed.wheel) as wheel:
        shipped = {n for n in wheel.namelist() if n.startswith("udf_service/sql/") and not n.endswith("/")}
        expected = {f"udf_service/{name}" for name in sources}
        assert sorted(expected - shipped) == [], "templates missing from the wheel"
        assert sorted(shipped - expected) == [], "files in the wheel's sql/ that are not tracked templates"
        for name in sources:
            assert wheel.read(f"udf_service/{name}") == (REPO / name).read_bytes(), name


def test_the_sdist_carries_the_templates_once(installed: Installed) -> None:
    """The sdist has sql/ at its top (the one source) and no second copy under udf_service/."""
    with tarfile.open(installed.sdist) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert set(_tracked("sql")) <= names
    assert not any(name.startswith("udf_service/sql/") for name in names)


def test_the_venv_runs_the_installed_package_not_the_checkout(installed: Installed, workdir: Path) -> None:
    """`import udf_service` in the venv resolves to its site-packages; the templates found are the
    wheel's, and the install is not editable (no .pth pointing back at the checkout)."""
    code = "import udf_service, udf_service.templates as t; print(udf_service.__file__); print(t.sql_dir())"
    package, templates = installed.python(code, workdir).splitlines()
    site = installed.venv.resolve()
    assert Path(package).resolve().is_relative_to(site) and Path(templates).resolve().is_relative_to(site)
    assert not list(installed.venv.glob("lib/python*/site-packages/*sixsense*.pth"))
    assert _ok(installed.run("sql", "path", cwd=workdir)).strip() == templates


# --- the commands a user runs ---------------------------------------------------------------------


def test_version(installed: Installed, workdir: Path) -> None:
    """`udf-service --version` prints pyproject's version, which is the wheel's metadata version."""
    assert _ok(installed.run("--version", cwd=workdir)) == f"udf-service, version {VERSION}\n"
    code = "import importlib.metadata as m; print(m.version('sixsense-udf'))"
    assert installed.python(code, workdir).strip() == VERSION


@pytest.fixture
def wheel_service(installed: Installed, workdir: Path) -> Iterator[Any]:
    """The venv's `udf-service serve` with its simulator on a free loopback port, cwd the empty dir."""
    service = start_service(
        None,
        f"sqlite:///{workdir}/state.db",
        workdir.parent / f"{workdir.name}-service.log",
        workers=1,
        threads=4,
        env=installed.overrides(),
        program=installed.program,
        cwd=workdir,
    )
    yield service
    service.stop()


def test_serve_answers_healthz_and_a_snowflake_batch(
    wheel_service: Any, installed: Installed, caller: SnowflakeCaller
) -> None:
    """The installed service starts, says its version on /healthz, and answers a Snowflake batch
    (gzip, sf-* headers) with one value per row, in order, equal to the checkout's for those rows."""
    command = Path(f"/proc/{wheel_service.handle.pid}/cmdline").read_bytes().split(b"\0")
    assert installed.program[0].encode() in command  # the venv's console script, not ours
    health = httpx.get(f"{wheel_service.url}/healthz", timeout=5)
    assert health.status_code == 200 and health.json() == {"status": "ok", "version": VERSION}

    rows = [row[1:] for row in SAMPLE_ROWS]
    values = SnowflakeCaller(wheel_service.function_url, max_batch_rows=len(rows)).query(rows)
    expected = caller.query(rows)  # the checkout's app in process, same simulator
    assert [_stable(v) for v in values] == [_stable(v) for v in expected]
    statuses = [v["status"] for v in values]
    assert statuses.count("invalid_input") == 2 and statuses.count("ok") >= 4
    assert _stable(values[0]) == _stable(values[3])  # one lead, written two ways


def _demo_blocks(output: str) -> list[list[list[str]]]:
    """The demo's two tables as rows of whitespace-split cells (row, email, status, ..., cached)."""
    blocks: list[list[list[str]]] = []
    for line in output.splitlines():
        if line.startswith("POST /snowflake/people/full"):
            blocks.append([])
        elif blocks and re.match(r"^\d+\s", line):
            blocks[-1].append(line.split())
    return blocks


def test_demo(installed: Installed, workdir: Path, caller: SnowflakeCaller) -> None:
    """`udf-service demo` runs the sample batch twice: the checkout's statuses, then from the cache."""
    output = _ok(installed.run("demo", cwd=workdir, timeout_s=120))
    assert "SIMULATOR" in output
    expected = [v["status"] for v in caller.query([row[1:] for row in SAMPLE_ROWS])]
    first, second = _demo_blocks(output)
    assert [cells[2] for cells in first] == [cells[2] for cells in second] == expected
    assert [cells[-1] for cells in first] == ["no"] * len(SAMPLE_ROWS)
    assert [cells[-1] for cells in second] == ["no" if s == "invalid_input" else "yes" for s in expected]


LEADS = [
    ("jane.doe@acme.com", "US"),
    ("raj.patel@globex.io", "United States"),
    ("JANE.DOE@ACME.COM ", "usa"),  # a duplicate of the first
    ("someone@gmail.com", "US"),
    ("not-an-email", "US"),
    ("li.wei@initech.de", "Germany"),
]


def _figures(dry_run_output: str) -> dict[str, int]:
    """`enrich --dry-run`'s counts by label ('rows', 'new', 'upstream calls', ...)."""
    figures = {}
    for line in dry_run_output.splitlines():
        match = re.match(r"^\s*([a-z_ ()]+?)\s{2,}([\d,]+)(\s|$)", line)
        if match:
            figures[match.group(1)] = int(match.group(2).replace(",", ""))
    return figures


def test_enrich_dry_run_then_enrich_a_csv(
    installed: Installed, workdir: Path, caller: SnowflakeCaller
) -> None:
    """`enrich --dry-run` counts 4 new calls for 6 rows (1 duplicate, 1 invalid) and calls nothing;
    `enrich` writes one JSONL line per row with the checkout's values; a second dry run finds nothing new."""
    with (workdir / "leads.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([("email", "country"), *LEADS])
    env = installed.environment(SIXSENSE_SIMULATE="1")

    before = _figures(_ok(installed.run("enrich", "--dry-run", "leads.csv", cwd=workdir, env=env)))
    assert before["rows"] == 6 and before["new"] == before["upstream calls"] == 4
    assert before["duplicate"] == 1 and before["invalid_input"] == 1 and before["cached"] == 0

    summary = _ok(
        installed.run("enrich", "leads.csv", "-o", "out.jsonl", cwd=workdir, env=env, timeout_s=120)
    )
    assert summary.startswith("wrote 6 rows to out.jsonl")
    lines = [orjson.loads(line) for line in (workdir / "out.jsonl").read_bytes().splitlines()]
    expected = caller.query([list(lead) for lead in LEADS])
    assert [line["row"] for line in lines] == list(range(len(LEADS)))
    assert [line["email"] for line in lines] == [email for email, _ in LEADS]
    extra = ("row", "email", "country")
    assert [_stable({k: v for k, v in line.items() if k not in extra}) for line in lines] == [
        _stable(v) for v in expected
    ]

    after = _figures(_ok(installed.run("enrich", "--dry-run", "leads.csv", cwd=workdir, env=env)))
    # Every valid row is now answered from the cache (how the duplicate is counted is the engine's call).
    assert after["new"] == after["upstream calls"] == 0 and after["invalid_input"] == 1
    assert after["cached"] + after["duplicate"] == 5


# --- the SQL, for every target --------------------------------------------------------------------


def test_sql_targets_are_the_checkouts(installed: Installed, workdir: Path) -> None:
    """`udf-service sql targets` lists the same targets as the checkout (so 'every target' below is all)."""
    listed = [line.split()[0] for line in _ok(installed.run("sql", "targets", cwd=workdir)).splitlines()]
    assert listed == list(warehouse_sql.TARGETS) and set(listed) == set(REQUIRED_VARS)


@pytest.mark.parametrize("target", list(warehouse_sql.TARGETS))
def test_sql_variables_match_the_checkout(installed: Installed, workdir: Path, target: str) -> None:
    """`udf-service sql variables -t TARGET` prints exactly what the checkout's command prints."""
    checkout = CliRunner().invoke(sql_group, ["variables", "--target", target])
    assert checkout.exit_code == 0, checkout.output
    assert _ok(installed.run("sql", "variables", "--target", target, cwd=workdir)) == checkout.output


@pytest.mark.parametrize("target", list(warehouse_sql.TARGETS))
def test_sql_render_is_the_checkouts_byte_for_byte(installed: Installed, workdir: Path, target: str) -> None:
    """`udf-service sql render -t TARGET` with the target's required variables, from the wheel's
    templates, is byte-identical to rendering the checkout's sql/ with the same values."""
    env = installed.environment()
    pairs = [arg for name, value in REQUIRED_VARS[target].items() for arg in ("--var", f"{name}={value}")]
    result = subprocess.run(
        [*installed.program, "sql", "render", "--target", target, *pairs],
        cwd=workdir,
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()
    scripts = warehouse_sql.render(target, REQUIRED_VARS[target], directory=REPO / "sql", environ=env)
    assert result.stdout == warehouse_sql.render_text(scripts).encode()


def test_sql_apply_without_the_snowflake_extra_says_how_to_install_it(
    installed: Installed, workdir: Path
) -> None:
    """The wheel alone has no snowflake-connector-python: `sql apply` says so in one line, with the
    install command, and no traceback."""
    result = installed.run("sql", "apply", "--target", "views", "--var", "caller_role=analyst", cwd=workdir)
    assert result.returncode == 1 and "Traceback" not in result.stderr + result.stdout
    assert result.stderr.strip().splitlines() == [
        "Error: sql apply needs snowflake-connector-python: pip install 'sixsense-udf[snowflake]'"
    ]


# --- the benchmarks -------------------------------------------------------------------------------


def test_bench_quick(installed: Installed, workdir: Path) -> None:
    """`udf-service bench --quick` (every section) runs from the install: exit 0, no section failed,
    one upstream call per unique lead, no soak row lost, at most 3 state writes per fetched lead,
    the table printed."""
    result = installed.run("bench", "--quick", "--json", "bench.json", cwd=workdir, timeout_s=300)
    written = workdir / "bench.json"
    document = orjson.loads(written.read_bytes()) if written.exists() else {"failed": ["?"], "figures": []}
    broken = [f["measured"] for f in document["figures"] if f["name"] == "section failed"]
    assert document["failed"] == [] and not broken, (document["failed"], broken, result.stderr[-3000:])
    output = _ok(result)
    assert document["mode"] == "quick"
    economy = [f for f in document["figures"] if f["section"] == "1 economy"]
    assert economy and economy[-1]["raw"]["calls"] == economy[-1]["raw"]["leads"] > 0
    assert economy[-1]["raw"]["wrong"] == 0
    assert all(f["raw"]["calls"] == f["raw"]["leads"] and f["raw"]["max_per_lead"] <= 1 for f in economy[:-1])
    soak = next(f for f in document["figures"] if f["section"] == "soak")["raw"]
    assert soak["lost_rows"] == 0 and soak["rows_sent"] == soak["rows"]
    ops = [f["raw"] for f in document["figures"] if f["section"] == "6 state operations"]
    assert ops and all(o["calls"] == o["leads"] and o["writes"] <= 3 * o["leads"] for o in ops if o)
    assert "1 economy" in output and "soak" in output and "7 sections in" in output
