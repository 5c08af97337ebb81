"""Shared fixtures: the app in process (most tests), real processes for the e2e tests, and a
real redis-server where Redis is the subject."""

pytest_plugins = ["tests.redis_server", "tests.fixtures", "tests.backends"]
