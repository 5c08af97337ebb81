"""Shared helpers for the deployment checks: repository paths, tool lookup, a small Dockerfile
reader and cached python-hcl2 parsing of the Terraform module.

Self-contained on purpose (no fixtures from tests/conftest.py): these checks only read files and
start tools, so they work while the rest of the suite is still being built.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
LOCKFILE = REPO / "requirements.lock"
PYPROJECT = REPO / "pyproject.toml"
TF_ROOT = REPO / "terraform"
TF_MODULE = TF_ROOT / "aws"
TF_EXAMPLE = TF_MODULE / "examples" / "minimal"
SPCS_SPEC = REPO / "deploy" / "spcs" / "spec.yaml"

# The gateway routes (DESIGN.md "HTTP surface"); each needs POST and GET (async polls).
ROUTES = (
    "snowflake/people/full",
    "snowflake/people/full/cached",
    "snowflake/people/full/estimate",
)

# Environment names the service reads (DESIGN.md "Configuration" and udf_service/config.py).
CONTRACT_ENV = {
    "SIXSENSE_API_TOKEN",
    "SIXSENSE_BASE_URL",
    "SIXSENSE_SIMULATE",
    "SIXSENSE_RATE_LIMIT",
    "SIXSENSE_DEFAULT_COUNTRY",
    "SIXSENSE_CONNECT_TIMEOUT_S",
    "SIXSENSE_READ_TIMEOUT_S",
    "UDF_HOST",
    "UDF_PORT",
    "UDF_WORKERS",
    "UDF_THREADS",
    "UDF_STATE_URL",
    "UDF_SYNC_BUDGET_S",
    "UDF_AUTH_HEADER",
    "UDF_AUTH_SECRET",
    "UDF_DAILY_CALL_BUDGET",
    "UDF_SQL_DIR",
    "UDF_LOG_LEVEL",
    "UDF_MAX_BODY_BYTES",
    "UDF_CACHE_TTL_OK_S",
    "UDF_CACHE_TTL_NO_MATCH_S",
    "UDF_UPSTREAM_CONCURRENCY",
    "UDF_RATE_HEADROOM",
    "UDF_QUOTA_COOLDOWN_S",
    "UDF_JOB_TTL_S",
}
SECRET_ENV = {"SIXSENSE_API_TOKEN", "UDF_AUTH_SECRET"}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require_tool(name: str, path: Path | None = None, hint: str = "") -> Path:
    """Find a tool next to the running interpreter (the venv), else on PATH.

    Missing tool: skip locally, fail in CI (CI=true), so a check never silently disappears there.
    """
    candidates = [path] if path else []
    candidates.append(Path(sys.executable).parent / name)  # not resolved: keep the venv's bin/
    for candidate in candidates:
        if candidate and candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    message = f"{name} not found{': ' + hint if hint else ''}"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


# -----------------------------------------------------------------------------------------------
# Dockerfile
# -----------------------------------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    name: str | None
    platform: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Dockerfile:
    args: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def all(self, keyword: str, stage: Stage | None = None) -> list[str]:
        stages = [stage] if stage else self.stages
        return [arg for s in stages for kw, arg in s.instructions if kw == keyword]

    def env(self, stage: Stage | None = None) -> dict[str, str]:
        """ENV of a stage (default: the final one), later lines winning, ${VAR} left as written."""
        result: dict[str, str] = {}
        for arg in self.all("ENV", stage or self.final):
            words = shlex.split(arg)
            if len(words) == 2 and "=" not in words[0]:  # legacy `ENV KEY value`
                result[words[0]] = words[1]
                continue
            for word in words:
                key, _, value = word.partition("=")
                result[key] = value
        return result

    def exec_form(self, keyword: str) -> list[str]:
        """The final stage's last ENTRYPOINT or CMD in JSON (exec) form; [] when absent."""
        found = self.all(keyword, self.final)
        if not found:
            return []
        value = json.loads(found[-1])
        assert isinstance(value, list) and all(isinstance(v, str) for v in value), found[-1]
        return value


def _logical_lines(text: str) -> list[str]:
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):  # comment inside a continuation
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    if current:
        lines.append(current)
    return lines


@functools.cache
def read_dockerfile(path: Path = DOCKERFILE) -> Dockerfile:
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in _logical_lines(path.read_text()):
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            words = rest.split()
            platform = next((w.split("=", 1)[1] for w in words if w.startswith("--platform=")), None)
            words = [w for w in words if not w.startswith("--")]
            base = words[0]
            for key, value in args.items():
                base = base.replace("${" + key + "}", value).replace("$" + key, value)
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=base, name=name, platform=platform))
        elif not stages and keyword == "ARG":
            key, _, value = rest.partition("=")
            args[key] = value
        elif stages:
            stages[-1].instructions.append((keyword, rest))
    return Dockerfile(args=args, stages=stages)


# -----------------------------------------------------------------------------------------------
# Terraform (python-hcl2 8.x, old-style output: see reference/tooling.md section 4)
# -----------------------------------------------------------------------------------------------


def tf_files(root: Path = TF_ROOT) -> list[Path]:
    """Every .tf file under root, skipping what `terraform init` downloads into .terraform/."""
    return sorted(p for p in root.rglob("*.tf") if ".terraform" not in p.parts)


@functools.cache
def load_tf(path: Path) -> dict:
    import hcl2

    options = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)
    with path.open() as handle:
        return hcl2.load(handle, serialization_options=options)


def _module_blocks(kind: str, directory: Path) -> list[dict]:
    return [block for p in sorted(directory.glob("*.tf")) for block in load_tf(p).get(kind, [])]


def tf_resources(directory: Path = TF_MODULE) -> dict[tuple[str, str], dict]:
    """(type, name) -> body for every resource block of the module (not its examples)."""
    found: dict[tuple[str, str], dict] = {}
    for block in _module_blocks("resource", directory):
        for rtype, named in block.items():
            for rname, body in named.items():
                assert (rtype, rname) not in found, f"duplicate resource {rtype}.{rname}"
                found[(rtype, rname)] = body
    return found


def tf_named(kind: str, directory: Path = TF_MODULE) -> dict[str, dict]:
    """name -> body for variable/output blocks."""
    return {name: body for block in _module_blocks(kind, directory) for name, body in block.items()}


def tf_locals(directory: Path = TF_MODULE) -> dict[str, object]:
    merged: dict[str, object] = {}
    for block in _module_blocks("locals", directory):
        for key, value in block.items():
            assert key not in merged, f"local {key} defined twice"
            merged[key] = value
    return merged


def first(block_list: object) -> dict:
    """python-hcl2 returns nested blocks as lists; most of ours occur once."""
    assert isinstance(block_list, list) and block_list, block_list
    return block_list[0]
