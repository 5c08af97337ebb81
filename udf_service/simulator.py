"""A deterministic 6sense `/v2/people/full` stand-in: in process as an httpx transport, or over HTTP.

It follows the seed spec: form-encoded `email` and `country` required (400 otherwise),
`Authorization: Token <token>` (401 otherwise), 404 "No data found" for leads it cannot match
(free-mail domains, and one company domain in ten), and otherwise `company`, `scores[]` and
`segments` derived from a hash of the email and its domain: the same lead always gets the same
answer, leads at one domain share a company. Numbers arrive as strings, as in 6sense's own spec;
some tokens see no scores or segments, as when those toggles are off.

For demos, tests and benchmarks it can add latency, enforce a rate limit (fixed one-second or
one-minute windows, answering 429 like 6sense), count every call and inject faults: statuses,
malformed bodies, connection resets, slow answers. One `Simulator` holds that state; two faces
share it:

- `SimulatorTransport(simulator)`: an `httpx.BaseTransport`, so `SixsenseClient` calls it in
  process (`SIXSENSE_SIMULATE=1`, the in-process tests), with no socket and no subprocess;
- `create_app(simulator)`: the same simulator as a Flask app with its admin API
  (`GET /_sim/stats`, `POST /_sim/reset`, `POST /_sim/faults`), for `udf-service simulator`, the
  end-to-end tests and the benchmarks, which need one upstream shared by several processes.

    udf-service simulator --port 8900 --latency-ms 50 --rate-limit 10/second
"""

from __future__ import annotations

import argparse
import hashlib
import random
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson
from flask import Flask, Response, request
from werkzeug.serving import ThreadedWSGIServer

from .clock import SYSTEM, Clock
from .config import RateLimit

NO_DATA = {
    "status": "error",
    "message": "No data found. Please contact 6sense support, if you think this is an unexpected error.",
}


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
        return 404, NO_DATA
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


@dataclass(frozen=True)
class Reply:
    """What the simulator answers one call: a status and body, or `reset` (the connection drops)."""

    status: int
    body: bytes
    reset: bool = False


class Simulator:
    """The stand-in's state: call accounting, the fixed-window rate limit, faults, latency. Thread-safe."""

    def __init__(
        self,
        token: str | None = None,
        latency_ms: float = 0.0,
        rate_limit: RateLimit | None = None,
        clock: Clock = SYSTEM,
    ) -> None:
        self.token = token
        self.latency_ms = latency_ms
        self.rate_limit = rate_limit
        self.clock = clock
        self.lock = threading.Lock()
        self.rules: list[dict[str, Any]] = []
        self.random = random.Random(0)
        self.reset()

    def reset(self) -> None:
        """Forget every call and fault (the rate-limit window starts again)."""
        with self.lock:
            self.calls = 0
            self.by_email: Counter[str] = Counter()
            self.countries: Counter[str] = Counter()
            self.statuses: Counter[int] = Counter()
            self.window_start = 0.0
            self.window_count = 0
            self.max_window_count = 0
            self.rules = []

    def set_faults(self, rules: list[dict[str, Any]], latency_ms: float | None = None, seed: int = 0) -> None:
        """Rules applied in order to matching emails, each `times` times (default once); a rule
        with `probability` applies to that share of matching calls (seeded: runs repeat)."""
        with self.lock:
            self.rules = [dict(rule) for rule in rules]
            self.random = random.Random(seed)
            if latency_ms is not None:
                self.latency_ms = latency_ms

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "calls": self.calls,
                "by_email": dict(self.by_email),
                "countries": dict(self.countries),
                "statuses": {str(k): v for k, v in self.statuses.items()},
                "max_window_count": self.max_window_count,
            }

    def calls_by_email(self) -> dict[str, int]:
        with self.lock:
            return dict(self.by_email)

    def answer(self, authorization: str, form: dict[str, str]) -> Reply:
        """One call to `/v2/people/full`, as 6sense would answer it (after latency and faults)."""
        if not authorization.startswith("Token ") or (
            self.token is not None and authorization != f"Token {self.token}"
        ):
            return self._reply(401, {"status": "error", "message": "Invalid API token"})
        email = (form.get("email") or "").strip().lower()
        if not self._admit(email, (form.get("country") or "").strip()):
            return self._reply(429, {"status": "error", "message": "Too Many Requests"})
        if self.latency_ms:
            self.clock.sleep(self.latency_ms / 1000)
        fault = self._take_fault(email)
        if fault is not None:
            return self._fault(fault, form)
        return self._reply(*lead_answer(form))

    def _admit(self, email: str, country: str) -> bool:
        """Count the call; False when it is over the rate limit (answered 429)."""
        now = self.clock.time()
        with self.lock:
            self.calls += 1
            self.by_email[email] += 1
            self.countries[country] += 1
            if self.rate_limit is None:
                return True
            window = now - now % self.rate_limit.per_s
            if window != self.window_start:
                self.window_start, self.window_count = window, 0
            self.window_count += 1
            self.max_window_count = max(self.max_window_count, self.window_count)
            return self.window_count <= self.rate_limit.amount

    def _take_fault(self, email: str) -> dict[str, Any] | None:
        with self.lock:
            for rule in self.rules:
                if rule.get("times", 1) <= 0:
                    continue
                if rule.get("match", "*") in ("*", email) or rule.get("match", "") in email:
                    if "probability" in rule and self.random.random() >= rule["probability"]:
                        continue
                    rule["times"] = rule.get("times", 1) - 1
                    return rule
        return None

    def _fault(self, fault: dict[str, Any], form: dict[str, str]) -> Reply:
        if fault.get("delay_ms"):
            self.clock.sleep(float(fault["delay_ms"]) / 1000)
        kind = fault.get("kind", "status")
        if kind == "reset":
            with self.lock:
                self.statuses[0] += 1  # no status: the connection was cut
            return Reply(0, b"", reset=True)
        if kind == "malformed":
            return self._reply(200, b'{"company": {"name": "Acme", truncated')
        if kind == "pass":
            return self._reply(*lead_answer(form))
        status = int(fault.get("status", 503))
        return self._reply(status, fault.get("body", {"status": "error", "message": f"injected {status}"}))

    def _reply(self, status: int, body: Any) -> Reply:
        with self.lock:
            self.statuses[status] += 1
        return Reply(status, body if isinstance(body, bytes) else orjson.dumps(body))


class SimulatorTransport(httpx.BaseTransport):
    """The simulator as an httpx transport: `SixsenseClient(..., transport=SimulatorTransport(sim))`.

    Only `POST /v2/people/full` exists; a `reset` fault raises `httpx.ReadError`, as a connection
    cut after the request went out does on a real socket.
    """

    def __init__(self, simulator: Simulator | None = None) -> None:
        self.simulator = simulator or Simulator()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST" or request.url.path != "/v2/people/full":
            return httpx.Response(404, json={"status": "error", "message": "not found"})
        form = dict(parse_qsl(request.read().decode("utf-8", "replace"), keep_blank_values=True))
        reply = self.simulator.answer(request.headers.get("Authorization", ""), form)
        if reply.reset:
            raise httpx.ReadError("connection reset by peer (simulated)", request=request)
        return httpx.Response(reply.status, content=reply.body, headers={"Content-Type": "application/json"})


def create_app(simulator: Simulator | None = None) -> Flask:
    """The simulator over HTTP, with its admin API under `/_sim/`."""
    simulator = simulator or Simulator()
    app = Flask("sixsense_simulator")

    @app.post("/v2/people/full")
    def people_full() -> Response:
        reply = simulator.answer(request.headers.get("Authorization", ""), request.form.to_dict())
        if reply.reset:
            _reset_connection()
            return Response(b"", status=500)
        return Response(reply.body, status=reply.status, mimetype="application/json")

    @app.get("/_sim/stats")
    def stats() -> Response:
        return Response(orjson.dumps(simulator.stats()), mimetype="application/json")

    @app.post("/_sim/reset")
    def reset() -> Response:
        simulator.reset()
        return Response(b"{}", mimetype="application/json")

    @app.post("/_sim/faults")
    def set_faults() -> Response:
        document = orjson.loads(request.get_data() or b"{}")
        latency = document.get("latency_ms")
        latency_ms = None if latency is None else float(latency)
        simulator.set_faults(document.get("rules", []), latency_ms, int(document.get("seed", 0)))
        return Response(b"{}", mimetype="application/json")

    return app


def _reset_connection() -> None:
    """Abort the TCP connection with RST (SO_LINGER 0), as a crashing upstream would."""
    sock = request.environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)  # close() alone leaves werkzeug's reference open


class SimulatorServer(ThreadedWSGIServer):
    """werkzeug's threaded server, with room for a burst of new connections.

    werkzeug listens with a queue of 128: past it the kernel drops a new connection's SYN and
    the caller retries it a second later (TCP's first retransmission). The service opens a
    connection per call to this server (it closes each one) and starts a batch's calls together,
    so 2 instances x 2 workers of 64 calls each made every batch take 1.5 s instead of 0.5
    (TcpExtListenOverflows counted the drops). 6sense's servers take such bursts; so does this.
    """

    request_queue_size = 4096


def serve(host: str, port: int, simulator: Simulator | None = None) -> None:
    """Serve the simulator until interrupted (threaded werkzeug server: fine for a stand-in)."""
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log: it would print emails
    SimulatorServer(host, port, create_app(simulator)).serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="6sense /v2/people/full simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--token", default=None, help="accept only this token (default: any)")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--rate-limit", default=None, help="e.g. 10/second; default: unlimited")
    args = parser.parse_args(argv)
    limit = RateLimit.parse(args.rate_limit) if args.rate_limit else None
    serve(args.host, args.port, Simulator(token=args.token, latency_ms=args.latency_ms, rate_limit=limit))


if __name__ == "__main__":
    main()
