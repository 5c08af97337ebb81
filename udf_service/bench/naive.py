"""The naive baseline: an external function that calls 6sense once per row, one row after another.

What a first version would look like: decode the batch with the stdlib, then for every row (valid
or not, repeated or not) `POST /v2/people/full` with `requests` and wait for the answer before the
next row. No cache, no dedupe, no pacing, no async protocol. The only courtesy is one keep-alive
session per thread, so it is not slowed by reconnecting on every row.

It is served by gunicorn with the service's worker model (gthread, same workers and threads), and
called by the same Snowflake-style caller with the same parallel batches, so the two differ only in
what happens inside a batch:

    # env NAIVE_UPSTREAM_URL, NAIVE_TOKEN
    gunicorn --worker-class gthread ... 'udf_service.bench.naive:create_app()'
"""

from __future__ import annotations

import gzip
import json
import os
import threading
from typing import Any

import requests
from flask import Flask, Response, request

from udf_service.protocols.compression import LEVEL as GZIP_LEVEL  # same as the service


def create_app(upstream_url: str | None = None, token: str | None = None) -> Flask:
    url = (upstream_url or os.environ["NAIVE_UPSTREAM_URL"]).rstrip("/") + "/v2/people/full"
    auth = {"Authorization": f"Token {token or os.environ['NAIVE_TOKEN']}"}
    local = threading.local()
    app = Flask("naive_baseline")

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return local.session

    def lookup(args: list[Any]) -> dict[str, Any]:
        form = {"email": args[0] if args else "", "country": args[1] if len(args) > 1 else ""}
        response = session().post(url, data={k: v or "" for k, v in form.items()}, headers=auth, timeout=30)
        if response.status_code == 200:
            return {"status": "ok", **response.json()}
        if response.status_code == 404:
            return {"status": "no_match"}
        if response.status_code == 400:
            return {"status": "invalid_input"}
        return {"status": "error", "error": f"HTTP {response.status_code}"}

    @app.post("/snowflake/people/full")
    def people_full() -> Response:
        body = request.get_data()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        rows = json.loads(body)["data"]
        out = json.dumps({"data": [[row[0], lookup(row[1:])] for row in rows]}).encode()
        response = Response(out, mimetype="application/json")
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            response.set_data(gzip.compress(out, compresslevel=GZIP_LEVEL))
            response.headers["Content-Encoding"] = "gzip"
        return response

    @app.get("/healthz")
    def healthz() -> Response:
        return Response(b'{"status": "ok"}', mimetype="application/json")

    return app
