"""A throwaway redis-server on a free loopback port, for tests that need a real Redis
(bench/stack.py starts it, as for the load benchmark and the scale-out test)."""
from __future__ import annotations

import contextlib
from typing import Iterator

import pytest

from bench.stack import REDIS_BIN, Redis


@contextlib.contextmanager
def redis_server(port: int | None = None) -> Iterator[str]:
    """redis://127.0.0.1:<port> while a fresh redis-server (nothing saved to disk) runs."""
    if REDIS_BIN is None:
        pytest.fail("redis-server is not installed: `make setup` installs it")
    with Redis(port) as server:
        yield f"redis://127.0.0.1:{server.port}"
