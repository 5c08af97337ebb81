"""Support for tests, benchmarks and the demo, shipped on purpose (like httpx's MockTransport).

- `ManualClock`, `SkipAheadClock`: time that tests step instead of waiting for;
- `processes`: the one place that starts real processes (the service, the simulator) on loopback;
- `redis.RedisServer`: a real redis-server on a free port;
- `snowflake.SnowflakeCaller`: calls the service the way Snowflake does, live or in process.
"""

from .clock import ManualClock, SkipAheadClock

__all__ = ["ManualClock", "SkipAheadClock"]
