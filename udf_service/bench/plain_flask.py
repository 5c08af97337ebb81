"""The cached-path baseline: plain Flask and the stdlib `json`, doing the same decode and encode.

Per request: gunzip the body, `json.loads` it, pick one stored value per row, `json.dumps` the
`{"data": [[row, value], ...]}` answer, gzip it when the caller accepts gzip. The values are real
cached values of the service (written by the bench to `PLAIN_FLASK_VALUES`, a JSON array); a row
gets one of them by a hash of its email, so the answer has the same size and shape as the
service's. There is no cache lookup, no validation, no metrics and no logging: this is the floor
that Flask + gunicorn + json set, and the service's cached path is measured against it.

    gunicorn --worker-class gthread ... 'udf_service.bench.plain_flask:create_app()'  # env PLAIN_FLASK_VALUES
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from pathlib import Path
from typing import Any

from flask import Flask, Response, request

from udf_service.protocols.compression import LEVEL as GZIP_LEVEL  # same as the service


def create_app(values_path: str | None = None) -> Flask:
    values: list[Any] = json.loads(Path(values_path or os.environ["PLAIN_FLASK_VALUES"]).read_text())
    app = Flask("plain_flask_baseline")

    @app.post("/snowflake/people/full")
    def people_full() -> Response:
        body = request.get_data()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        rows = json.loads(body)["data"]
        data = [[row[0], values[zlib.crc32(str(row[1]).encode()) % len(values)]] for row in rows]
        out = json.dumps({"data": data}).encode()
        response = Response(out, mimetype="application/json")
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            response.set_data(gzip.compress(out, compresslevel=GZIP_LEVEL, mtime=0))
            response.headers["Content-Encoding"] = "gzip"
        return response

    @app.get("/healthz")
    def healthz() -> Response:
        return Response(b'{"status": "ok"}', mimetype="application/json")

    return app
