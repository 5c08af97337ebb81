"""How a warehouse route answers: JSON, compressed as the request's Accept-Encoding allows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Response, request

from ..protocols.compression import compress

# The WSGI keys of the two headers a server does not prefix with HTTP_ (PEP 3333).
_UNPREFIXED = {"CONTENT_TYPE": "content-type", "CONTENT_LENGTH": "content-length"}


def json_answer(body: bytes, status: int = 200) -> Response:
    """`body` compressed per Accept-Encoding, with Vary so that caches keep one copy per coding."""
    compressed, encoding = compress(body, request.environ.get("HTTP_ACCEPT_ENCODING"))
    response = Response(compressed, status=status, mimetype="application/json")
    if encoding:
        response.headers["Content-Encoding"] = encoding
    response.headers["Vary"] = "Accept-Encoding"
    return response


def wire_headers(environ: Mapping[str, Any]) -> dict[str, str]:
    """The request's headers as a plain dict, names lower-cased, for a codec's `decode`.

    The same names and values as `request.headers` (werkzeug reads them from the same environ),
    built in one pass: iterating werkzeug's headers title-cases every name through several calls
    each, the largest single cost of a 1-row batch after its cache read.
    """
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_") and key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH")
    }
    for key, name in _UNPREFIXED.items():
        if environ.get(key):
            headers[name] = environ[key]
    return headers
