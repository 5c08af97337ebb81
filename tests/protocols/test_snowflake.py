"""The Snowflake batch codec: decode, encode, compression (pure)."""

from __future__ import annotations

import gzip
import zlib

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from udf_service.errors import ProtocolError
from udf_service.protocols import snowflake
from udf_service.protocols.compression import compress, decompress

LIMIT = 10 * 1024 * 1024


def test_decode_reads_rows_and_context_headers() -> None:
    """Row numbers, arguments and every sf-* header reach the batch."""
    headers = {
        "sf-external-function-query-batch-id": "q1:1:0:0:0",
        "sf-external-function-current-query-id": "q1",
        "SF-External-Function-Name": "PEOPLE_FULL",
        "sf-custom-udf-secret": "s3cret",
        "sf-context-current-user": "ANALYST",
    }
    batch = snowflake.decode(b'{"data": [[0, "a@b.co", "US"], [1, null, null]]}', headers, LIMIT)
    assert batch.row_numbers == [0, 1]
    assert batch.rows == [["a@b.co", "US"], [None, None]]
    assert batch.batch_id == "q1:1:0:0:0" and batch.query_id == "q1"
    assert batch.function_name == "PEOPLE_FULL"
    assert batch.context == {"sf-custom-udf-secret": "s3cret", "sf-context-current-user": "ANALYST"}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        pytest.param(b"not json", "not valid JSON", id="not-json"),
        pytest.param(b'{"rows": []}', '"data"', id="no-data"),
        pytest.param(b'{"data": {}}', "array of rows", id="data-not-array"),
        pytest.param(
            b'{"data": [["0", "a@b.co", "US"]]}', "row number must be an integer", id="string-row-number"
        ),
        pytest.param(
            b'{"data": [[true, "a@b.co", "US"]]}', "row number must be an integer", id="bool-row-number"
        ),
        pytest.param(
            b'{"data": [[0.5, "a@b.co", "US"]]}', "row number must be an integer", id="float-row-number"
        ),
        pytest.param(b'{"data": [5]}', "must be an array", id="row-not-array"),
        pytest.param(b'{"data": [[0, 1,2,3,4,5,6,7,8,9,10,11,12]]}', "12 arguments", id="twelve-args"),
        pytest.param(b'{"data": [[0, NaN]]}', "not valid JSON", id="nan"),
        pytest.param(b"[1, 2]", '"data"', id="top-level-array"),
    ],
)
def test_decode_rejects_malformed_batches(body: bytes, fragment: str) -> None:
    """Each malformed body is a ProtocolError that names the problem."""
    with pytest.raises(ProtocolError) as info:
        snowflake.decode(body, {}, LIMIT)
    assert fragment in info.value.message
    assert info.value.status == 400


def test_encode_keeps_row_numbers_and_order() -> None:
    """The answer pairs each row number with its value, in input order."""
    body = snowflake.encode([3, 1, 2], [{"a": 1}, None, "x"])
    assert orjson.loads(body) == {"data": [[3, {"a": 1}], [1, None], [2, "x"]]}


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=2**31),
            st.lists(st.one_of(st.none(), st.text(max_size=20)), min_size=2, max_size=10),
        ),
        max_size=50,
    )
)
def test_round_trip_preserves_row_numbers(rows: list[tuple[int, list[str | None]]]) -> None:
    """Any well-formed batch decodes to the same row numbers in the same order."""
    body = orjson.dumps({"data": [[n, *args] for n, args in rows]})
    batch = snowflake.decode(body, {}, LIMIT)
    assert batch.row_numbers == [n for n, _ in rows]
    assert orjson.loads(snowflake.encode(batch.row_numbers, batch.rows))["data"] == [[n, a] for n, a in rows]


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
def test_decompress_accepts_gzip_and_deflate(encoding: str) -> None:
    """gzip, zlib-wrapped deflate and raw deflate bodies all decode."""
    raw = b'{"data": [[0, "a@b.co", "US"]]}'
    if encoding == "gzip":
        body = gzip.compress(raw)
    elif encoding == "deflate":
        body = zlib.compress(raw)
    else:
        packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        body = packer.compress(raw) + packer.flush()
    assert decompress(body, encoding.removeprefix("raw-"), LIMIT) == raw


def test_decompress_passes_through_an_already_inflated_body() -> None:
    """API Gateway may inflate the body but keep Content-Encoding: gzip; that still works."""
    raw = b'{"data": []}'
    assert decompress(raw, "gzip", LIMIT) == raw


def test_decompress_stops_a_gzip_bomb_at_the_limit() -> None:
    """A small body that inflates past the limit is refused with 413, not inflated whole."""
    bomb = gzip.compress(b"0" * (50 * 1024 * 1024))
    with pytest.raises(ProtocolError) as info:
        decompress(bomb, "gzip", 1024 * 1024)
    assert info.value.status == 413


def test_unsupported_encoding_is_415() -> None:
    """An encoding we cannot decode is named in a 415."""
    with pytest.raises(ProtocolError) as info:
        decompress(b"xx", "br", LIMIT)
    assert info.value.status == 415 and "br" in info.value.message


@pytest.mark.parametrize(
    ("accept", "expected"),
    [("gzip", "gzip"), ("deflate", "deflate"), ("gzip;q=0, deflate", "deflate"), ("", None), (None, None)],
)
def test_compress_follows_accept_encoding(accept: str | None, expected: str | None) -> None:
    """The answer is compressed only as Accept-Encoding allows, and decodes back."""
    body, encoding = compress(b'{"data": []}', accept)
    assert encoding == expected
    assert decompress(body, encoding, LIMIT) == b'{"data": []}'
