"""Reading request bodies (bounded decompression, JSON) and compressing answers, for every codec.

Decompression is bounded: a gzip bomb stops at the size limit instead of filling memory.
"""

from __future__ import annotations

import gzip
import zlib
from functools import lru_cache
from typing import Any

import orjson
from werkzeug.http import parse_accept_header  # pure header parsing, no Flask

from ..errors import ProtocolError

SUPPORTED = ("gzip", "deflate")
# Level 1 halves the CPU of level 5 on our JSON for a body about 1.5x larger: answers are far
# below Snowflake's 10 MB limit, and CPU is what the cached path spends.
LEVEL = 1


def decompress(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """The body decoded per Content-Encoding, refusing anything that inflates past max_bytes."""
    if len(body) > max_bytes:
        raise ProtocolError(f"request body exceeds the {max_bytes}-byte limit (UDF_MAX_BODY_BYTES)", 413)
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in SUPPORTED:
        raise ProtocolError(
            f"unsupported Content-Encoding {encoding[:40]!r}: use gzip, deflate or none", status=415
        )
    # API Gateway may already have inflated the body but left the header (protocols.md 1.6).
    if not _looks_compressed(body, encoding):
        return body
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else _deflate_wbits(body)
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise ProtocolError(f"request body is not valid {encoding} data: {exc}") from None
    if len(out) > max_bytes or inflater.unconsumed_tail:
        raise ProtocolError(f"decompressed request body exceeds the {max_bytes}-byte limit", status=413)
    return out


def read_json(body: bytes, content_encoding: str | None, max_bytes: int) -> Any:
    """The request body decompressed (bounded) and parsed as JSON; ProtocolError if it is not."""
    raw = decompress(body, content_encoding, max_bytes)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"request body is not valid JSON: {exc}") from None


def compress(body: bytes, accept_encoding: str | None) -> tuple[bytes, str | None]:
    """Compress with the first of gzip/deflate that Accept-Encoding allows; else leave as is."""
    accepted = _accepted(accept_encoding)
    if "gzip" in accepted:
        return gzip.compress(body, compresslevel=LEVEL, mtime=0), "gzip"
    if "deflate" in accepted:
        return zlib.compress(body, LEVEL), "deflate"
    return body, None


@lru_cache(maxsize=64)
def _accepted(header: str | None) -> frozenset[str]:
    """The codings Accept-Encoding allows (q > 0), lower case; werkzeug parses the header (and keeps
    any parameter other than q in the value, which no coding we send has). Cached: a caller sends
    the same header on every request, and parsing it costs more than a 1-row answer's encoding."""
    accepted = parse_accept_header(header)
    return frozenset(coding.partition(";")[0].strip().lower() for coding, quality in accepted if quality > 0)


def _looks_compressed(body: bytes, encoding: str) -> bool:
    if encoding == "gzip":
        return body[:2] == b"\x1f\x8b"
    return body.lstrip()[:1] not in (b"{", b"[")


def _deflate_wbits(body: bytes) -> int:
    """HTTP 'deflate' is zlib-wrapped by the RFC, raw DEFLATE by some clients: accept both."""
    if len(body) >= 2 and (body[0] & 0x0F) == 8 and ((body[0] << 8) | body[1]) % 31 == 0:
        return zlib.MAX_WBITS
    return -zlib.MAX_WBITS
