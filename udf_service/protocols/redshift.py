"""Amazon Redshift Lambda UDFs: the event, the answer, and the Lambda handler.

Event:   {"request_id", "cluster", "user", "database", "external_function", "query_id",
          "num_records": n, "arguments": [[arg, ...] | null, ...]}     (Lambda Invoke, not HTTP)
Answer:  JSON text of {"success": true, "num_records": n, "results": [text | null, ...]}: one
         result per argument row, in order, each the row's value as JSON text (JSON_PARSE -> SUPER)
Failure: {"success": false, "error_msg": "..."} fails the whole query; used for batch-wide faults only.
Reference: shared/reference/protocols.md section 4.

The pure codec: `decode`, `encode`, `failure`, `result_text`. The Lambda entry point that runs
the engine is `udf_service.redshift_lambda.handler`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import ProtocolError
from ..leads import ARGUMENTS_HINT, MAX_ARGS
from ..values import Value, as_dict, dumps
from .bigquery import object_from_text
from .limits import LAMBDA_MAX_ANSWER_BYTES, check_answer, check_rows

MAX_RESULT_BYTES = 65535  # RETURNS VARCHAR(65535), Redshift's longest VARCHAR


@dataclass(frozen=True)
class Event:
    """One decoded Redshift batch: each row's arguments (a NULL row has none) and its context."""

    rows: list[list[Any]]
    request_id: str | None = None
    query_id: int | str | None = None
    function: str | None = None
    user: str | None = None


def decode(event: object) -> Event:
    """Read a Lambda UDF event; raise ProtocolError naming the first thing that is wrong."""
    if not isinstance(event, Mapping) or not isinstance(event.get("arguments"), list):
        raise ProtocolError('the event must be a JSON object with an "arguments" array')
    arguments = event["arguments"]
    count = event.get("num_records", len(arguments))
    if count != len(arguments):  # the value is not echoed: it is the caller's input
        raise ProtocolError(f"num_records does not match the {len(arguments)} rows of arguments")
    check_rows(len(arguments), "redshift")
    return Event(
        rows=[_arguments(index, row) for index, row in enumerate(arguments)],
        request_id=_text(event.get("request_id")),
        query_id=event.get("query_id"),
        function=_text(event.get("external_function")),
        user=_text(event.get("user")),
    )


def _arguments(index: int, row: object) -> list[Any]:
    if row is None:
        return []  # a NULL row: no email, so the row is invalid_input
    if not isinstance(row, list):
        raise ProtocolError(f"arguments row {index} must be an array or null")
    if not 1 <= len(row) <= MAX_ARGS:
        raise ProtocolError(f"arguments row {index} has {len(row)} values; {ARGUMENTS_HINT} (as JSON text)")
    return [object_from_text(row[0])] if len(row) == 1 else row


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def encode(results: Sequence[str | None]) -> str:
    """The answer for a successful batch: one JSON text (or null) per row, in row order.

    ProtocolError (413) when the answer is past Lambda's 6 MB response payload.
    """
    answer = orjson.dumps({"success": True, "num_records": len(results), "results": list(results)})
    check_answer(len(answer), LAMBDA_MAX_ANSWER_BYTES, "redshift", len(results))
    return answer.decode()


def failure(message: str) -> str:
    """The answer that fails the whole query, with a message Redshift shows to the user."""
    return orjson.dumps({"success": False, "error_msg": message}).decode()


def result_text(value: Value) -> str:
    """One row's result: the value as JSON text, or an `error` value when it exceeds VARCHAR."""
    text = dumps(value)
    if len(text) <= MAX_RESULT_BYTES:
        return text.decode()
    # The same keys, emptied (lists stay lists): a wire format knows the value's shape, not 6sense's.
    emptied = {key: [] if isinstance(field, list) else None for key, field in as_dict(value).items()}
    error = f"the value is longer than VARCHAR({MAX_RESULT_BYTES}) allows"
    return orjson.dumps({**emptied, "status": "error", "error": error, "from_cache": False}).decode()
