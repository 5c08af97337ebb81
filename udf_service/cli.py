"""The `udf-service` command: thin subcommands, each calling into a library function."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import __version__
from .errors import ConfigError


@click.group()
@click.version_option(__version__, prog_name="udf-service")
def main() -> None:
    """sixsense-udf: 6sense firmographics, lead scores and segments in your warehouse."""


@main.command()
@click.option(
    "--host",
    envvar="UDF_HOST",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind (env UDF_HOST; 0.0.0.0 in containers).",
)
@click.option("--port", envvar="UDF_PORT", default=8080, type=int, show_default=True, help="env UDF_PORT")
@click.option(
    "--workers",
    envvar="UDF_WORKERS",
    default=2,
    type=int,
    show_default=True,
    help="gunicorn worker processes (env UDF_WORKERS).",
)
@click.option(
    "--threads",
    envvar="UDF_THREADS",
    default=8,
    type=int,
    show_default=True,
    help="threads per worker (env UDF_THREADS).",
)
def serve(host: str, port: int, workers: int, threads: int) -> None:
    """Run the service under gunicorn with the production settings."""
    from dataclasses import replace

    from .config import Settings
    from .server import run

    try:
        run(replace(Settings.from_env(), threads=threads), host, port, workers)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
def demo() -> None:
    """Start the service with the simulator, send a sample batch, print the answers."""
    from .demo import run_demo

    sys.exit(run_demo())


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8900, type=int, show_default=True)
@click.option("--latency-ms", default=0.0, type=float, show_default=True)
@click.option("--rate-limit", default=None, help="e.g. 10/second (default: unlimited)")
def simulator(host: str, port: int, latency_ms: float, rate_limit: str | None) -> None:
    """Run the deterministic 6sense stand-in on its own (for tests and benchmarks)."""
    from .config import RateLimit
    from .simulator import Simulator
    from .simulator import serve as serve_simulator

    limit = RateLimit.parse(rate_limit) if rate_limit else None
    serve_simulator(host, port, Simulator(latency_ms=latency_ms, rate_limit=limit))


@main.command()
@click.argument("csv_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSONL file to write (one line per input row).",
)
@click.option(
    "--dry-run", is_flag=True, help="Call nothing; print the calls, credits and hours it would take."
)
def enrich(csv_path: Path, output: Path | None, dry_run: bool) -> None:
    """Enrich a CSV of leads (columns: email, country, ...) through the same engine."""
    from .enrich import enrich as run_enrich
    from .enrich import estimate

    try:
        if dry_run:
            click.echo(estimate(csv_path).render())
            return
        if output is None:
            raise click.UsageError("give -o/--output (or --dry-run)")
        statuses = run_enrich(csv_path, output)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"wrote {sum(statuses.values()):,} rows to {output}: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(statuses.items()))
    )


def _attach_command_groups() -> None:
    from .cli_bench import bench
    from .cli_cache import cache
    from .cli_sql import sql
    from .cli_status import status

    main.add_command(sql)
    main.add_command(bench)
    main.add_command(status)
    main.add_command(cache)


_attach_command_groups()

if __name__ == "__main__":
    main()
