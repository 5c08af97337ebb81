"""requirements.lock pins the runtime closure exactly and cannot drift from pyproject.toml."""

from __future__ import annotations

import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from .helpers import LOCKFILE, PYPROJECT


def _lock() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in LOCKFILE.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", f"not an exact pin: {line}"
        name = canonicalize_name(requirement.name)
        assert name not in pins, f"{name} pinned twice"
        pins[name] = Version(specifiers[0].version)
    return pins


def _project() -> dict:
    return tomllib.loads(PYPROJECT.read_text())["project"]


def test_lock_has_only_exact_pins():
    """Every line of requirements.lock is `name==version`, each name once."""
    assert _lock()


def test_every_runtime_dependency_is_pinned_within_its_range():
    """Each [project].dependencies entry is pinned in the lock at a version its range allows."""
    pins = _lock()
    for spec in _project()["dependencies"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is a runtime dependency but not in requirements.lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {name}=={pins[name]}, outside pyproject's {requirement.specifier}"
        )


def test_lock_has_no_test_only_dependencies():
    """Test tools (the test extra) stay out of the image unless the runtime needs them too."""
    pins = _lock()
    runtime = {canonicalize_name(Requirement(s).name) for s in _project()["dependencies"]}
    test_only = {
        canonicalize_name(Requirement(s).name)
        for s in _project().get("optional-dependencies", {}).get("test", [])
    } - runtime
    assert not test_only & set(pins), f"test-only packages in the lock: {sorted(test_only & set(pins))}"
    assert canonicalize_name(_project()["name"]) not in pins
