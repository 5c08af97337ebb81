"""Shared fixtures: the simulator as the 6sense stand-in, and the real service under gunicorn."""

pytest_plugins = ["tests.redis_server", "tests.fixtures", "tests.backends"]
