"""A Redshift stand-in for tests: calls a Lambda UDF the way Redshift does.

Written from the documented protocol (shared/reference/protocols.md section 4): rows split into
batches of at most MAX_BATCH_ROWS rows and MAX_BATCH_SIZE bytes of arguments, each sent as one
Lambda Invoke with `request_id`, `cluster`, `user`, `database`, `external_function`,
`query_id`, `num_records` and `arguments`; invocations that Lambda throttles
(TooManyRequestsException and the like) are retried until RETRY_TIMEOUT is spent. An answer must
say `success: true` and carry exactly `num_records` results, each VARCHAR text (or null) of at
most 65535 bytes; otherwise the query fails, with `error_msg` when the function gave one. Values
come back as `JSON_PARSE(result)` would give them (the SUPER the views read).

`LocalLambda` plays the Lambda service: it hands the handler the JSON-decoded event and a context
with `get_remaining_time_in_millis()`, serialises the handler's return value as Lambda does, and
fails an invocation that ran past the function's timeout.
"""

from __future__ import annotations

import itertools
import os
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from udf_service import redshift_lambda as redshift
from udf_service.testing.processes import TOKEN

MAX_VARCHAR_BYTES = 65535
_query_counter = itertools.count(5678000)


class ExternalFunctionError(Exception):
    """What Redshift would turn into a failed query."""


class TooManyRequestsException(Exception):
    """Lambda throttled the invocation (Redshift retries it within RETRY_TIMEOUT)."""


class LambdaTimeout(Exception):
    """The invocation ran past the function's timeout: Lambda kills it, the query fails."""


@dataclass
class LambdaContext:
    """The part of the Lambda context object the handler uses."""

    deadline: float
    function_name: str = "sixsense-udf-redshift"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self.deadline - time.monotonic()) * 1000), 0)


class LocalLambda:
    """Invokes a handler in this process the way the Lambda service would: bytes in, bytes out."""

    def __init__(self, handler: Callable[[Any, Any], Any], timeout_s: float = 300.0) -> None:
        self.handler = handler
        self.timeout_s = timeout_s
        self.invocations = 0

    def __call__(self, payload: bytes) -> bytes:
        self.invocations += 1
        started = time.monotonic()
        context = LambdaContext(deadline=started + self.timeout_s)
        result = self.handler(orjson.loads(payload), context)
        if time.monotonic() - started > self.timeout_s:
            raise LambdaTimeout(f"Task timed out after {self.timeout_s:.2f} seconds")
        return orjson.dumps(result)


@dataclass
class CallStats:
    invocations: int = 0
    retries: int = 0
    batch_sizes: list[int] = field(default_factory=list)


class RedshiftCaller:
    def __init__(
        self,
        invoke: Callable[[bytes], bytes],
        *,
        function: str = "sixsense.people_full",
        max_batch_rows: int = 100,
        max_batch_size: int = 5 * 1024 * 1024,
        parallel: int = 4,
        retry_timeout_ms: int = 20000,
    ) -> None:
        self.invoke = invoke
        self.function = function
        self.max_batch_rows = max_batch_rows
        self.max_batch_size = max_batch_size
        self.parallel = parallel
        self.retry_timeout_ms = retry_timeout_ms
        self.stats = CallStats()

    def query(self, rows: list[list[Any] | None]) -> list[Any]:
        """One value per input row, in input order, parsed from JSON text as JSON_PARSE would."""
        query_id = next(_query_counter)
        with ThreadPoolExecutor(self.parallel) as pool:
            answers = list(pool.map(lambda batch: self.send(batch, query_id), self.batches(rows)))
        return [value for answer in answers for value in answer]

    def batches(self, rows: list[list[Any] | None]) -> list[list[list[Any] | None]]:
        """Consecutive batches within both MAX_BATCH_ROWS and MAX_BATCH_SIZE (argument bytes)."""
        batches: list[list[list[Any] | None]] = []
        current: list[list[Any] | None] = []
        size = 0
        for row in rows:
            row_size = len(orjson.dumps(row)) + 1
            if current and (len(current) >= self.max_batch_rows or size + row_size > self.max_batch_size):
                batches.append(current)
                current, size = [], 0
            current.append(row)
            size += row_size
        if current:
            batches.append(current)
        return batches

    def event(self, rows: list[list[Any] | None], query_id: int) -> dict[str, Any]:
        return {
            "request_id": str(uuid.uuid4()).upper(),
            "cluster": "arn:aws:redshift:us-east-1:123456789012:cluster:analytics",
            "user": "analyst",
            "database": "dev",
            "external_function": self.function,
            "query_id": query_id,
            "num_records": len(rows),
            "arguments": rows,
        }

    def send(self, rows: list[list[Any] | None], query_id: int) -> list[Any]:
        """One invocation (retried while throttled); the values, checked as Redshift checks them."""
        payload = orjson.dumps(self.event(rows, query_id))
        self.stats.invocations += 1
        self.stats.batch_sizes.append(len(rows))
        return self._check(self._with_retries(payload), len(rows))

    def _with_retries(self, payload: bytes) -> bytes:
        end = time.monotonic() + self.retry_timeout_ms / 1000
        delay = 0.05
        while True:
            try:
                return self.invoke(payload)
            except TooManyRequestsException as exc:
                if time.monotonic() + delay > end:
                    raise ExternalFunctionError(
                        f"Rate Exceeded.; Exception: TooManyRequestsException; ShouldRetry: 1 ({exc})"
                    ) from exc
            self.stats.retries += 1
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    @staticmethod
    def _check(raw: bytes, expected: int) -> list[Any]:
        try:
            answer = orjson.loads(raw)
            if isinstance(answer, str):  # handlers return json.dumps(...): a JSON text in JSON
                answer = orjson.loads(answer)
        except orjson.JSONDecodeError as exc:
            raise ExternalFunctionError("Invalid External Function Response: not JSON") from exc
        if not isinstance(answer, dict):
            raise ExternalFunctionError("Invalid External Function Response: not a JSON object")
        if answer.get("success") is not True:
            raise ExternalFunctionError(f"External function failed: {answer.get('error_msg')}")
        results = answer.get("results")
        if not isinstance(results, list) or len(results) != expected:
            raise ExternalFunctionError("Invalid External Function Response: wrong number of results")
        if answer.get("num_records", expected) != expected:
            raise ExternalFunctionError("Invalid External Function Response: num_records mismatch")
        return [_varchar_to_super(result) for result in results]


def _varchar_to_super(result: object) -> Any:
    if result is None:
        return None
    if not isinstance(result, str):
        raise ExternalFunctionError(f"Invalid External Function Response: {type(result).__name__} result")
    if len(result.encode()) > MAX_VARCHAR_BYTES:
        raise ExternalFunctionError("Value too long for character type varying(65535)")
    try:
        return orjson.loads(result)
    except orjson.JSONDecodeError as exc:
        raise ExternalFunctionError("JSON_PARSE: invalid JSON text") from exc


def lambda_environment(
    monkeypatch: pytest.MonkeyPatch, simulator_url: str | None, state_url: str, **extra: str
) -> None:
    """The environment of a Lambda container: the service's variables, nothing inherited; the
    built-in simulator (read it through `redshift.container_runtime().simulator`) when no URL."""
    for name in list(os.environ):
        if name.startswith(("SIXSENSE_", "UDF_", "AWS_LAMBDA_")):
            monkeypatch.delenv(name)
    variables = {"SIXSENSE_RATE_LIMIT": "60000/minute", "UDF_STATE_URL": state_url}
    if simulator_url:
        variables |= {"SIXSENSE_API_TOKEN": TOKEN, "SIXSENSE_BASE_URL": simulator_url}
    else:
        variables["SIXSENSE_SIMULATE"] = "1"
    for name, value in {**variables, **extra}.items():
        monkeypatch.setenv(name, value)
    redshift.close()  # the next invocation starts a new container with this environment
