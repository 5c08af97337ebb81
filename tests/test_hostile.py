"""Hostile input against the live service (gunicorn on loopback), and its OpenAPI contract (schemathesis).

Issue 7, item 4: generated bodies (random JSON shapes, huge strings, deep nesting, NaN and Infinity,
invalid UTF-8, 10 MB bodies, compression bombs, thousands of headers) get a 4xx with a JSON error or
a per-row status: never a 500, never a hang, never a memory blow-up. The malformed requests that
tests/test_service.py already sends (not JSON, no "data", bad row number, 12 arguments, brotli, bad
gzip, 10 MB + 10 bytes, an 11 MB gzip bomb) are not repeated here.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from udf_service.sixsense.flatten import OUTPUT_KEYS, STATUSES
from udf_service.testing.processes import ServiceProcess as Service
from udf_service.testing.processes import start_service, start_simulator

pytestmark = pytest.mark.e2e  # one live service: gunicorn's own limits and memory are the subject

MB = 1024 * 1024
LIMIT = 10 * MB  # UDF_MAX_BODY_BYTES default
ROUTES = ["/snowflake/people/full", "/snowflake/people/full/cached", "/snowflake/people/full/estimate"]
ESTIMATE_KEYS = {"would_call", "reason", "cached_until"}
ANSWER_WITHIN_S = 10.0  # UDF_SYNC_BUDGET_S is 2 here: nothing may take longer than this
RSS_GROWTH_LIMIT_MB = 256
OPENAPI = Path(__file__).resolve().parent.parent / "udf_service" / "openapi.json"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One simulator and one service (2 workers) for the whole module."""
    directory = tmp_path_factory.mktemp("hostile")
    simulator = start_simulator()
    try:
        env = {"UDF_SYNC_BUDGET_S": "2", "SIXSENSE_RATE_LIMIT": "60000/minute"}
        service = start_service(
            simulator.url, f"sqlite:///{directory}/state.db", directory / "svc.log", env=env
        )
        try:
            yield service
        finally:
            service.stop()
    finally:
        simulator.stop()


def peak_rss_mb(service: Service) -> float:
    """The largest VmHWM (peak resident set) over the service's worker processes, in MB."""
    peaks = []
    for pid in service.worker_pids():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        peaks += [int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM:")]
    return max(peaks, default=0.0)


def check_answer(response: requests.Response, seconds: float, sent_rows: list[Any] | None = None) -> None:
    """The rules for any answer: 200/202 or a 4xx, JSON with `error` when 4xx, rows echoed when 200."""
    assert seconds < ANSWER_WITHIN_S, f"answered after {seconds:.1f} s"
    assert response.status_code in {200, 202, 400, 401, 404, 405, 409, 413, 415, 431, 503}, response.text[
        :300
    ]
    if response.status_code == 202:
        return
    assert response.headers.get("Content-Type", "").startswith("application/json"), response.text[:300]
    document = response.json()
    if response.status_code != 200:
        assert isinstance(document, dict) and set(document) == {"error"}, document
        assert isinstance(document["error"], str) and document["error"]
        return
    data = document["data"]
    if sent_rows is not None:
        assert [row[0] for row in data] == [row[0] for row in sent_rows], "row numbers echoed in order"
    for _, value in data:
        if set(value) == ESTIMATE_KEYS:
            continue
        assert list(value) == list(OUTPUT_KEYS) and value["status"] in STATUSES, value


def timed_post(service: Service, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    started = time.monotonic()
    response = requests.post(
        f"{service.url}{path}", data=body, headers=headers or {}, timeout=ANSWER_WITHIN_S + 5
    )
    return response, time.monotonic() - started


# ------------------------------------------------------------------------------ generated (hypothesis)

leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.emails()
    | st.sampled_from(["US", "usa", "Germany", "", "  ", "jane@company3.com"])
)
any_json = st.recursive(
    leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=25,
)
row_number = st.integers(min_value=-(2**63), max_value=2**64 - 1) | leaf
argument = st.emails() | st.sampled_from(["US", "DE", None, ""]) | any_json
lead_object = st.fixed_dictionaries({"email": st.emails(), "country": st.sampled_from(["US", "DE", None])})
row = st.tuples(row_number, st.lists(argument, max_size=11) | lead_object.map(lambda obj: [obj])).map(
    lambda pair: [pair[0], *pair[1]]
)
document = st.one_of(
    any_json,
    st.fixed_dictionaries({"data": any_json}),
    st.fixed_dictionaries({"data": st.lists(row, max_size=15)}),
    st.fixed_dictionaries({"data": st.lists(row, max_size=15)}, optional={"extra": any_json}),
)


@st.composite
def raw_body(draw: st.DrawFn) -> bytes:
    """A body as bytes (NaN/Infinity literals allowed), sometimes with invalid UTF-8 spliced in."""
    doc = draw(document)
    body = json.dumps(doc, allow_nan=True, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        at = draw(st.integers(0, len(body)))
        body = body[:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x00"])) + body[at:]
    return body


def _sent_rows(raw: bytes) -> list[Any] | None:
    """The rows the service must echo, when `raw` parses (with the service's parser) to a good batch."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        return None
    rows = doc["data"]
    well_formed = all(isinstance(r, list) and r and type(r[0]) is int and len(r) <= 11 for r in rows)
    return rows if well_formed else None


@settings(
    max_examples=220,
    deadline=int(ANSWER_WITHIN_S * 1000),
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(
    body=raw_body(), path=st.sampled_from(ROUTES), encoding=st.sampled_from(["identity", "gzip", "deflate"])
)
def test_generated_bodies_get_json_4xx_or_rows(live: Service, body: bytes, path: str, encoding: str) -> None:
    """Any generated body, plain or compressed: a JSON 4xx or 200 with every row echoed; no 5xx, no hang."""
    raw = body
    sent = _sent_rows(raw)
    headers = {"sf-external-function-query-batch-id": f"hyp-{uuid.uuid4().hex}"}
    if encoding == "gzip":
        raw, headers["Content-Encoding"] = gzip.compress(raw), "gzip"
    elif encoding == "deflate":
        raw, headers["Content-Encoding"] = zlib.compress(raw), "deflate"
    response, seconds = timed_post(live, path, raw, headers)
    check_answer(response, seconds, sent)
    if sent is not None:
        assert response.status_code in {200, 202}, response.text[:300]


header_name = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=30)
header_value = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200).map(
    str.lstrip
)
known_header = st.sampled_from(
    ["content-encoding", "sf-external-function-query-batch-id", "sf-external-function-current-query-id",
     "accept-encoding", "content-type", "sf-custom-anything", "transfer-encoding-x"]
)  # fmt: skip


@settings(
    max_examples=80,
    deadline=int(ANSWER_WITHIN_S * 1000),
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(
    headers=st.dictionaries(known_header | header_name, header_value, max_size=40),
    path=st.sampled_from(ROUTES),
)
def test_generated_headers_never_5xx(live: Service, headers: dict[str, str], path: str) -> None:
    """Arbitrary header names and values on a valid batch: a JSON 4xx or 200/202, never a 5xx or a hang."""
    rows = [[0, "jane@company3.com", "US"], [1, None, "US"]]
    response, seconds = timed_post(live, path, orjson.dumps({"data": rows}), headers)
    check_answer(response, seconds, None if "content-encoding" in headers else rows)


# ------------------------------------------------------------------------------ hand-made hostile bodies


def _many_rows(size: int) -> bytes:
    """A well-formed batch just under `size` bytes: as many tiny rows as fit (NULL email and country)."""
    parts, total, number = [], 11, 0
    while True:
        part = b"[%d,null,null]," % number
        if total + len(part) > size:
            break
        parts.append(part)
        total, number = total + len(part), number + 1
    return b'{"data":[' + b"".join(parts).rstrip(b",") + b"]}"


def _bomb(kind: str, inflated: int) -> bytes:
    data = b'{"data": [' + b" " * inflated
    if kind == "gzip":
        return gzip.compress(data, compresslevel=9)
    compressor = zlib.compressobj(
        9, zlib.DEFLATED, -zlib.MAX_WBITS if kind == "raw-deflate" else zlib.MAX_WBITS
    )
    return compressor.compress(data) + compressor.flush()


def _chunks(total: int) -> Iterator[bytes]:
    yield b'{"data": []}'
    for _ in range(total // MB):
        yield b" " * MB


def _deep(levels: int, tail: bytes = b"") -> bytes:
    return b'{"data": [[0, ' + b"[" * levels + b"]" * levels + tail + b"]]}"


# (id, body builder, headers, expected statuses, routes): builders run only when the case runs.
HOSTILE_CASES: list[tuple[str, Any, dict[str, str], set[int], list[str]]] = [
    ("nan", lambda: b'{"data": [[0, NaN, "US"]]}', {}, {400}, ROUTES),
    ("infinity", lambda: b'{"data": [[0, "a@company1.com", Infinity]]}', {}, {400}, ROUTES[:1]),
    ("minus-infinity-row", lambda: b'{"data": [[-Infinity, "a@company1.com", "US"]]}', {}, {400}, ROUTES[:1]),
    ("invalid-utf8", lambda: b'{"data": [[0, "\xff\xfe@company1.com", "US"]]}', {}, {400}, ROUTES),
    ("lone-surrogate", lambda: b'{"data": [[0, "\\ud800@company1.com", "US"]]}', {}, {400}, ROUTES[:1]),
    ("utf8-bom", lambda: b"\xef\xbb\xbf" + b'{"data": []}', {}, {400}, ROUTES[:1]),
    ("deep-200k", lambda: _deep(200_000), {}, {400}, ROUTES),
    ("deep-1000-arg", lambda: _deep(1000, b', "US"'), {}, {200}, ROUTES[:1]),
    ("9MB-email", lambda: orjson.dumps({"data": [[0, "a" * (9 * MB) + "@x.com", "US"]]}), {}, {200}, ROUTES),
    (
        "1MB-object-key",
        lambda: orjson.dumps({"data": [[0, {"email": "x" * MB, "k" * MB: 1}]]}),
        {},
        {200},
        ROUTES[:1],
    ),
    (
        "row-2^64",
        lambda: b'{"data": [[18446744073709551616, "a@company1.com", "US"]]}',
        {},
        {400},
        ROUTES[:1],
    ),
    ("row-true", lambda: b'{"data": [[true, "a@company1.com", "US"]]}', {}, {400}, ROUTES[:1]),
    ("9MB-data-string", lambda: b'{"data": "' + b"x" * (9 * MB) + b'"}', {}, {400}, ROUTES[:1]),
    ("10MB-of-tiny-rows", lambda: _many_rows(LIMIT - 64), {}, {200, 413}, ROUTES[:1]),
    (
        "rows-mislabelled-gzip",
        lambda: _many_rows(MB),
        {"Content-Encoding": "gzip"},
        {200, 400, 413},
        ROUTES[:1],
    ),
    ("deflate-bomb", lambda: _bomb("deflate", 50 * MB), {"Content-Encoding": "deflate"}, {413}, ROUTES),
    (
        "raw-deflate-bomb",
        lambda: _bomb("raw-deflate", 50 * MB),
        {"Content-Encoding": "deflate"},
        {413},
        ROUTES[:1],
    ),
    ("gzip-bomb-100MB", lambda: _bomb("gzip", 100 * MB), {"Content-Encoding": "GZIP"}, {413}, ROUTES),
    (
        "nested-gzip",
        lambda: gzip.compress(gzip.compress(b" " * LIMIT)),
        {"Content-Encoding": "gzip"},
        {400},
        ROUTES[:1],
    ),
]
HOSTILE = [
    pytest.param(
        build,
        headers,
        statuses,
        route,
        id=f"{name}-{route.rsplit('/', 1)[-1]}",
    )
    for name, build, headers, statuses, routes in HOSTILE_CASES
    for route in routes
]


@pytest.mark.parametrize(("build", "headers", "statuses", "path"), HOSTILE)
def test_hostile_body(
    live: Service, build: Any, headers: dict[str, str], statuses: set[int], path: str
) -> None:
    """Each hostile body gets the expected JSON answer in time, without a memory blow-up of any worker."""
    body, before = build(), peak_rss_mb(live)
    response, seconds = timed_post(live, path, body, headers)
    growth = peak_rss_mb(live) - before
    check_answer(response, seconds)
    assert response.status_code in statuses, response.text[:300]
    assert len(response.content) <= LIMIT, f"{len(response.content)} bytes: Snowflake takes at most 10 MB"
    assert growth < RSS_GROWTH_LIMIT_MB, f"a worker's peak memory grew by {growth:.0f} MB"


def test_chunked_body_over_the_limit_is_413(live: Service) -> None:
    """A chunked body (no Content-Length) past UDF_MAX_BODY_BYTES is a 413, not silently cut to the limit."""
    response, seconds = timed_post(live, ROUTES[0], _chunks(LIMIT + MB))
    check_answer(response, seconds)
    assert response.status_code == 413, response.text[:200]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({f"x-h{i}": "v" for i in range(3000)}, id="3000-headers"),
        pytest.param({f"x-h{i}": "v" for i in range(250)}, id="250-headers"),
        pytest.param({"sf-custom-big": "v" * 20_000}, id="20KB-header"),
        pytest.param({"sf-external-function-query-batch-id": "b" * 16_000}, id="16KB-batch-id"),
    ],
)
def test_header_floods_get_a_json_4xx(live: Service, headers: dict[str, str]) -> None:
    """Thousands of headers or huge ones: a fast JSON 4xx (or the answer); the service stays healthy."""
    body = orjson.dumps({"data": [[0, "jane@company3.com", "US"]]})
    response, seconds = timed_post(live, ROUTES[0], body, headers)
    check_answer(response, seconds)
    assert requests.get(f"{live.url}/healthz", timeout=5).status_code == 200


def test_batch_id_reused_with_other_rows_is_refused(live: Service) -> None:
    """A batch id replayed with other rows never gets the first batch's rows back (409, or its own rows)."""
    batch_id = f"replayed-{uuid.uuid4().hex}"
    headers = {"sf-external-function-query-batch-id": batch_id}
    first = [
        [0, f"{uuid.uuid4().hex[:8]}@company4.com", "US"],
        [1, f"{uuid.uuid4().hex[:8]}@company5.com", "US"],
    ]
    other = [[0, None, "US"], [1, "x@company6.com", "US"], [2, "y@company7.com", "US"]]
    assert requests.post(
        live.function_url, data=orjson.dumps({"data": first}), headers=headers, timeout=30
    ).ok
    response, seconds = timed_post(live, ROUTES[0], orjson.dumps({"data": other}), headers)
    check_answer(response, seconds)
    if response.status_code == 200:
        assert [row[0] for row in response.json()["data"]] == [0, 1, 2], "another batch's rows came back"
    else:
        assert response.status_code == 409, response.text[:200]


# ------------------------------------------------------------------------------ the OpenAPI contract


def test_openapi_document_describes_every_route(live: Service, tmp_path: Path) -> None:
    """GET /openapi.json serves udf_service/openapi.json, documenting exactly the routes the app serves."""
    from udf_service.app import create_app
    from udf_service.config import Settings

    served = requests.get(f"{live.url}/openapi.json", timeout=5).json()
    assert served == json.loads(OPENAPI.read_text())
    settings = Settings(api_token="t", base_url="http://127.0.0.1:9", state_url=f"sqlite:///{tmp_path}/s.db")
    app = create_app(settings, background=False)
    try:
        routes = {
            (rule.rule, method.lower())
            for rule in app.url_map.iter_rules()
            for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
            if rule.endpoint != "static"
        }
    finally:
        app.extensions["udf"].shutdown(grace_s=0)
    documented = {(path, method) for path, item in served["paths"].items() for method in item}
    assert not routes - documented, (
        f"served but not in udf_service/openapi.json: {sorted(routes - documented)}"
    )
    assert not documented - routes, (
        f"documented but not served by create_app(): {sorted(documented - routes)}"
    )


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        pytest.param("PUT", "/snowflake/people/full", {"GET", "POST"}, id="put-function"),
        pytest.param("DELETE", "/healthz", {"GET"}, id="delete-healthz"),
        pytest.param("TRACE", "/snowflake/people/full/estimate", {"POST"}, id="trace-estimate"),
    ],
)
def test_405_is_json_and_lists_the_allowed_methods(
    live: Service, method: str, path: str, allowed: set[str]
) -> None:
    """A wrong method is a 405 JSON error with the `Allow` header RFC 9110 requires."""
    response = requests.request(method, f"{live.url}{path}", timeout=5)
    assert response.status_code == 405 and response.json()["error"]
    assert allowed <= {m.strip() for m in response.headers.get("Allow", "").split(",")}, response.headers


def test_schemathesis_against_the_live_server(live: Service, tmp_path: Path) -> None:
    """schemathesis (all phases, default checks, fixed seed, 25 examples) passes against the live server."""
    st_binary = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    assert st_binary, "schemathesis is not installed (pip install -e '.[test]')"
    # One worker: hypothesis's lambda-source cache is not thread-safe under Python 3.11 (a Runtime
    # Error inside schemathesis, not in the service). The async poll answers an unknown batch id
    # with a documented 503 (Snowflake retries it: a job a restarted backend lost is re-registered),
    # so that one operation runs without the generic "no 5xx" check.
    base = [
        st_binary,
        "--no-color",
        "run",
        str(OPENAPI),
        "--url",
        live.url,
        "--max-examples",
        "25",
        "--seed",
        "20260701",
        "--request-timeout",
        "15",
        "--workers",
        "1",
        "--report",
        "junit",
    ]
    runs = {
        # The stateful phase follows POST -> GET links, which need the excluded poll operation.
        "all": ["--exclude-operation-id", "peopleFullPoll", "--phases", "examples,coverage,fuzzing"],
        "poll": [
            "--include-operation-id",
            "peopleFullPoll",
            "--exclude-checks",
            "not_a_server_error",
            "--phases",
            "examples,coverage,fuzzing",
        ],
        # POST -> GET poll sequences over the links, every operation included.
        "stateful": ["--phases", "stateful", "--exclude-checks", "not_a_server_error"],
    }
    for name, extra in runs.items():
        command = [*base, *extra, "--report-junit-path", str(tmp_path / f"schemathesis-{name}.xml")]
        result = subprocess.run(command, capture_output=True, text=True, timeout=150, cwd=tmp_path)
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
