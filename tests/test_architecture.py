"""The layers of docs/architecture.md, checked on the imports themselves (ast, nothing imported).

Imports run one way: wire formats (`protocols/`), upstream (`sixsense/`) and state (`state/`) sit
on the shared kernel only; the engine sits on those but knows no wire format, Flask or Snowflake
side; routes and the entry points sit on top. A test that names the import keeps it from coming
back through a convenient shortcut.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "udf_service"

# Modules every layer may use: the error tree, the clock, the input and output value models.
KERNEL = frozenset(
    {
        "udf_service.__version__",
        "udf_service.errors",
        "udf_service.clock",
        "udf_service.leads",
        "udf_service.values",
    }
)
# Pure helpers of a forbidden library that a low layer may still use (header parsing, no Flask).
PURE_FOREIGN = ("werkzeug.http",)
# The engine: dedupe, cache, guards, the fetch queue. It knows no wire format and no web framework.
ENGINE = (
    "udf_service.engine",
    "udf_service.fetching",
    "udf_service.waiting",
    "udf_service.guards",
    "udf_service.failures",
    "udf_service.recent_errors",
    "udf_service.usage",
)
# What sits above the engine: the Snowflake side, the other entry points, the wiring.
ABOVE_ENGINE = (
    "udf_service.protocols",
    "udf_service.routes",
    "udf_service.app",
    "udf_service.runtime",
    "udf_service.background",
    "udf_service.snowflake_jobs",
    "udf_service.redshift_lambda",
    "udf_service.server",
    "udf_service.cli",
    "flask",
    "werkzeug",
    "snowflake",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, name: str | None = None) -> Iterator[str]:
    """Every module `path` (module `name`) imports, absolute, including imports inside functions."""
    name = name or module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if not node.level:
                yield node.module or ""
                continue
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            if node.module:
                yield ".".join([*base, node.module])
            else:  # `from . import metrics`: each name may be a module
                yield from (".".join([*base, alias.name]) for alias in node.names)


def within(module: str, prefixes: tuple[str, ...] | frozenset[str]) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def ours(module: str) -> bool:
    return within(module, ("udf_service",))


def files(*modules: str) -> list[Path]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if within(module_name(path), modules):
            found.append(path)
    assert found, modules
    return found


def offending(paths: list[Path], allowed: frozenset[str], forbidden: tuple[str, ...] = ()) -> list[str]:
    """`file: import` for each of our imports outside `allowed`, and each import in `forbidden`."""
    found = []
    for path in paths:
        for module in imports(path):
            own_layer = within(module, allowed)
            foreign = within(module, forbidden) and not within(module, PURE_FOREIGN)
            if (ours(module) and not own_layer) or foreign:
                found.append(f"{module_name(path)}: {module}")
    return found


@pytest.mark.parametrize(
    ("layer", "allowed"),
    [
        pytest.param("udf_service.protocols", KERNEL, id="protocols-on-kernel-only"),
        pytest.param("udf_service.sixsense", KERNEL, id="sixsense-on-kernel-only"),
        pytest.param("udf_service.state", KERNEL, id="state-on-kernel-only"),
    ],
)
def test_lowest_layers_import_only_the_kernel(layer: str, allowed: frozenset[str]) -> None:
    """Wire formats know nothing of 6sense or the engine; 6sense and state know nothing of Snowflake."""
    own = frozenset({layer}) | allowed
    assert offending(files(layer), own, forbidden=("flask", "werkzeug", "snowflake")) == []


def test_the_engine_knows_no_wire_format_and_no_web_framework() -> None:
    """The engine is called by every route and entry point, so it imports none of them."""
    assert offending(files(*ENGINE), frozenset({"udf_service"}), forbidden=ABOVE_ENGINE) == []


def test_the_kernel_imports_nothing_of_ours() -> None:
    """Errors, clock and the value models are the floor: every layer may import them."""
    paths = [
        *files(*(module for module in KERNEL if module != "udf_service.__version__")),
        PACKAGE / "__init__.py",
    ]
    assert offending(paths, frozenset({"udf_service.__version__"})) == []


def test_the_check_sees_a_bad_import(tmp_path: Path) -> None:
    """The walker resolves relative imports, so a shortcut written as `from ..engine` is caught."""
    path = PACKAGE / "protocols" / "snowflake.py"
    tree_imports = set(imports(path))
    assert "udf_service.errors" in tree_imports and "udf_service.protocols.compression" in tree_imports
    bad = tmp_path / "bad.py"
    bad.write_text("from ..engine import Engine\n")
    assert list(imports(bad, "udf_service.protocols.bad")) == ["udf_service.engine"]
