"""A Snowflake stand-in for tests: calls an external function the way Snowflake does.

Written from the documented protocol (shared/reference/protocols.md 1.2-1.10): rows split into
batches numbered from 0, every `sf-external-function-*` header plus custom and context headers,
optional gzip both ways, retries of 429/5xx and transport errors with the same batch id,
202 + GET polling until 200 (at most 600 s), and Snowflake's own checks on each answer: valid
JSON with a `data` array, the same number of rows, the same row numbers in the same order.
"""

from __future__ import annotations

import base64
import gzip
import itertools
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson
import requests

_query_counter = itertools.count()


class ExternalFunctionError(Exception):
    """What Snowflake would turn into a failed query."""


@dataclass
class CallStats:
    batches: int = 0
    retries: int = 0
    polls: int = 0
    statuses: list[int] = field(default_factory=list)


class SnowflakeCaller:
    def __init__(
        self,
        url: str,
        *,
        max_batch_rows: int = 200,
        parallel: int = 4,
        compression: bool = True,
        custom_headers: dict[str, str] | None = None,
        max_retry_s: float = 120.0,
        max_poll_s: float = 600.0,
        function_name: str = "SIXSENSE.PEOPLE_FULL",
    ) -> None:
        self.url = url
        self.max_batch_rows = max_batch_rows
        self.parallel = parallel
        self.compression = compression
        self.custom_headers = custom_headers or {}
        self.max_retry_s = max_retry_s
        self.max_poll_s = max_poll_s
        self.function_name = function_name
        self.stats = CallStats()
        self.session = requests.Session()

    def query(self, rows: list[list[Any]]) -> list[Any]:
        """One value per input row, in input order, as a query over `rows` would see them."""
        query_id = f"01b{next(_query_counter):05d}-{uuid.uuid4().hex[:12]}"
        batches = [rows[i : i + self.max_batch_rows] for i in range(0, len(rows), self.max_batch_rows)]
        with ThreadPoolExecutor(self.parallel) as pool:
            answers = list(
                pool.map(lambda item: self.send_batch(item[1], query_id, item[0]), enumerate(batches))
            )
        return [value for answer in answers for value in answer]

    def headers(self, query_id: str, batch_id: str) -> dict[str, str]:
        name = self.function_name
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "snowflake/1.0",
            "sf-external-function-format": "json",
            "sf-external-function-format-version": "1.0",
            "sf-external-function-current-query-id": query_id,
            "sf-external-function-query-batch-id": batch_id,
            "sf-external-function-name": name,
            "sf-external-function-name-base64": base64.b64encode(name.encode()).decode(),
            "sf-external-function-signature": "(EMAIL VARCHAR, COUNTRY VARCHAR)",
            "sf-external-function-signature-base64": base64.b64encode(
                b"(EMAIL VARCHAR, COUNTRY VARCHAR)"
            ).decode(),
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
        self, rows: list[list[Any]], query_id: str, index: int, batch_id: str | None = None
    ) -> list[Any]:
        batch_id = batch_id or f"{query_id}:1:{index}:0:0"
        headers = self.headers(query_id, batch_id)
        body = orjson.dumps({"data": [[n, *args] for n, args in enumerate(rows)]})
        if self.compression:
            body = gzip.compress(body)
        self.stats.batches += 1
        response = self._with_retries(
            lambda: self.session.post(self.url, data=body, headers=headers, timeout=60)
        )
        poll_end = time.monotonic() + self.max_poll_s
        delay = 0.05
        while response.status_code == 202:
            if time.monotonic() > poll_end:
                raise ExternalFunctionError(f"batch {batch_id}: async poll timed out after 600 s")
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)
            self.stats.polls += 1
            response = self._with_retries(lambda: self.session.get(self.url, headers=headers, timeout=60))
        if response.status_code != 200:
            raise ExternalFunctionError(
                f"remote service error: {response.status_code} {response.text[:300]!r}"
            )
        return self._check(response, len(rows))

    def _with_retries(self, send: Any) -> requests.Response:
        end = time.monotonic() + self.max_retry_s
        delay = 0.1
        while True:
            try:
                response = send()
                self.stats.statuses.append(response.status_code)
                if response.status_code != 429 and response.status_code < 500:
                    return response
            except requests.ConnectionError:
                pass
            if time.monotonic() + delay > end:
                raise ExternalFunctionError("retries due to transient errors exceeded the retry timeout")
            self.stats.retries += 1
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    @staticmethod
    def _check(response: requests.Response, expected_rows: int) -> list[Any]:
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
