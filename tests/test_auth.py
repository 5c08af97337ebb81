"""The optional shared secret (issue 7, item 5): `UDF_AUTH_HEADER` / `UDF_AUTH_SECRET`.

Built in-process with the app factory, as `udf-service serve` builds it (no upstream is ever called
here). The end-to-end check through gunicorn and a Snowflake-style caller is
`test_shared_secret_required_when_configured` in tests/test_service.py.
"""

from __future__ import annotations

import gzip
import hmac
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

import udf_service.app as app_module
from udf_service.app import create_app
from udf_service.config import Settings
from udf_service.errors import ConfigError

HEADER = "sf-custom-udf-secret"
SECRET = "Zq3-secret-0123456789abcdef"
BATCH = b'{"data": [[0, null, "US"]]}'
PROTECTED = [
    pytest.param("POST", "/snowflake/people/full", id="post-full"),
    pytest.param("GET", "/snowflake/people/full", id="poll"),
    pytest.param("POST", "/snowflake/people/full/cached", id="cached"),
    pytest.param("POST", "/snowflake/people/full/estimate", id="estimate"),
    pytest.param("GET", "/metrics", id="metrics"),
    pytest.param("GET", "/usage", id="usage"),
    pytest.param("GET", "/openapi.json", id="openapi"),
]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    settings = Settings(
        api_token="t",
        base_url="http://127.0.0.1:9",  # nothing listens: no test here may reach the upstream
        state_url=f"sqlite:///{tmp_path}/state.db",
        auth_header=HEADER,
        auth_secret=SECRET,
    )
    app = create_app(settings, background=False)
    yield app
    app.extensions["udf"].shutdown(grace_s=0)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _call(client: FlaskClient, method: str, path: str, headers: dict[str, str]) -> Any:
    headers = {"sf-external-function-query-batch-id": "b-1", **headers}
    return client.open(path, method=method, data=BATCH if method == "POST" else None, headers=headers)


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize(
    "given",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("wrong", id="wrong"),
        pytest.param(SECRET[:-1], id="prefix"),
        pytest.param(SECRET + "x", id="longer"),
        pytest.param(SECRET.upper(), id="other-case"),
    ],
)
def test_missing_or_wrong_secret_is_401_json(
    client: FlaskClient, method: str, path: str, given: str | None
) -> None:
    """Every route but /healthz and /readyz is a 401 `{"error"}` without the exact secret (never echoed)."""
    response = _call(client, method, path, {} if given is None else {HEADER: given})
    assert response.status_code == 401
    assert response.is_json and response.get_json() == {"error": f"missing or wrong {HEADER} header"}
    assert SECRET not in response.get_data(as_text=True)


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_right_secret_passes(client: FlaskClient, method: str, path: str) -> None:
    """With the secret (header name in any case) the request reaches its route."""
    response = _call(client, method, path, {HEADER.upper(): SECRET})
    assert response.status_code != 401, response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_stay_open(client: FlaskClient, path: str) -> None:
    """Load balancer and orchestrator probes need no secret."""
    assert client.get(path).status_code == 200


def test_comparison_is_constant_time(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """The secret is checked by hmac.compare_digest on bytes, once per protected request, not for probes."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(given: bytes, expected: bytes) -> bool:
        calls.append((given, expected))
        return real(given, expected)

    monkeypatch.setattr(app_module.hmac, "compare_digest", spy)
    assert _call(client, "POST", "/snowflake/people/full/estimate", {HEADER: "wrong"}).status_code == 401
    assert _call(client, "POST", "/snowflake/people/full/estimate", {HEADER: SECRET}).status_code == 200
    assert client.get("/healthz").status_code == 200
    assert calls == [(b"wrong", SECRET.encode()), (SECRET.encode(), SECRET.encode())]


def test_unauthenticated_body_is_never_read(client: FlaskClient) -> None:
    """A gzip bomb without the secret is refused with 401 before anything is inflated or parsed."""
    bomb = gzip.compress(b" " * (50 * 1024 * 1024))
    response = client.post("/snowflake/people/full", data=bomb, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 401


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({"UDF_AUTH_HEADER": HEADER}, id="header-only"),
        pytest.param({"UDF_AUTH_SECRET": SECRET}, id="secret-only"),
    ],
)
def test_half_configured_secret_refuses_to_start(env: dict[str, str]) -> None:
    """UDF_AUTH_HEADER and UDF_AUTH_SECRET come together, or the service does not start."""
    with pytest.raises(ConfigError, match="UDF_AUTH_HEADER and UDF_AUTH_SECRET"):
        Settings.from_env({"SIXSENSE_SIMULATE": "1", **env})
