"""`udf-service sql`: print or run the Snowflake SQL that sets up the sixsense-udf functions.

Thin click wrappers over :mod:`udf_service.warehouse_sql`, which does the work:

    udf-service sql targets
    udf-service sql variables --target aws
    udf-service sql render --target aws --var caller_role=analyst --var gateway_url=... > setup.sql
    udf-service sql apply  --target spcs --var ... [--connection NAME] [--dry-run]
    udf-service sql path [--dbt]      # where the installed templates (or the dbt package) are

The user walkthrough is docs/snowflake-setup.md.
"""

from __future__ import annotations

import click

from . import templates, warehouse_sql

__all__ = ["sql"]


def _parse_vars(pairs: tuple[str, ...]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--var")
        values[name.strip()] = value
    return values


def _render(target: str, pairs: tuple[str, ...]) -> list[warehouse_sql.Script]:
    try:
        return warehouse_sql.render(target, _parse_vars(pairs))
    except warehouse_sql.VariableError as exc:
        raise click.UsageError(str(exc)) from exc
    except templates.TemplatesNotFound as exc:
        raise click.ClickException(str(exc)) from exc


_target_option = click.option(
    "--target",
    "-t",
    required=True,
    type=click.Choice(list(warehouse_sql.TARGETS)),
    help="Where the functions run: a cloud API gateway, SPCS, or only the views.",
)
_var_option = click.option(
    "--var",
    "-v",
    "pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="A template variable; repeat for each. `udf-service sql variables -t TARGET` lists them.",
)


@click.group()
def sql() -> None:
    """Snowflake SQL for the functions, the views and the grants."""


@sql.command()
def targets() -> None:
    """List the targets."""
    for target in warehouse_sql.TARGETS.values():
        click.echo(f"{target.name:12} {target.description}")


@sql.command()
@click.option("--dbt", "dbt", is_flag=True, help="The dbt package's directory instead.")
def path(dbt: bool) -> None:
    """Print where this installation's SQL templates are (for packages.yml `local:`, or to read)."""
    try:
        found = templates.dbt_package_dir() if dbt else templates.sql_dir()
    except templates.TemplatesNotFound as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(str(found))


@sql.command()
@_target_option
def variables(target: str) -> None:
    """List a target's variables, their defaults and what they mean."""
    for variable, default in warehouse_sql.target_variables(target):
        shown = "(required)" if default is None else repr(default)
        env = f" [env {variable.env}]" if variable.env else ""
        click.echo(f"{variable.name:22} {shown:24} {variable.help}{env}")


@sql.command()
@_target_option
@_var_option
def render(target: str, pairs: tuple[str, ...]) -> None:
    """Print the target's scripts with the variables filled in."""
    click.echo(warehouse_sql.render_text(_render(target, pairs)), nl=False)


@sql.command()
@_target_option
@_var_option
@click.option(
    "--connection",
    "-c",
    "connection_name",
    metavar="NAME",
    help="Connection from connections.toml; default: SNOWFLAKE_* environment "
    "variables, else the connector's default connection.",
)
@click.option("--dry-run", is_flag=True, help="Print the numbered statements; run nothing.")
def apply(target: str, pairs: tuple[str, ...], connection_name: str | None, dry_run: bool) -> None:
    """Run the target's statements one by one; stop at the first error."""
    scripts = _render(target, pairs)
    if dry_run:
        for statement in warehouse_sql.iter_statements(scripts):
            click.echo(f"-- [{statement.number}] {statement.script}, line {statement.line}")
            click.echo(statement.sql + ";\n")
        return

    def report(executed: warehouse_sql.Executed) -> None:
        statement = executed.statement
        click.echo(f"[{statement.number}] ok   {statement.script}: {statement.excerpt(70)}")
        if statement.sql.lower().startswith(("describe", "desc ", "show")):
            for row in executed.rows:
                click.echo("      " + " | ".join("" if v is None else str(v) for v in row))

    try:
        done = warehouse_sql.apply(
            scripts, connect=lambda: warehouse_sql.open_connection(connection_name), on_executed=report
        )
    except warehouse_sql.WarehouseSqlError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{len(done)} statements applied for target {target}.")
