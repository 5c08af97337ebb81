"""Rendering: the Jinja templates of one target, filled in with the checked variables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import jinja2

from ..templates import sql_dir
from .statements import Statement, split_with_lines
from .targets import TARGETS, resolve_variables
from .variables import VariableError


@dataclass(frozen=True)
class Script:
    """One rendered template: its name relative to the SQL directory and its text."""

    name: str
    sql: str

    def statements(self, start: int = 1) -> list[Statement]:
        """This script's statements, numbered from ``start``."""
        return [
            Statement(number=start + i, script=self.name, line=line, sql=sql)
            for i, (line, sql) in enumerate(split_with_lines(self.sql))
        ]


def _environment(directory: Path) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # SQL, not HTML: values are checked and quoted by kind instead
    )


def render(
    target: str,
    variables: Mapping[str, str] | None = None,
    *,
    directory: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[Script]:
    """Render every script of ``target`` with ``variables`` (plus defaults) filled in."""
    context = resolve_variables(target, variables or {}, environ)
    env = _environment(directory or sql_dir())
    scripts = []
    for name in TARGETS[target].scripts:
        try:
            text = env.get_template(name).render(context)
        except jinja2.UndefinedError as exc:
            # A template uses a variable the target does not declare: a bug in this module.
            raise VariableError(
                f"{name}: {exc.message}; pass it as --var NAME=VALUE and declare it for target {target}"
            ) from exc
        scripts.append(Script(name=name, sql=text.strip() + "\n"))
    return scripts


def render_text(scripts: Iterable[Script]) -> str:
    """All scripts as one SQL text, each under a banner naming its file."""
    parts = [f"-- ==== {s.name} " + "=" * max(3, 88 - len(s.name)) + "\n\n" + s.sql for s in scripts]
    return "\n".join(parts)
