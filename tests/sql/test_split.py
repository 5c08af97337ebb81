"""split_statements: cuts only on top-level semicolons."""

from __future__ import annotations

import io

import pytest

from udf_service.warehouse_sql import Script, iter_statements, render, split_statements

from .conftest import REQUIRED_VARS


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        pytest.param("select 1; select 2;", ["select 1", "select 2"], id="plain"),
        pytest.param("select 'a;b'; select 2", ["select 'a;b'", "select 2"], id="single-quote"),
        pytest.param(
            "select 'it\\'s;'; select 'x'';y'", ["select 'it\\'s;'", "select 'x'';y'"], id="escaped-quotes"
        ),
        pytest.param('select 1 as "a;b"; select 2', ['select 1 as "a;b"', "select 2"], id="ident"),
        pytest.param(
            "create service s from specification $$\nspec: {a: 1};\n$$; select 2",
            ["create service s from specification $$\nspec: {a: 1};\n$$", "select 2"],
            id="dollar-body",
        ),
        pytest.param(
            "-- one; two\nselect 1; /* x; y */ select 2; // c;\nselect 3",
            ["select 1", "select 2", "select 3"],
            id="comments",
        ),
        pytest.param(
            "select 1 -- trailing; comment\n, 2;",
            ["select 1 -- trailing; comment\n, 2"],
            id="inner-comment-kept",
        ),
        pytest.param("-- only a comment;\n;\n  ;", [], id="empty-pieces"),
        pytest.param(
            "select 'https://x//y'; select 2", ["select 'https://x//y'", "select 2"], id="slashes-in-string"
        ),
    ],
)
def test_split_statements(sql, expected):
    """Quotes, $$ bodies and comments never end a statement; leading comments are dropped."""
    assert split_statements(sql) == expected


def test_statements_are_numbered_across_scripts_with_lines():
    """Statements carry a run-wide number, their script and their line in it."""
    scripts = [Script("a.sql", "-- head\nselect 1;\n\nselect 2;\n"), Script("b.sql", "select 3;")]
    statements = list(iter_statements(scripts))
    assert [(s.number, s.script, s.line, s.sql) for s in statements] == [
        (1, "a.sql", 2, "select 1"),
        (2, "a.sql", 4, "select 2"),
        (3, "b.sql", 1, "select 3"),
    ]
    assert statements[0].excerpt(6) == "sel..."


@pytest.mark.parametrize("target", sorted(REQUIRED_VARS))
def test_cuts_where_the_snowflake_connector_cuts(target):
    """Every rendered target splits at the same places as the connector's own splitter."""
    util_text = pytest.importorskip("snowflake.connector.util_text")
    for script in render(target, REQUIRED_VARS[target], environ={}):
        theirs = [piece for piece, _ in util_text.split_statements(io.StringIO(script.sql))]
        # The connector keeps each statement's leading comments and its `;`; we drop both, so each
        # of its pieces is one of our statements (or only a comment).
        ours = [split_statements(piece) for piece in theirs]
        assert all(len(pieces) <= 1 for pieces in ours), script.name
        assert [s for pieces in ours for s in pieces] == split_statements(script.sql), script.name
