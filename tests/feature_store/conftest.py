"""Fixtures of the feature store tests (see support.py)."""

from tests.feature_store.support import redis_env, redis_server  # noqa: F401
