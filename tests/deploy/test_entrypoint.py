"""The image's exact start command, run outside a container (no Docker engine here).

Reads ENTRYPOINT + CMD (exec form) and the runtime stage's ENV from the Dockerfile, resolves the
executable to the one in this virtualenv, overrides only what cannot work outside the image
(loopback host, a free port, a temporary SQLite file, the simulator instead of a token), then
polls GET /healthz and stops the server with SIGTERM, as ECS does.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .helpers import read_dockerfile, require_tool

pytestmark = pytest.mark.e2e  # starts the image's command

START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 20
# After the first 200, keep polling this long before SIGTERM, so the remaining gunicorn workers
# finish booting: a SIGTERM during a worker's boot is a different scenario from a routine stop.
SETTLE_S = 2.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthz_status(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None


def image_command() -> list[str]:
    dockerfile = read_dockerfile()
    return dockerfile.exec_form("ENTRYPOINT") + dockerfile.exec_form("CMD")


def image_environment(tmp_path: Path, port: int, bin_dir: Path) -> dict[str, str]:
    """The image's ENV, with the few values that only make sense inside the container replaced."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UDF_", "SIXSENSE_"))}
    image_env = read_dockerfile().env()
    image_env.pop("PATH")  # /opt/venv/bin exists only in the image; this venv's bin/ stands in
    env.update(image_env)
    env.update(
        {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "SIXSENSE_SIMULATE": "1",
            "UDF_HOST": "127.0.0.1",
            "UDF_PORT": str(port),
            "UDF_STATE_URL": f"sqlite:///{tmp_path}/s.db",
        }
    )
    return env


def _stop(proc: subprocess.Popen) -> int:
    """SIGTERM the server (pid we started); SIGKILL its process group only if it won't stop."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # our own session: the server and its workers only
        proc.wait(timeout=STOP_TIMEOUT_S)
        pytest.fail(f"server ignored SIGTERM for {STOP_TIMEOUT_S}s")


def test_image_command_serves_healthz(tmp_path):
    """The image's ENTRYPOINT+CMD and ENV start a server that answers GET /healthz, and SIGTERM stops it."""
    command = image_command()
    assert command, "Dockerfile has no exec-form ENTRYPOINT/CMD"
    executable = require_tool(command[0], hint="install the project into the venv (pip install -e .)")
    port = _free_port()
    env = image_environment(tmp_path, port, Path(sys.executable).parent)
    log_path = tmp_path / "server.log"

    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(executable), *command[1:]],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    status, deadline, healthy_since = None, time.monotonic() + START_TIMEOUT_S, None
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            status = _healthz_status(port)
            if status != 200:
                healthy_since = None
            elif healthy_since is None:
                healthy_since = time.monotonic()
            elif time.monotonic() - healthy_since >= SETTLE_S:
                break
            time.sleep(0.25)
    finally:
        returncode = _stop(proc)

    log = log_path.read_text(errors="replace")[-4000:]
    shown = " ".join([str(executable), *command[1:]])
    assert status == 200, (
        f"`{shown}` did not answer GET /healthz with 200 within {START_TIMEOUT_S}s "
        f"(last status {status}, exit code {proc.returncode}). Server output:\n{log}"
    )
    assert returncode == 0, f"`{shown}` exited {returncode} on SIGTERM, not 0. Server output:\n{log}"
