"""The built artefacts and a virtualenv with only the wheel installed: what a user gets from pip.

`build_and_install(base)` runs `python -m build` on the checkout (the sdist, then the wheel built
from that sdist, so a file missing from the sdist breaks the wheel too), `twine check --strict`
on both, makes a fresh virtualenv under `base` (outside the checkout) and installs the wheel into
it, not editable. `shared_install(root)` does that once per test session, pytest-xdist workers
included (they share one build through a lock file).

`Installed.run` then runs commands the way a user in an empty directory does: the venv's
`udf-service` on PATH, no UDF_*/SIXSENSE_*/SNOWFLAKE_* settings (so no UDF_SQL_DIR), nothing
pointing back at the checkout.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: Settings a developer's shell may carry; a user's fresh shell has none of them.
_SCRUBBED_PREFIXES = ("SIXSENSE_", "UDF_", "SNOWFLAKE_")
_SCRUBBED = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PROMETHEUS_MULTIPROC_DIR"}


def _run(command: list[str], timeout_s: float, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout_s)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result


@dataclass(frozen=True)
class Installed:
    dist: Path
    venv: Path
    twine_output: str
    seconds: dict[str, float]

    @property
    def wheel(self) -> Path:
        (wheel,) = self.dist.glob("*.whl")
        return wheel

    @property
    def sdist(self) -> Path:
        (sdist,) = self.dist.glob("*.tar.gz")
        return sdist

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    @property
    def program(self) -> list[str]:
        """The installed console script, for `start_service(program=...)`."""
        return [str(self.bin / "udf-service")]

    def overrides(self) -> dict[str, str]:
        """What makes a child find the venv's commands first, and no other packages: no user
        site-packages, and an empty PYTHONPATH (Python ignores an empty one), for callers such as
        `start_service` that start from this process's environment rather than `environment()`."""
        return {
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "VIRTUAL_ENV": str(self.venv),
            "PYTHONNOUSERSITE": "1",
            "PYTHONPATH": "",
        }

    def environment(self, **extra: str) -> dict[str, str]:
        """A user's shell with the venv activated: none of our settings, plus `extra`."""
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES) and k not in _SCRUBBED
        }
        return env | self.overrides() | extra

    def run(
        self, *args: str, cwd: Path, env: dict[str, str] | None = None, timeout_s: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """`udf-service ARGS...` from the venv, in `cwd`; never raises on a non-zero exit."""
        return subprocess.run(
            [*self.program, *args],
            cwd=cwd,
            env=env if env is not None else self.environment(),
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )

    def python(self, code: str, cwd: Path) -> str:
        """Run `code` in the venv's interpreter; its stdout."""
        result = subprocess.run(
            [str(self.bin / "python"), "-c", code],
            cwd=cwd,
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout


def build_and_install(base: Path) -> Installed:
    """Build, check, and install into a new venv, all under `base`; each step bounded."""
    if base.resolve().is_relative_to(REPO):
        raise RuntimeError(f"{base} is inside the checkout; the wheel must be tried outside it")
    seconds: dict[str, float] = {}
    dist, venv = base / "dist", base / "venv"

    started = time.monotonic()
    _run([sys.executable, "-m", "build", "--outdir", str(dist), str(REPO)], 300, base)
    seconds["build"] = time.monotonic() - started

    artefacts = sorted(str(p) for p in dist.iterdir())
    twine = _run([sys.executable, "-m", "twine", "check", "--strict", *artefacts], 120, base)

    started = time.monotonic()
    _run([sys.executable, "-m", "venv", str(venv)], 120, base)
    (wheel,) = dist.glob("*.whl")
    # The lock file as constraints: the same dependency versions the Docker image installs, and no
    # resolution drift between runs. Not editable, not from the source tree: the wheel file.
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-input"]
    _run([*pip, "-c", str(REPO / "requirements.lock"), str(wheel)], 600, base)
    seconds["install"] = time.monotonic() - started
    return Installed(dist, venv, twine.stdout + twine.stderr, seconds)


def shared_install(root: Path) -> Installed:
    """`build_and_install(root / "wheel")` once for every process of this test session.

    Under pytest-xdist each worker has its own session fixtures; `root` is then the session's
    common temp dir, and the first worker to take the lock builds while the others wait for it
    and read what it recorded.
    """
    base = root / "wheel"
    base.mkdir(exist_ok=True)
    record = base / "installed.json"
    with (base / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if record.exists():
            fields = json.loads(record.read_text())
            return Installed(
                Path(fields["dist"]), Path(fields["venv"]), fields["twine_output"], fields["seconds"]
            )
        installed = build_and_install(base)
        record.write_text(json.dumps(asdict(installed), default=str))
        return installed
