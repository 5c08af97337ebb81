"""How a warehouse route answers: JSON, compressed as the request's Accept-Encoding allows."""

from __future__ import annotations

from flask import Response, request

from ..protocols.compression import compress


def json_answer(body: bytes, status: int = 200) -> Response:
    """`body` compressed per Accept-Encoding, with Vary so that caches keep one copy per coding."""
    compressed, encoding = compress(body, request.headers.get("Accept-Encoding"))
    response = Response(compressed, status=status, mimetype="application/json")
    if encoding:
        response.headers["Content-Encoding"] = encoding
    response.headers["Vary"] = "Accept-Encoding"
    return response
