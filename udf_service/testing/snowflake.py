"""A Snowflake stand-in: calls an external function the way Snowflake does (tests and benchmarks).

Written from the documented protocol (shared/reference/protocols.md 1.2-1.10): rows split into
batches numbered from 0, every `sf-external-function-*` header plus custom and context headers,
optional gzip both ways, and:

- POST: 429, 5xx and transport errors are retried with the same batch id (1.9), bounded;
- 202: polled with GET and the same headers; the loop ends on 200, on any other status (a 5xx
  too: it fails the query, 1.10 step 5) or after 600 s;
- each answer is checked as Snowflake checks it: JSON with a `data` array, as many rows as sent,
  the same row numbers in the same order, `[row_number, value]` pairs.

It talks through an `httpx.Client`: to a live server by URL, or to a Flask app in process with
`httpx.WSGITransport(app=app)` (see `in_process()`), so the same caller serves both kinds of test.
"""

from __future__ import annotations

import base64
import gzip
import itertools
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

_query_counter = itertools.count()
RETRIED = frozenset({429, 500, 502, 503, 504})


class ExternalFunctionError(Exception):
    """What Snowflake would turn into a failed query."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class CallStats:
    batches: int = 0
    retries: int = 0
    polls: int = 0
    statuses: list[int] = field(default_factory=list)
    poll_statuses: list[int] = field(default_factory=list)  # GET answers only: any but 200/202 ends
    batch_seconds: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, amount in counts.items():
                setattr(self, name, getattr(self, name) + amount)


def new_query_id() -> str:
    return f"01b{next(_query_counter):05d}-{uuid.uuid4().hex[:12]}"


def in_process(app: Any, **options: Any) -> SnowflakeCaller:
    """A caller for a Flask app in this process (no socket): `in_process(app).query(rows)`."""
    client = httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://udf.local", timeout=600)
    return SnowflakeCaller("http://udf.local/snowflake/people/full", client=client, **options)


class SnowflakeCaller:
    def __init__(
        self,
        url: str,
        *,
        client: httpx.Client | None = None,
        max_batch_rows: int = 200,
        parallel: int = 4,
        compression: bool = True,
        custom_headers: dict[str, str] | None = None,
        max_retry_s: float = 120.0,
        max_poll_s: float = 600.0,
        function_name: str = "SIXSENSE.PEOPLE_FULL",
    ) -> None:
        self.url = url
        self.client = client or httpx.Client(timeout=60)
        self.max_batch_rows = max_batch_rows
        self.parallel = parallel
        self.compression = compression
        self.custom_headers = custom_headers or {}
        self.max_retry_s = max_retry_s
        self.max_poll_s = max_poll_s
        self.function_name = function_name
        self.stats = CallStats()

    def query(self, rows: Sequence[Sequence[Any]], url: str | None = None) -> list[Any]:
        """One value per input row, in input order, as a query over `rows` would see them."""
        query_id = new_query_id()
        size = self.max_batch_rows
        batches = [rows[i : i + size] for i in range(0, len(rows), size)]
        with ThreadPoolExecutor(max(1, min(self.parallel, len(batches)))) as pool:
            answers = list(
                pool.map(
                    lambda item: self.send_batch(item[1], query_id, item[0], url=url), enumerate(batches)
                )
            )
        return [value for answer in answers for value in answer]

    def headers(self, query_id: str, batch_id: str) -> dict[str, str]:
        name = self.function_name
        signature = b"(EMAIL VARCHAR, COUNTRY VARCHAR)"
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "snowflake/1.0",
            "sf-external-function-format": "json",
            "sf-external-function-format-version": "1.0",
            "sf-external-function-current-query-id": query_id,
            "sf-external-function-query-batch-id": batch_id,
            "sf-external-function-name": name,
            "sf-external-function-name-base64": base64.b64encode(name.encode()).decode(),
            "sf-external-function-signature": signature.decode(),
            "sf-external-function-signature-base64": base64.b64encode(signature).decode(),
            "sf-external-function-return-type": "VARIANT",
            "sf-external-function-return-type-base64": base64.b64encode(b"VARIANT").decode(),
            "sf-context-current-user": "ANALYST",
            "sf-context-current-user-base64": base64.b64encode(b"ANALYST").decode(),
        }
        headers.update({f"sf-custom-{k}": v for k, v in self.custom_headers.items()})
        if self.compression:
            headers["Content-Encoding"] = "gzip"
            headers["Accept-Encoding"] = "gzip"
        return headers

    def send_batch(
        self,
        rows: Sequence[Sequence[Any]],
        query_id: str,
        index: int,
        batch_id: str | None = None,
        url: str | None = None,
    ) -> list[Any]:
        """One batch to its final answer: retries of the POST, then GET polls while 202."""
        started = time.monotonic()
        url = url or self.url
        batch_id = batch_id or f"{query_id}:1:{index}:0:0"
        headers = self.headers(query_id, batch_id)
        body = orjson.dumps({"data": [[n, *args] for n, args in enumerate(rows)]})
        if self.compression:
            body = gzip.compress(body)
        self.stats.add(batches=1)
        response = self._post(url, body, headers)
        poll_end = time.monotonic() + self.max_poll_s
        delay = 0.05
        while response.status_code == 202:
            if time.monotonic() > poll_end:
                raise ExternalFunctionError(f"batch {batch_id}: async poll timed out after 600 s")
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)  # "starts out short but grows longer for each HTTP 202"
            self.stats.add(polls=1)
            response = self._transport_retries(lambda: self.client.get(url, headers=headers))
            with self.stats.lock:
                self.stats.poll_statuses.append(response.status_code)
        if response.status_code != 200:
            raise ExternalFunctionError(
                f"remote service error: {response.status_code} {response.text[:300]!r}", response.status_code
            )
        values = self._check(response, len(rows))
        with self.stats.lock:
            self.stats.batch_seconds.append(time.monotonic() - started)
        return values

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        end = time.monotonic() + self.max_retry_s
        delay = 0.1
        while True:
            response = self._transport_retries(lambda: self.client.post(url, content=body, headers=headers))
            if response.status_code not in RETRIED and response.status_code < 500:
                return response
            if time.monotonic() + delay > end:
                raise ExternalFunctionError(
                    f"retries due to transient errors exceeded the retry timeout ({response.status_code})",
                    response.status_code,
                )
            self.stats.add(retries=1)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _transport_retries(self, send: Any) -> httpx.Response:
        end = time.monotonic() + self.max_retry_s
        delay = 0.1
        while True:
            try:
                response = send()
            except httpx.TransportError:
                if time.monotonic() + delay > end:
                    raise ExternalFunctionError("Remote service cannot be reached") from None
                self.stats.add(retries=1)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            with self.stats.lock:
                self.stats.statuses.append(response.status_code)
            return response

    @staticmethod
    def _check(response: httpx.Response, expected_rows: int) -> list[Any]:
        try:
            document = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise ExternalFunctionError("Error parsing JSON: Invalid response") from exc
        data = document.get("data") if isinstance(document, dict) else None
        if not isinstance(data, list):
            raise ExternalFunctionError('top-level JSON object must contain "data" JSON array element')
        if len(data) != expected_rows:
            raise ExternalFunctionError("Function received the wrong number of rows")
        if [row[0] for row in data] != list(range(expected_rows)):
            raise ExternalFunctionError("Row numbers out of order")
        if any(len(row) != 2 for row in data):
            raise ExternalFunctionError("each returned row must be [row_number, value]")
        return [row[1] for row in data]
