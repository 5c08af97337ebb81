"""Limits every wire format shares, in one place: rows per request and bytes per answer.

Rows: at most MAX_ROWS per request on every route. Snowflake sends ~4,096 rows when MAX_BATCH_ROWS
is unset; BigQuery's `max_batching_rows` and Redshift's MAX_BATCH_ROWS bound theirs. Without a
cap, a 2 MB body of `[null]` calls is 300,000 rows and an answer of hundreds of MB.
Answers: the warehouse refuses a larger one, so the service refuses it first, with a sentence
naming the setting that makes batches smaller (reference/protocols.md 1.8, 1.12, 3 and 4):
  Snowflake  10 MB per batch response         [SF-INTRO]
  BigQuery   10 MB (documented: 10 MB per request, 15 MB per response; 10 keeps one margin)
  Redshift    6 MB Lambda response payload    [GEFF-63][ATH-793]
The size is that of the encoded body, measured before it is compressed or sent.
"""

from __future__ import annotations

from ..errors import ProtocolError

MB = 1024 * 1024
MAX_ROWS = 5000
SNOWFLAKE_MAX_ANSWER_BYTES = 10 * MB
BIGQUERY_MAX_ANSWER_BYTES = 10 * MB
LAMBDA_MAX_ANSWER_BYTES = 6 * MB

ROWS_SETTING = {
    "snowflake": "set MAX_BATCH_ROWS on the external function",
    "bigquery": "set max_batching_rows in the remote function's OPTIONS",
    "redshift": "set MAX_BATCH_ROWS on the Lambda UDF",
}


def check_rows(count: int, warehouse: str, what: str = "rows") -> None:
    """Refuse (413) a request of more than MAX_ROWS rows, naming the warehouse's batch setting."""
    if count > MAX_ROWS:
        raise ProtocolError(
            f"{count} {what} in one request; at most {MAX_ROWS} are accepted: {ROWS_SETTING[warehouse]}",
            status=413,
        )


def check_answer(body_bytes: int, limit: int, warehouse: str, rows: int) -> None:
    """Refuse (413) an answer the warehouse would reject, before it is compressed or sent."""
    if body_bytes > limit:
        raise ProtocolError(
            f"the answer for {rows} rows is {body_bytes / MB:.1f} MB, over the {limit // MB} MB "
            f"the warehouse accepts: {ROWS_SETTING[warehouse]} (e.g. {_suggest(rows, body_bytes, limit)})",
            status=413,
        )


def _suggest(rows: int, body_bytes: int, limit: int) -> int:
    """A batch size whose answer fits, at the same bytes per row, with a 20% margin."""
    return max(1, int(rows * limit / body_bytes * 0.8))
