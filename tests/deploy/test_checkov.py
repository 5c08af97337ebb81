"""checkov over terraform/, from its own virtualenv (it would break python-hcl2 in ours).

Create it with:
    python3 -m venv .venv-checkov && .venv-checkov/bin/pip install checkov==3.3.30
"""

from __future__ import annotations

import re
import subprocess

import pytest

from .helpers import REPO, TF_ROOT, in_ci, tf_files

CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
SKIP = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")


@pytest.fixture(scope="module")
def checkov() -> subprocess.CompletedProcess:
    if not CHECKOV.exists():
        message = (
            f"{CHECKOV} is missing: python3 -m venv .venv-checkov && "
            ".venv-checkov/bin/pip install checkov==3.3.30"
        )
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return subprocess.run(
        [
            str(CHECKOV),
            "-d",
            str(TF_ROOT),
            "--framework",
            "terraform",
            "--skip-download",
            "--compact",
            "--quiet",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.e2e  # runs checkov
def test_checkov_passes(checkov):
    """checkov reports no failed check on the Terraform code."""
    assert checkov.returncode == 0, f"checkov failed:\n{checkov.stdout[-6000:]}\n{checkov.stderr[-2000:]}"
    assert re.search(r"Failed checks: 0\b", checkov.stdout), checkov.stdout[-3000:]


def test_every_checkov_skip_is_justified():
    """Each inline #checkov:skip names a check and gives a real reason."""
    skips = []
    for path in tf_files():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = SKIP.search(line)
            if match:
                skips.append((path.name, number, match.group(1), (match.group(2) or "").strip()))
    assert skips, "expected the documented skips to be found"
    for name, number, check, reason in skips:
        assert re.fullmatch(r"CKV2?_AWS_\d+", check), f"{name}:{number}: odd check id {check}"
        assert len(reason) >= 40, f"{name}:{number}: skip of {check} needs a reason"
