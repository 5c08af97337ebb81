"""`udf-service bench`: the benchmark suite (`bench/` at the repository root), as a subcommand.

The suite is not part of the installed package: it lives next to `udf_service/` in a source
checkout, and needs one. Attach with ``main.add_command(bench)``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

NOT_FOUND = (
    "the benchmark suite (bench/) is not importable: it ships with the source checkout, not with the "
    "wheel. Run `udf-service bench` (or `python -m bench`) from a clone of the repository with the "
    "project installed in editable mode (`pip install -e .`)."
)


def load_suite() -> Any:
    """Import `bench.__main__`, from the checkout this package was imported from if need be."""
    root = Path(__file__).resolve().parents[1]
    if (root / "bench" / "__init__.py").is_file() and str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        from bench import __main__ as suite
    except ImportError as exc:
        raise click.ClickException(f"{NOT_FOUND} ({exc})") from None
    return suite


@click.command()
@click.option("--quick", is_flag=True, help="Reduced sizes: a few seconds per section (CI).")
@click.option(
    "--only", default=None, help="Comma-separated sections: economy,quota,throughput,cached,memory,soak."
)
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Also write every figure here."
)
@click.option("--markdown", is_flag=True, help="Print the table as Markdown.")
def bench(quick: bool, only: str | None, json_path: str | None, markdown: bool) -> None:
    """Run the benchmarks on loopback and print the table (see docs/performance.md)."""
    suite = load_suite()
    sections = [name.strip() for name in only.split(",") if name.strip()] if only else None
    try:
        code = suite.run(quick=quick, only=sections, json_path=json_path, markdown=markdown)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    sys.exit(code)
