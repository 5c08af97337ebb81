"""BigQuery remote functions: the request and reply wire format.

Request:  POST {"requestId", "caller", "sessionUser", "userDefinedContext"?, "calls": [[arg, ...], ...]}
Response: 200 {"replies": [value, ...]}   one per call, same order (calls carry no row ids)
Errors:   any other status with {"errorMessage": "..."} (< 1 KB); BigQuery retries 408, 429, 500,
          503 and 504, and no other status. Arguments are TO_JSON_STRING-encoded: INT64 past 2^53
          as strings, a JSON argument as a JSON value (or its text, which we accept too).
Reference: shared/reference/protocols.md section 3.
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
from .limits import BIGQUERY_MAX_ANSWER_BYTES, check_answer, check_rows

MAX_ERROR_CHARS = 900  # BigQuery shows errorMessage only when it is under 1 KB


@dataclass(frozen=True)
class Request:
    """One decoded request: each call's arguments, and who is asking."""

    calls: list[list[Any]]
    request_id: str | None = None
    caller: str | None = None
    session_user: str | None = None
    context: dict[str, Any] = field(default_factory=dict)


def decode(body: bytes, headers: Mapping[str, str], max_bytes: int) -> Request:
    """Parse a remote function request; raise ProtocolError naming the first thing that is wrong."""
    document = read_json(body, headers.get("content-encoding"), max_bytes)
    if not isinstance(document, dict) or "calls" not in document:
        raise ProtocolError('request body must be a JSON object with a "calls" array')
    calls = document["calls"]
    if not isinstance(calls, list):
        raise ProtocolError('"calls" must be an array of argument arrays, one per row')
    check_rows(len(calls), "bigquery", "calls")
    context = document.get("userDefinedContext") or {}
    if not isinstance(context, dict):
        raise ProtocolError('"userDefinedContext" must be a JSON object')
    return Request(
        calls=[_arguments(index, call) for index, call in enumerate(calls)],
        request_id=_text(document.get("requestId")),
        caller=_text(document.get("caller")),
        session_user=_text(document.get("sessionUser")),
        context=context,
    )


def _arguments(index: int, call: object) -> list[Any]:
    if not isinstance(call, list):
        raise ProtocolError(f"call {index} must be an array of arguments")
    if not 1 <= len(call) <= MAX_ARGS:
        raise ProtocolError(f"call {index} has {len(call)} arguments; {ARGUMENTS_HINT}")
    if len(call) == 1:
        return [object_from_text(call[0])]
    return call


def object_from_text(value: object) -> object:
    """A JSON object that arrived as its text becomes the object; anything else stays as it is.

    The single-argument form (a JSON or OBJECT-like lead) may reach us as an object or as the
    text of one, depending on the caller. Text that is not an object stays text, and the lead
    model answers that row `invalid_input`: one odd row never fails the request.
    """
    if not isinstance(value, str) or not value.lstrip().startswith("{"):
        return value
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value
    return parsed if isinstance(parsed, dict) else value


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def encode(values: Sequence[object]) -> bytes:
    """The 200 body: one reply per call, in call order. A JSON return value is the value itself.

    ProtocolError (413) when the body is past BIGQUERY_MAX_ANSWER_BYTES.
    """
    body = dumps({"replies": list(values)})
    check_answer(len(body), BIGQUERY_MAX_ANSWER_BYTES, "bigquery", len(values))
    return body


def error(message: str) -> bytes:
    """A failure body BigQuery shows to the user: `{"errorMessage": ...}`, kept under 1 KB."""
    if len(message) > MAX_ERROR_CHARS:
        message = message[: MAX_ERROR_CHARS - 3] + "..."
    return orjson.dumps({"errorMessage": message})
