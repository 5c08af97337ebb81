"""A deterministic 6sense `/v2/people/full` stand-in, served over real HTTP on loopback.

It follows the seed spec: form-encoded `email` and `country` required (400 otherwise),
`Authorization: Token <token>` (401 otherwise), 404 "No data found" for leads it cannot match
(free-mail domains, and one company domain in ten), and otherwise `company`, `scores[]` and
`segments` derived from a hash of the email and its domain: the same lead always gets the same
answer, leads at one domain share a company. Numbers arrive as strings, as in 6sense's own spec;
some tokens see no scores or segments, as when those toggles are off.

For demos, tests and benchmarks it can add latency, enforce a rate limit (fixed one-second or
one-minute windows, answering 429 like 6sense), count every call (`GET /_sim/stats`) and inject
faults (`POST /_sim/faults`): statuses, malformed bodies, connection resets, slow answers.

    python -m udf_service.simulator --port 8900 --latency-ms 50 --rate-limit 10/second
"""

from __future__ import annotations

import argparse
import hashlib
import socket
import struct
import threading
import time
from collections import Counter
from typing import Any

import orjson
from flask import Flask, Response, request

from .config import RateLimit

FREE_MAIL = frozenset({"gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "aol.com", "icloud.com"})
INDUSTRIES = ("Software", "Financial Services", "Manufacturing", "Healthcare", "Retail", "Education")
EMPLOYEE_RANGES = (
    ("1 - 9", 5),
    ("10 - 49", 30),
    ("50 - 199", 120),
    ("200 - 499", 350),
    ("1,000 - 4,999", 2400),
    ("10,000+", 25000),
)
REVENUE_RANGES = (
    ("$1M - $5M", 3_000_000),
    ("$10M - $25M", 18_000_000),
    ("$100M - $250M", 180_000_000),
    ("$1B+", 2_500_000_000),
)
REGIONS = (
    ("Northern America", "United States", "US", "California", "San Francisco"),
    ("Northern America", "Canada", "CA", "Ontario", "Toronto"),
    ("Western Europe", "Germany", "DE", "Berlin", "Berlin"),
    ("Northern Europe", "United Kingdom", "GB", "England", "London"),
)
PRODUCTS = ("platform", "analytics", "services")
STAGES = ("Target", "Awareness", "Consideration", "Decision", "Purchase")
FITS = ("Weak", "Moderate", "Strong")
SEGMENTS = (
    (4713, "ICP Accounts"),
    (28237, "High Intent Surge"),
    (5120, "Open Opportunities"),
    (6001, "Enterprise Tier"),
    (6002, "Churn Risk"),
)
TITLE_LEVELS = ("Staff", "Manager", "Director", "VP", "C-Level")
TITLE_FUNCTIONS = ("Engineering", "Marketing", "Sales", "Finance", "Operations")


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def _pick(digest: bytes, offset: int, options: tuple[Any, ...]) -> Any:
    return options[digest[offset] % len(options)]


def lead_answer(form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """The status and JSON body 6sense would give for this form (pure, deterministic)."""
    email = (form.get("email") or "").strip().lower()
    country = (form.get("country") or "").strip()
    if not email:
        return 400, {"status": "error", "message": "Email ID is mandatory and can't be blank"}
    if not country:
        return 400, {"status": "error", "message": "Country is mandatory and can't be blank"}
    domain = email.rsplit("@", 1)[-1]
    company_digest = _digest("company:" + domain)
    if "@" not in email or domain in FREE_MAIL or company_digest[0] % 10 == 0:
        return 404, {
            "status": "error",
            "message": "No data found. Please contact 6sense support, "
            "if you think this is an unexpected error.",
        }
    person = _digest("person:" + email)
    region, country_name, iso, state, city = _pick(company_digest, 1, REGIONS)
    employee_range, employees = _pick(company_digest, 2, EMPLOYEE_RANGES)
    revenue_range, revenue = _pick(company_digest, 3, REVENUE_RANGES)
    stem = domain.split(".")[0]
    company = {
        "companyId": str(int.from_bytes(company_digest[4:8], "big")),
        "domain": domain,
        "name": f"{stem.replace('-', ' ').title()} {_pick(company_digest, 8, ('Inc', 'LLC', 'GmbH', 'Ltd'))}",
        "region": region,
        "country": country_name,
        "countryISOCode": iso,
        "state": state,
        "city": city,
        "streetAddress": f"{100 + company_digest[9]} Market Street",
        "postalCode": f"{10000 + int.from_bytes(company_digest[10:12], 'big') % 89999}",
        "companyPhone": f"+1 415 555 {int.from_bytes(company_digest[12:14], 'big') % 10000:04d}",
        "industry": _pick(company_digest, 14, INDUSTRIES),
        "employeeRange": employee_range,
        "revenueRange": revenue_range,
        "employeeCount": str(employees),
        "annualRevenue": str(revenue),
        "siccode": str(7000 + company_digest[15] % 400),
        "sicdescription": "Services-Prepackaged Software",
        "naicscode": str(511000 + company_digest[16] % 300),
        "naicsdescription": "Software Publishers",
        "titleLevel": _pick(person, 0, TITLE_LEVELS),
        "titleFunction": _pick(person, 1, TITLE_FUNCTIONS),
    }
    if company_digest[17] % 7 == 0:
        company["employeeCount"] = ""  # 6sense sometimes knows the range but not the count
    body: dict[str, Any] = {"company": company}
    if company_digest[18] % 5 != 0:  # one company in five: scores toggled off for this token
        body["scores"] = [
            _score(product, person, i) for i, product in enumerate(PRODUCTS[: 1 + person[2] % len(PRODUCTS)])
        ]
    segment_count = company_digest[19] % 4
    if segment_count:
        chosen = [SEGMENTS[(company_digest[20] + i) % len(SEGMENTS)] for i in range(segment_count)]
        body["segments"] = {
            "ids": [s[0] for s in chosen],
            "names": [s[1] for s in chosen],
            "list": [{"id": s[0], "name": s[1]} for s in chosen],
        }
    return 200, body


def _score(product: str, person: bytes, index: int) -> dict[str, Any]:
    base = 3 + index * 6
    return {
        "product": product,
        "company_intent_score": person[base] % 101,
        "company_buying_stage": _pick(person, base + 1, STAGES),
        "company_profile_score": person[base + 2] % 101,
        "company_profile_fit": _pick(person, base + 3, FITS),
        "contact_intent_score": person[base + 4] % 101,
        "contact_grade": _pick(person, base + 5, ("A", "B", "C", "D")),
        "contact_profile_score": (person[base] + person[base + 2]) % 101,
        "contact_profile_fit": _pick(person, base + 4, FITS),
    }


class _Meter:
    """Thread-safe call accounting and the fixed-window rate limit."""

    def __init__(self, rate_limit: RateLimit | None) -> None:
        self.lock = threading.Lock()
        self.rate_limit = rate_limit
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.calls = 0
            self.by_email: Counter[str] = Counter()
            self.statuses: Counter[int] = Counter()
            self.window_start = 0.0
            self.window_count = 0
            self.max_window_count = 0

    def admit(self, email: str) -> bool:
        """Count the call; False when it is over the rate limit (the caller answers 429)."""
        now = time.time()
        with self.lock:
            self.calls += 1
            self.by_email[email] += 1
            if self.rate_limit is None:
                return True
            window = now - now % self.rate_limit.per_s
            if window != self.window_start:
                self.window_start, self.window_count = window, 0
            self.window_count += 1
            self.max_window_count = max(self.max_window_count, self.window_count)
            return self.window_count <= self.rate_limit.amount

    def record(self, status: int) -> None:
        with self.lock:
            self.statuses[status] += 1

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "calls": self.calls,
                "by_email": dict(self.by_email),
                "statuses": {str(k): v for k, v in self.statuses.items()},
                "max_window_count": self.max_window_count,
            }


class _Faults:
    """Injected faults: rules applied in order to matching emails, each a limited number of times."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rules: list[dict[str, Any]] = []

    def set(self, rules: list[dict[str, Any]]) -> None:
        with self.lock:
            self.rules = [dict(rule) for rule in rules]

    def take(self, email: str) -> dict[str, Any] | None:
        with self.lock:
            for rule in self.rules:
                if rule.get("times", 1) <= 0:
                    continue
                if rule.get("match", "*") in ("*", email) or rule.get("match", "") in email:
                    rule["times"] = rule.get("times", 1) - 1
                    return rule
        return None


def create_app(
    token: str | None = None, latency_ms: float = 0.0, rate_limit: RateLimit | None = None
) -> Flask:
    """The simulator as a Flask app. `token` None accepts any `Token <x>` header."""
    app = Flask("sixsense_simulator")
    meter, faults = _Meter(rate_limit), _Faults()
    settings = {"latency_ms": latency_ms}

    def reply(status: int, body: Any) -> Response:
        meter.record(status)
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        return Response(data, status=status, mimetype="application/json")

    @app.post("/v2/people/full")
    def people_full() -> Response:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Token ") or (token is not None and auth != f"Token {token}"):
            return reply(401, {"status": "error", "message": "Invalid API token"})
        form = request.form.to_dict()
        email = (form.get("email") or "").strip().lower()
        if not meter.admit(email):
            return reply(429, {"status": "error", "message": "Too Many Requests"})
        if settings["latency_ms"]:
            time.sleep(settings["latency_ms"] / 1000)
        fault = faults.take(email)
        if fault:
            return _apply_fault(fault, reply, form)
        status, body = lead_answer(form)
        return reply(status, body)

    @app.get("/_sim/stats")
    def stats() -> Response:
        return Response(orjson.dumps(meter.snapshot()), mimetype="application/json")

    @app.post("/_sim/reset")
    def reset() -> Response:
        meter.reset()
        faults.set([])
        return Response(b"{}", mimetype="application/json")

    @app.post("/_sim/faults")
    def set_faults() -> Response:
        document = orjson.loads(request.get_data() or b"{}")
        faults.set(document.get("rules", []))
        if "latency_ms" in document:
            settings["latency_ms"] = float(document["latency_ms"])
        return Response(b"{}", mimetype="application/json")

    return app


def _apply_fault(fault: dict[str, Any], reply: Any, form: dict[str, str]) -> Response:
    if fault.get("delay_ms"):
        time.sleep(float(fault["delay_ms"]) / 1000)
    kind = fault.get("kind", "status")
    if kind == "reset":
        _reset_connection()
        return reply(500, {"status": "error", "message": "connection reset"})
    if kind == "malformed":
        return reply(200, b'{"company": {"name": "Acme", truncated')
    if kind == "pass":
        status, body = lead_answer(form)
        return reply(status, body)
    status = int(fault.get("status", 503))
    return reply(status, fault.get("body", {"status": "error", "message": f"injected {status}"}))


def _reset_connection() -> None:
    """Abort the TCP connection with RST (SO_LINGER 0), as a crashing upstream would."""
    sock = request.environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)  # close() alone leaves werkzeug's reference open


def serve(host: str, port: int, **options: Any) -> None:
    """Serve the simulator until interrupted (threaded werkzeug server: fine for a stand-in)."""
    import logging

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log: it would print emails
    server = make_server(host, port, create_app(**options), threaded=True)
    server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="6sense /v2/people/full simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--token", default=None, help="accept only this token (default: any)")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--rate-limit", default=None, help="e.g. 10/second; default: unlimited")
    args = parser.parse_args(argv)
    limit = RateLimit.parse(args.rate_limit) if args.rate_limit else None
    serve(args.host, args.port, token=args.token, latency_ms=args.latency_ms, rate_limit=limit)


if __name__ == "__main__":
    main()
