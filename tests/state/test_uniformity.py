"""Both backends implement the whole ``State`` interface, with the base's parameters."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from udf_service.errors import ConfigError
from udf_service.state import State, state_from_url
from udf_service.state.redis import RedisState
from udf_service.state.sqlite import SQLiteState

BACKENDS = [pytest.param(SQLiteState, id="sqlite"), pytest.param(RedisState, id="redis")]
PUBLIC = sorted(State.__abstractmethods__)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", PUBLIC)
def test_backend_defines_every_public_method(backend: type[State], name: str) -> None:
    """Each backend defines every abstract method of State itself, with the same parameters
    (the derived ones, such as get_int, are the base's, built on them)."""
    assert name in vars(backend), f"{backend.__name__} does not define {name}"
    base, impl = inspect.signature(getattr(State, name)), inspect.signature(vars(backend)[name])
    assert [(p.name, p.default) for p in impl.parameters.values()] == [
        (p.name, p.default) for p in base.parameters.values()
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_nothing_abstract_remains(backend: type[State]) -> None:
    """A backend class has no abstract method left and opens from a URL."""
    assert not backend.__abstractmethods__
    assert inspect.ismethod(backend.from_url)


def test_state_from_url_refuses_unknown_schemes() -> None:
    """An unknown URL scheme is a ConfigError."""
    with pytest.raises(ConfigError):
        state_from_url("postgres://localhost/db")


def test_package_imports_without_redis(tmp_path) -> None:
    """Without the redis module the state package, the Redis module and SQLite still work."""
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "import udf_service.state.redis\n"
        "from udf_service.state import state_from_url\n"
        f"state_from_url('sqlite:///{tmp_path}/s.db').ping()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
