"""What every section shares: processes on loopback, a Snowflake-style caller, leads, timing, the table.

Processes come from `udf_service.testing.processes` (the simulator, `udf-service serve`) or are started here
(`redis-server`, the gunicorn-served baselines); each is known by its own pid and stopped by it when
its `Workspace` closes, and the workspace's temp dir (state files, logs) is removed with it.
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import requests

from udf_service.leads import Lead, lead_from_args
from udf_service.protocols.compression import LEVEL as GZIP_LEVEL  # same as the service
from udf_service.simulator import lead_answer
from udf_service.sixsense.flatten import empty_value, flatten
from udf_service.state import state_from_url
from udf_service.testing.processes import TOKEN, free_port, start_service, start_simulator, stop_process
from udf_service.testing.processes import ServiceProcess as Service
from udf_service.testing.processes import SimulatorProcess as Simulator

FUNCTION_PATH = "/snowflake/people/full"
BATCH_ID_HEADER = "sf-external-function-query-batch-id"
CLK_TCK = os.sysconf("SC_CLK_TCK")
_query_counter = itertools.count()


class BenchError(Exception):
    """A section could not produce its figure (a process died, a batch failed for good)."""


# ---------------------------------------------------------------------------- results and table
@dataclass
class Figure:
    """One line of the table: what this service measured, its same-run baseline, and the goal."""

    section: str
    name: str
    measured: str
    baseline: str = ""
    result: str = ""
    goal: str = ""
    met: bool | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def print_table(figures: Sequence[Figure], out: Any = None) -> None:
    """A plain-text table, one line per figure (cells wrap at 40 characters)."""
    out = out or sys.stdout
    columns = ("section", "figure", "this service", "baseline (same run)", "result", "goal", "met")
    rows = [(f.section, f.name, f.measured, f.baseline, f.result, f.goal, _met(f.met)) for f in figures]
    wrapped = [[_wrap(cell, 40) for cell in row] for row in rows]
    widths = [len(c) for c in columns]
    for row in wrapped:
        widths = [max(w, *(len(line) for line in cell)) for w, cell in zip(widths, row, strict=True)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip(), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for row in wrapped:
        for i in range(max(len(cell) for cell in row)):
            cells = [cell[i] if i < len(cell) else "" for cell in row]
            print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip(), file=out)


def print_markdown(figures: Sequence[Figure], out: Any = None) -> None:
    """The same table as GitHub-flavoured Markdown (for docs/performance.md)."""
    out = out or sys.stdout
    print("| section | figure | this service | baseline (same run) | result | goal | met |", file=out)
    print("|---|---|---|---|---|---|---|", file=out)
    for f in figures:
        cells = (f.section, f.name, f.measured, f.baseline, f.result, f.goal, _met(f.met))
        print("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |", file=out)


def _met(met: bool | None) -> str:
    return "-" if met is None else ("yes" if met else "NO")


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for part in text.split("\n"):
        line = ""
        for word in part.split(" "):
            if line and len(line) + 1 + len(word) > width:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        lines.append(line)
    return lines


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100) by linear interpolation; nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def machine() -> dict[str, Any]:
    """Where the figures were measured (they mean little without it)."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": sys.version.split()[0],
        "date": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "loadavg_at_start": os.getloadavg()[0],
    }


# ---------------------------------------------------------------------------- /proc readings
def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of one process from /proc/<pid>/status, in MiB; 0 if gone. `VmRSS` counts
    the pages of mapped files too (the SQLite state is read through a memory map: its pages are
    the OS page cache, shared by every worker); `RssAnon` is the process's private memory."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds the processes have used so far (/proc/<pid>/stat)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / CLK_TCK


def children(pid: int) -> list[int]:
    """Direct child pids (gunicorn's workers)."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


# ---------------------------------------------------------------------------- processes
@dataclass
class Gunicorn:
    """A baseline app (naive, plain Flask) under gunicorn, configured like the service."""

    url: str
    process: subprocess.Popen[bytes]

    def worker_pids(self) -> list[int]:
        return children(self.process.pid)

    def stop(self) -> None:
        stop_process(self.process)


@dataclass
class Redis:
    """A `redis-server` this workspace started, on a free loopback port, with nothing persisted."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def flush(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            sock.recv(64)

    def stop(self) -> None:
        stop_process(self.process)


class Workspace:
    """A temp dir and the processes one section starts; closing it stops them all (by pid)."""

    def __init__(self, name: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"udf-bench-{name}-"))
        self._stops: list[Callable[[], Any]] = []
        self._count = itertools.count()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        while self._stops:
            with contextlib.suppress(Exception):
                self._stops.pop()()
        shutil.rmtree(self.dir, ignore_errors=True)

    def sqlite_url(self, name: str = "state") -> str:
        return f"sqlite:///{self.dir}/{name}.db"

    def simulator(self, latency_ms: float = 0.0, rate_limit: str | None = None) -> Simulator:
        simulator = start_simulator(TOKEN, latency_ms=latency_ms, rate_limit=rate_limit)
        self._stops.append(simulator.stop)
        return simulator

    def service(
        self,
        simulator_url: str,
        state_url: str,
        *,
        workers: int = 2,
        threads: int = 8,
        env: dict[str, str] | None = None,
    ) -> Service:
        """`udf-service serve` (gunicorn), logging at the production level to a file here."""
        log_path = self.dir / f"service-{next(self._count)}.log"
        environment = {"UDF_LOG_LEVEL": "INFO", **(env or {})}
        service = start_service(
            simulator_url, state_url, log_path, workers=workers, threads=threads, env=environment
        )
        self._stops.append(lambda: service.stop(signal.SIGTERM, timeout_s=20))
        _wait_workers(service.process.pid, workers)
        return service

    def services(self, count: int, simulator_url: str, state_url: str, **options: Any) -> list[Service]:
        """Several instances started at once (they share `state_url`)."""
        with ThreadPoolExecutor(count) as pool:
            futures = [pool.submit(self.service, simulator_url, state_url, **options) for _ in range(count)]
            return [future.result() for future in futures]

    def gunicorn(self, app: str, *, workers: int, threads: int, env: dict[str, str]) -> Gunicorn:
        """`gunicorn <app>` with the service's worker model (gthread), ready on /healthz."""
        port = free_port()
        # The baselines are modules of this package (udf_service.bench.naive, .plain_flask), so
        # gunicorn imports them from wherever the package is installed: no PYTHONPATH needed.
        environment = {**os.environ, **env}
        log = (self.dir / f"gunicorn-{next(self._count)}.log").open("ab")
        command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
                   "--workers", str(workers), "--worker-class", "gthread", "--threads", str(threads),
                   "--keep-alive", "75", "--timeout", "120", "--log-level", "warning", app]  # fmt: skip
        process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        server = Gunicorn(f"http://127.0.0.1:{port}", process)
        self._stops.append(server.stop)
        _wait_http(f"{server.url}/healthz", process, timeout_s=30)
        _wait_workers(process.pid, workers)
        return server

    def redis(self) -> Redis | None:
        """A fresh redis-server, or None when the binary is not installed (Redis rows are skipped)."""
        binary = shutil.which("redis-server")
        if binary is None:
            return None
        port = free_port()
        command = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                   "--appendonly", "no", "--daemonize", "no", "--dir", str(self.dir)]  # fmt: skip
        log = (self.dir / "redis.log").open("ab")
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        server = Redis(port, process)
        self._stops.append(server.stop)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            if process.poll() is not None:
                raise BenchError(f"redis-server exited with {process.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return server
            time.sleep(0.05)
        raise BenchError("redis-server did not answer PING within 10 s")


def _wait_http(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if process.poll() is not None:
            raise BenchError(f"{url}: the server exited with {process.returncode}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise BenchError(f"{url} not ready within {timeout_s:g} s")


def _wait_workers(pid: int, workers: int, timeout_s: float = 15) -> None:
    """Wait until gunicorn has forked all its workers (so RSS and CPU readings see them all)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and len(children(pid)) < workers:
        time.sleep(0.05)


# ---------------------------------------------------------------------------- leads
COUNTRIES = ("US", "USA", "United States", "DE", "Germany", "GB", "United Kingdom")


def unique_leads(count: int, tag: str, domains: int = 500) -> list[list[Any]]:
    """`count` distinct valid leads `[email, country]`; `tag` keeps sets of one run apart."""
    return [[f"{tag}.p{i}@corp{i % domains}-{tag}.com", COUNTRIES[i % 3]] for i in range(count)]


def spelled_differently(row: list[Any], variant: int) -> list[Any]:
    """The same lead (same cache key) as a caller might spell it: case, spaces, country name."""
    email, country = row[0], row[1]
    spellings = {"US": ("US", "usa", "United States"), "USA": ("USA", "us", "united states")}
    spellings["United States"] = ("United States", "US", "USA")
    if variant % 3 == 1:
        email = f"  {email.upper()} "
    return [email, spellings.get(country, (country,))[variant % 3]]


INVALID_ROWS: tuple[list[Any], ...] = ([None, "US"], ["   ", "US"], ["not-an-email", "US"], ["a@b", "DE"])


def expected_status(args: Sequence[Any]) -> str:
    """What the service must answer for this row: invalid_input, ok or no_match (the simulator's)."""
    lead = lead_from_args(args)
    if not isinstance(lead, Lead):
        return "invalid_input"
    return "ok" if lead_answer(lead.form())[0] == 200 else "no_match"


def lost_rows(rows: Sequence[Sequence[Any]], values: Sequence[Any]) -> int:
    """Rows without their final answer: missing, or a status other than the one expected."""
    if len(values) != len(rows):
        return abs(len(rows) - len(values)) + sum(1 for v in values if not isinstance(v, dict))
    return sum(
        1
        for args, value in zip(rows, values, strict=True)
        if not isinstance(value, dict) or value.get("status") != expected_status(args)
    )


def prefill_cache(state_url: str, rows: Sequence[Sequence[Any]], chunk: int = 5000) -> int:
    """Write the answers for `rows` into the service's cache the way the engine stores them.

    Used where a section needs a large warm cache (100,000 leads) faster than the upstream path
    could fill it; economy and throughput go through the upstream path. Returns leads written.
    """
    fetched_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    ok: dict[str, bytes] = {}
    no_match: dict[str, bytes] = {}
    for args in rows:
        lead = lead_from_args(args)
        if not isinstance(lead, Lead):
            continue
        status, body = lead_answer(lead.form())
        if status == 200:
            ok[lead.key] = orjson.dumps(flatten(body, fetched_at))
        else:
            no_match[lead.key] = orjson.dumps(empty_value("no_match", fetched_at=fetched_at))
    state = state_from_url(state_url)
    try:
        for items, ttl in ((ok, 7 * 86400.0), (no_match, 86400.0)):
            keys = list(items)
            for i in range(0, len(keys), chunk):
                state.cache_set_many({k: items[k] for k in keys[i : i + chunk]}, ttl)
    finally:
        state.close()
    return len(ok) + len(no_match)


# ---------------------------------------------------------------------------- the caller
def snowflake_headers(query_id: str, batch_id: str, compression: bool = True) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "snowflake/1.0",
        "sf-external-function-format": "json",
        "sf-external-function-format-version": "1.0",
        "sf-external-function-current-query-id": query_id,
        BATCH_ID_HEADER: batch_id,
        "sf-external-function-name": "SIXSENSE.PEOPLE_FULL",
        "sf-external-function-return-type": "VARIANT",
    }
    if compression:
        headers["Content-Encoding"] = "gzip"
        headers["Accept-Encoding"] = "gzip"
    return headers


def encode_batch(rows: Sequence[Sequence[Any]], compression: bool = True) -> bytes:
    body = orjson.dumps({"data": [[n, *args] for n, args in enumerate(rows)]})
    return gzip.compress(body, compresslevel=GZIP_LEVEL) if compression else body


def new_query_id() -> str:
    return f"01bench{next(_query_counter):05d}-{uuid.uuid4().hex[:12]}"


@dataclass
class QueryResult:
    values: list[Any]
    batch_seconds: list[float]
    elapsed_s: float
    retries: int = 0
    polls: int = 0


class Caller:
    """Calls an external function as Snowflake does: batches, sf-* headers, gzip, retries, 202 polls.

    Retries of 429/5xx and connection errors reuse the batch id (bounded by `max_retry_s`); a 202 is
    polled with GET and the same batch id (bounded by `max_poll_s`). Each thread has its own session.
    """

    def __init__(
        self, url: str, *, compression: bool = True, max_retry_s: float = 60.0, max_poll_s: float = 600.0
    ) -> None:
        self.url = url
        self.compression = compression
        self.max_retry_s = max_retry_s
        self.max_poll_s = max_poll_s
        self._local = threading.local()
        self._lock = threading.Lock()
        self.retries = 0
        self.polls = 0

    @property
    def session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def query(
        self,
        rows: Sequence[Sequence[Any]],
        *,
        batch_rows: int,
        parallel: int,
        query_id: str | None = None,
        urls: Sequence[str] | None = None,
    ) -> QueryResult:
        """One value per row, in order; batches sent `parallel` at a time (round-robin over `urls`)."""
        query_id = query_id or new_query_id()
        batches = [rows[i : i + batch_rows] for i in range(0, len(rows), batch_rows)]
        targets = list(urls or [self.url])
        retries, polls = self.retries, self.polls
        started = time.perf_counter()

        def send(item: tuple[int, Sequence[Sequence[Any]]]) -> tuple[list[Any], float]:
            index, batch = item
            t0 = time.perf_counter()
            values = self.send(batch, f"{query_id}:1:{index}:0:0", query_id, targets[index % len(targets)])
            return values, time.perf_counter() - t0

        with ThreadPoolExecutor(max(1, min(parallel, len(batches)))) as pool:
            answers = list(pool.map(send, enumerate(batches)))
        return QueryResult(
            values=[value for values, _ in answers for value in values],
            batch_seconds=[seconds for _, seconds in answers],
            elapsed_s=time.perf_counter() - started,
            retries=self.retries - retries,
            polls=self.polls - polls,
        )

    def send(
        self, rows: Sequence[Sequence[Any]], batch_id: str, query_id: str, url: str | None = None
    ) -> list[Any]:
        """One batch to its final answer (200), through retries and 202 polls."""
        url = url or self.url
        headers = snowflake_headers(query_id, batch_id, self.compression)
        body = encode_batch(rows, self.compression)
        response = self._retrying(lambda: self.session.post(url, data=body, headers=headers, timeout=120))
        poll_end = time.monotonic() + self.max_poll_s
        delay = 0.05
        while response.status_code == 202:
            if time.monotonic() > poll_end:
                raise BenchError(f"batch {batch_id}: still 202 after {self.max_poll_s:g} s of polling")
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)
            with self._lock:
                self.polls += 1
            response = self._retrying(lambda: self.session.get(url, headers=headers, timeout=120))
        if response.status_code != 200:
            raise BenchError(f"batch {batch_id}: HTTP {response.status_code} {response.text[:300]!r}")
        data = orjson.loads(response.content)["data"]
        if [row[0] for row in data] != list(range(len(rows))):
            raise BenchError(f"batch {batch_id}: row numbers do not match the request")
        return [row[1] for row in data]

    def _retrying(self, send: Callable[[], requests.Response]) -> requests.Response:
        end = time.monotonic() + self.max_retry_s
        delay = 0.1
        while True:
            try:
                response = send()
                if response.status_code != 429 and response.status_code < 500:
                    return response
                failure = f"HTTP {response.status_code}"
            except requests.ConnectionError as exc:
                failure = f"connection error {exc}"
            if time.monotonic() + delay > end:
                raise BenchError(f"gave up retrying after {self.max_retry_s:g} s: {failure}")
            with self._lock:
                self.retries += 1
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def simulator_ceiling(simulator: Simulator, threads: int, count: int) -> float:
    """Calls/s a bare client with `threads` threads gets from the simulator directly: what the
    simulator (and the machine it shares) can serve at all, so a figure can say how much of that
    the service reached. Every lead is new; the simulator closes each connection."""
    local = threading.local()
    url, auth = f"{simulator.url}/v2/people/full", {"Authorization": f"Token {TOKEN}"}

    def call(row: list[Any]) -> None:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        local.session.post(url, data={"email": row[0], "country": row[1]}, headers=auth, timeout=30)

    rows = unique_leads(count, f"ceiling-{next(_query_counter)}")
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(call, rows))
    return len(rows) / (time.perf_counter() - started)


class StatsSampler:
    """Samples the simulator's call counter in the background: (monotonic time, calls) pairs."""

    def __init__(self, simulator: Simulator, interval_s: float = 0.05) -> None:
        self.simulator = simulator
        self.interval_s = interval_s
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-sampler", daemon=True)

    def __enter__(self) -> StatsSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            with contextlib.suppress(requests.RequestException):
                calls = session.get(f"{self.simulator.url}/_sim/stats", timeout=2).json()["calls"]
                self.samples.append((time.monotonic(), calls))
            self._stop.wait(self.interval_s)
