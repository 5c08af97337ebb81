"""A BigQuery stand-in for tests: calls a remote function the way BigQuery does.

Written from the documented protocol (shared/reference/protocols.md section 3): rows split into
requests of at most `max_batching_rows` calls (exactly one call per request under short-circuit
evaluation), each a JSON POST with `requestId`, `caller`, `sessionUser`, the optional
`userDefinedContext` and `calls`; retries of 408, 429, 500, 503 and 504 and of transport errors,
with the same request; any other non-200 fails the query with the `errorMessage`. A 200 must be a
JSON object whose `replies` has exactly one value per call; for RETURNS JSON each value is a JSON
value (we check for an object, the people_full contract), otherwise the query fails.
"""

from __future__ import annotations

import itertools
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

RETRIED = frozenset({408, 429, 500, 503, 504})
_job_counter = itertools.count()


class RemoteFunctionError(Exception):
    """What BigQuery would turn into a failed query; `status` is the HTTP status, if any."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class CallStats:
    requests: int = 0
    retries: int = 0
    statuses: list[int] = field(default_factory=list)


class BigQueryCaller:
    def __init__(
        self,
        url: str,
        *,
        max_batching_rows: int = 50,
        parallel: int = 4,
        short_circuit: bool = False,
        user_defined_context: dict[str, str] | None = None,
        json_argument_as_text: bool = False,
        session_user: str = "analyst@example.com",
        project: str = "my-project",
        max_retry_s: float = 60.0,
        timeout_s: float = 120.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.url = url
        self.max_batching_rows = 1 if short_circuit else max_batching_rows
        self.parallel = parallel
        self.user_defined_context = user_defined_context
        self.json_argument_as_text = json_argument_as_text
        self.session_user = session_user
        self.project = project
        self.max_retry_s = max_retry_s
        self.timeout_s = timeout_s
        self.stats = CallStats()
        self.client = client or httpx.Client()

    def query(self, rows: list[list[Any]]) -> list[Any]:
        """One value per input row, in input order, as a query over `rows` would see them."""
        job = f"//bigquery.googleapis.com/projects/{self.project}/jobs/{self.project}:US.bquxjob_"
        job += f"{next(_job_counter):04d}_{uuid.uuid4().hex[:11]}"
        size = self.max_batching_rows
        batches = [rows[i : i + size] for i in range(0, len(rows), size)]
        with ThreadPoolExecutor(self.parallel) as pool:
            answers = list(pool.map(lambda batch: self.send(batch, job), batches))
        return [value for answer in answers for value in answer]

    def body(self, rows: list[list[Any]], job: str, request_id: str) -> bytes:
        document: dict[str, Any] = {
            "requestId": request_id,
            "caller": job,
            "sessionUser": self.session_user,
            "calls": [self._encode_call(args) for args in rows],
        }
        if self.user_defined_context is not None:
            document["userDefinedContext"] = self.user_defined_context
        return orjson.dumps(document)

    def _encode_call(self, args: list[Any]) -> list[Any]:
        """TO_JSON_STRING encoding: a JSON argument is its value, or its text when so configured."""
        if self.json_argument_as_text and len(args) == 1 and isinstance(args[0], dict):
            return [orjson.dumps(args[0]).decode()]
        return list(args)

    def send(self, rows: list[list[Any]], job: str) -> list[Any]:
        """One request (retried as BigQuery retries it); the replies, checked as BigQuery checks them."""
        body = self.body(rows, job, uuid.uuid4().hex[:12])
        self.stats.requests += 1
        response = self._with_retries(body)
        if response.status_code != 200:
            raise RemoteFunctionError(_error_message(response), response.status_code)
        return self._check(response, len(rows))

    def _with_retries(self, body: bytes) -> httpx.Response:
        headers = {"Content-Type": "application/json", "User-Agent": "Google-BigQuery-RemoteFunction"}
        end = time.monotonic() + self.max_retry_s
        delay = 0.1
        while True:
            response: httpx.Response | None
            try:
                response = self.client.post(self.url, content=body, headers=headers, timeout=self.timeout_s)
                self.stats.statuses.append(response.status_code)
                if response.status_code not in RETRIED:
                    return response
            except httpx.TransportError:
                response = None
            if time.monotonic() + delay > end:
                if response is not None:
                    return response
                raise RemoteFunctionError("the remote endpoint could not be reached")
            self.stats.retries += 1
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    @staticmethod
    def _check(response: httpx.Response, expected: int) -> list[Any]:
        try:
            document = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise RemoteFunctionError("Malformed response: not JSON") from exc
        replies = document.get("replies") if isinstance(document, dict) else None
        if not isinstance(replies, list):
            raise RemoteFunctionError('Malformed response: no "replies" array')
        if len(replies) != expected:
            raise RemoteFunctionError(f"Malformed response: {len(replies)} replies for {expected} calls")
        if any(reply is not None and not isinstance(reply, dict) for reply in replies):
            raise RemoteFunctionError("Malformed response: a reply is not a JSON object")
        return replies


def _error_message(response: httpx.Response) -> str:
    try:
        message = orjson.loads(response.content).get("errorMessage")
    except (orjson.JSONDecodeError, AttributeError):
        message = None
    return f"HTTP {response.status_code}: {message or response.text[:200]}"


def in_process(app: Any, cached: bool = False, **options: Any) -> BigQueryCaller:
    """A caller for a Flask app in this process (no socket)."""
    client = httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://udf.local", timeout=600)
    url = "http://udf.local/bigquery/people/full" + ("/cached" if cached else "")
    return BigQueryCaller(url, client=client, **options)
