"""`udf-service bench`: the benchmark suite (`udf_service/bench/`), as a subcommand.

The suite and its baselines (the naive per-row function, plain Flask) ship in the package, so the
command works wherever sixsense-udf is installed. Attach with ``main.add_command(bench)``.
"""

from __future__ import annotations

import sys
from typing import Any

import click


def load_suite() -> Any:
    """The suite's entry module (imported on use: it pulls in the process helpers and the baselines)."""
    from .bench import __main__ as suite

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
