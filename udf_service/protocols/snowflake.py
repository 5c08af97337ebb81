"""Snowflake external functions and SPCS service functions: the batch wire format.

Request:  POST {"data": [[row_number, arg1, ..., argN], ...]}   row numbers are 0-based ints
Response: {"data": [[row_number, value], ...]}                   same row numbers, same order
Headers:  sf-external-function-query-batch-id (same on retries and on the async GET poll),
          sf-external-function-current-query-id, sf-custom-*, sf-context-*; gzip/deflate bodies.
Status:   200 done, 202 still running (poll with GET); Snowflake retries 429 and 5xx.
Reference: shared/reference/protocols.md sections 1.2, 1.3, 1.8, 1.10 and 2.2.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..errors import ProtocolError
from ..leads import ARGUMENTS_HINT, MAX_ARGS
from ..values import dumps
from .compression import read_json
from .limits import MAX_ROWS as MAX_ROWS  # re-exported: the cap is shared by every route
from .limits import SNOWFLAKE_MAX_ANSWER_BYTES, check_answer, check_rows

BATCH_ID_HEADER = "sf-external-function-query-batch-id"
QUERY_ID_HEADER = "sf-external-function-current-query-id"
FUNCTION_NAME_HEADER = "sf-external-function-name"


@dataclass(frozen=True)
class Batch:
    """One decoded request: row numbers, each row's arguments, and the Snowflake context."""

    row_numbers: list[int]
    rows: list[list[Any]]
    batch_id: str | None = None
    query_id: str | None = None
    function_name: str | None = None
    context: dict[str, str] = field(default_factory=dict)


def decode(body: bytes, headers: Mapping[str, str], max_bytes: int) -> Batch:
    """Parse a Snowflake batch; raise ProtocolError naming the first thing that is wrong."""
    lowered = {k.lower(): v for k, v in headers.items()}
    document = read_json(body, lowered.get("content-encoding"), max_bytes)
    if not isinstance(document, dict) or "data" not in document:
        raise ProtocolError('request body must be a JSON object with a "data" array')
    data = document["data"]
    if not isinstance(data, list):
        raise ProtocolError('"data" must be an array of rows')
    check_rows(len(data), "snowflake")
    row_numbers: list[int] = []
    rows: list[list[Any]] = []
    for index, row in enumerate(data):
        # The shape every Snowflake row has, checked inline (orjson makes exact lists and ints,
        # and `bool` is not `int` by type); anything else gets the full check and its message.
        if type(row) is list and 1 < len(row) <= _MAX_ROW and type(row[0]) is int:
            row_numbers.append(row[0])
        else:
            row_numbers.append(_row_number(index, row))
        rows.append(row[1:])
    return Batch(
        row_numbers=row_numbers,
        rows=rows,
        batch_id=lowered.get(BATCH_ID_HEADER) or None,
        query_id=lowered.get(QUERY_ID_HEADER) or None,
        function_name=lowered.get(FUNCTION_NAME_HEADER) or None,
        context={k: v for k, v in lowered.items() if k.startswith(("sf-context-", "sf-custom-"))},
    )


_MAX_ROW = MAX_ARGS + 1  # the row number and at most MAX_ARGS arguments


def _row_number(index: int, row: object) -> int:
    if not isinstance(row, list) or not row:
        raise ProtocolError(f"row {index} must be an array [row_number, arguments...]")
    number = row[0]
    if isinstance(number, bool) or not isinstance(number, int):
        raise ProtocolError(f"row {index}: the row number must be an integer, not {number!r:.40}")
    if len(row) - 1 > MAX_ARGS:
        raise ProtocolError(f"row {index} has {len(row) - 1} arguments; {ARGUMENTS_HINT}")
    return number


def encode(row_numbers: Sequence[int], values: Sequence[object]) -> bytes:
    """The response body: one [row_number, value] pair per input row, in input order.

    ProtocolError (413) when the body is past Snowflake's 10 MB: it would reject it anyway.
    """
    if len(row_numbers) != len(values):
        raise ValueError("one value per row is required")
    body = dumps({"data": [[n, v] for n, v in zip(row_numbers, values, strict=True)]})
    check_answer(len(body), SNOWFLAKE_MAX_ANSWER_BYTES, "snowflake", len(values))
    return body


def error(message: str) -> bytes:
    """A failure body (any status but 200 and 202): `{"error": ...}`, the sentence Snowflake shows."""
    return orjson.dumps({"error": message})
