"""sixsense-udf benchmarks: call economy, quota, throughput, cached path, memory, state operations, soak.

    python -m udf_service.bench                  # the full suite (under 10 minutes on two cores)
    python -m udf_service.bench --quick          # reduced sizes, for CI
    python -m udf_service.bench --only economy,quota --json bench.json
    python -m udf_service.bench.soak --size full # the bounded soak on its own, sizes adjustable

Each section is a module with `run(quick: bool) -> list[Figure]`. Every figure is a count, a ratio,
or paired with a baseline measured in the same run (the naive per-row implementation, plain Flask,
the configured limit, the ideal), because the machine is shared and absolute times drift.
See docs/performance.md for a full run and what it shows.
"""

SECTIONS: dict[str, str] = {
    "economy": "1. upstream calls per unique valid lead",
    "quota": "2. achieved upstream rate / configured limit, zero 429s",
    "throughput": "3. rows/s with a fast upstream vs ideal and naive",
    "cached": "4. cached path rows/s per core and latency vs plain Flask",
    "memory": "5. RSS per worker at rest and after 100,000 cached leads",
    "state_ops": "6. state writes and reads per fetched lead, SQLite and Redis",
    "soak": "bounded soak: lost rows, latency, memory over a long mixed run",
}
