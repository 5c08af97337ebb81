"""Cutting a rendered script into the statements `apply` runs one by one.

Hand-written rather than snowflake-connector-python's `util_text.split_statements`: the connector
is the optional [snowflake] extra, while `sql apply --dry-run` and the tests need statements
without it (so a fallback would be a second splitter); and `apply` reports the line a failed
statement starts on, which the connector's splitter does not give. tests/sql/test_split.py checks
that both cut every rendered target at the same places.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .rendering import Script


@dataclass(frozen=True)
class Statement:
    """One statement of a rendered script, numbered across the whole run."""

    number: int
    script: str
    line: int
    sql: str

    def excerpt(self, width: int = 100) -> str:
        """The statement's start on one line, for messages."""
        flat = " ".join(self.sql.split())
        return flat if len(flat) <= width else flat[: width - 3] + "..."


_LEADING_NOISE = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|//[^\n]*(?:\n|\Z)|/\*.*?\*/)+", re.S)


def split_with_lines(sql: str) -> list[tuple[int, str]]:
    """Split on top-level semicolons; return (1-based line, statement) pairs.

    Semicolons inside '...' and "..." (with \\ escapes and doubled quotes), $$...$$ bodies,
    -- and // line comments and /* */ block comments do not end a statement. Leading comments
    are dropped from each statement (Snowflake ignores them, and so both fakesnow's nop rules
    and error excerpts see the statement's first keyword); comment-only pieces disappear.
    """
    pieces: list[tuple[int, str]] = []
    start = 0
    i = 0
    n = len(sql)
    while i < n:
        ch = sql[i]
        two = sql[i : i + 2]
        if two == "$$":
            end = sql.find("$$", i + 2)
            i = n if end < 0 else end + 2
        elif ch in "'\"":
            i += 1
            while i < n:
                if sql[i] == "\\" and ch == "'":
                    i += 2
                elif sql[i] == ch:
                    if sql[i + 1 : i + 2] == ch:  # doubled quote
                        i += 2
                    else:
                        i += 1
                        break
                else:
                    i += 1
        elif two in ("--", "//"):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif two == "/*":
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif ch == ";":
            pieces.append((start, sql[start:i]))
            i += 1
            start = i
        else:
            i += 1
    pieces.append((start, sql[start:]))
    result = []
    for offset, piece in pieces:
        noise = _LEADING_NOISE.match(piece)
        skip = noise.end() if noise else 0
        body = piece[skip:].rstrip()
        if body:
            result.append((sql.count("\n", 0, offset + skip) + 1, body))
    return result


def split_statements(sql: str) -> list[str]:
    """The statements of ``sql``, without their ``;`` and leading comments."""
    return [statement for _, statement in split_with_lines(sql)]


def iter_statements(scripts: Iterable[Script]) -> Iterator[Statement]:
    """Every statement of every script, numbered 1.. across all of them."""
    number = 1
    for script in scripts:
        for statement in script.statements(start=number):
            yield statement
            number += 1
