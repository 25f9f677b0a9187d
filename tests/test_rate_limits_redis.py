"""The Redis rate limiter that several web workers and replicas share.

Against a real, throwaway redis-server: it decides exactly as the in-process
MemoryRateLimiter does, two limiters (as two workers) draw on one allowance,
its keys go away once a client's allowance is full again, and when Redis is
unreachable requests are still served (counted in memory, one warning) until
Redis is back.
"""
from __future__ import annotations

import asyncio
import logging
import time

import pytest
import redis
from redis_server import redis_server

from bot.config import Settings, SettingsError
from bot.web import limits
from bot.web.limits import (API_BUCKETS, CHAT, MemoryRateLimiter, RedisConnection, RedisRateLimiter,
                            make_limiters)


@pytest.fixture(scope="module")
def redis_url():
    with redis_server() as url:
        yield url + "/2"


@pytest.fixture
def db(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


def run(coroutine):
    return asyncio.run(coroutine)


# limit, window (s), request times (s): every decision and wait must be the same in both limiters.
TABLE = {
    "one_per_window": (1, 60, [0, 1, 59.5, 60.5, 61, 200]),
    "burst_then_refused": (3, 60, [0, 0, 0, 0, 0.5, 19.9, 20.1, 20.2]),
    "exact_boundaries": (4, 60, [0, 0, 0, 0, 15, 15, 30, 44.999, 45, 105, 105, 105, 105, 105]),
    "refusals_do_not_count": (2, 10, [0, 0, 1, 2, 3, 4, 5.1, 5.2, 10.3]),
    "uneven_interval": (7, 1, [0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.2, 0.3, 0.4, 1.5, 1.51]),
    "long_gap_restores_everything": (5, 60, [0, 1, 2, 3, 4, 5, 1000, 1000.1, 1000.2, 1000.3, 1000.4, 1000.5]),
    "steady_at_the_rate": (6, 60, [i * 10.0 for i in range(12)]),
    "twice_the_rate": (6, 60, [i * 5.0 for i in range(20)]),
}


@pytest.mark.parametrize("case", sorted(TABLE))
def test_redis_decides_as_memory_does(db, redis_url, case):
    limit, window, times = TABLE[case]
    memory = MemoryRateLimiter(limit, window)
    base = 1_700_000_000.0  # an epoch-like time, as Redis's clock gives

    async def redis_waits():
        limiter = RedisRateLimiter(RedisConnection(redis_url), "table", limit, window)
        return [await limiter.wait_s(case, base + t) for t in times]

    expected = [memory.wait_s(case, base + t) for t in times]
    got = run(redis_waits())
    assert [w == 0 for w in got] == [w == 0 for w in expected], (expected, got)
    assert got == pytest.approx(expected, abs=1e-5)
    assert 0 in got and (any(w > 0 for w in got) or case == "steady_at_the_rate")


def test_two_workers_share_one_allowance(db, redis_url):
    async def scenario():
        # Separate connections and limiter objects: what two worker processes have.
        first = RedisRateLimiter(RedisConnection(redis_url), CHAT, 3, 60)
        second = RedisRateLimiter(RedisConnection(redis_url), CHAT, 3, 60)
        waits = [await first.acquire("10.0.0.1"), await second.acquire("10.0.0.1"), await first.acquire("10.0.0.1"),
                 await second.acquire("10.0.0.1"), await first.acquire("10.0.0.1")]
        other_client = await second.acquire("10.0.0.2")
        return waits, other_client

    waits, other_client = run(scenario())
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 19 < waits[3] <= 20 and 19 < waits[4] <= 20   # one request's share of the minute
    assert other_client == 0.0
    assert db.exists("ordos:ratelimit:chat:10.0.0.1")


def test_buckets_count_apart(db, redis_url):
    async def scenario():
        connection = RedisConnection(redis_url)
        search = RedisRateLimiter(connection, "search", 1, 60)
        chat = RedisRateLimiter(connection, "chat", 1, 60)
        return [await search.acquire("c"), await search.acquire("c"), await chat.acquire("c")]

    first, again, other_bucket = run(scenario())
    assert first == 0 and again > 0 and other_bucket == 0


def test_keys_expire_once_the_allowance_is_full_again(db, redis_url):
    async def scenario():
        limiter = RedisRateLimiter(RedisConnection(redis_url), "expiry", 2, 0.4)
        return [await limiter.acquire("k") for _ in range(3)]

    waits = run(scenario())
    assert waits[:2] == [0, 0] and waits[2] > 0
    key = "ordos:ratelimit:expiry:k"
    assert 0 < db.pttl(key) <= 400
    time.sleep(0.5)
    assert not db.exists(key)
    assert db.dbsize() == 0   # nothing else was written


def test_the_script_is_loaded_again_after_a_redis_script_flush(db, redis_url):
    async def scenario():
        limiter = RedisRateLimiter(RedisConnection(redis_url), "flush", 1, 60)
        first = await limiter.acquire("k")
        db.script_flush()
        return first, await limiter.acquire("k"), limiter.connection.down_since

    first, second, down_since = run(scenario())
    assert first == 0 and second > 0 and down_since is None   # NOSCRIPT -> EVAL, not a fallback


def test_redis_down_requests_served_one_warning_then_recovery(tmp_path, monkeypatch, caplog):
    from bench.stack import free_port

    monkeypatch.setattr(limits, "RETRY_REDIS_AFTER_S", 0.0)   # try Redis again on every request
    port = free_port()
    url = f"redis://127.0.0.1:{port}/2"
    connection = RedisConnection(url, timeout_s=0.5)
    limiter = RedisRateLimiter(connection, CHAT, 3, 60)
    caplog.set_level(logging.WARNING, logger="bot.web.limits")

    async def requests(n):
        return [await limiter.acquire("10.0.0.9") for _ in range(n)]

    waits = run(requests(5))   # nothing listens on the port
    assert waits[:3] == [0, 0, 0] and all(w > 0 for w in waits[3:])   # still limited, in this process
    unreachable = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(unreachable) == 1, [r.getMessage() for r in caplog.records]
    assert connection.down_since is not None

    with redis_server(port):
        db = redis.Redis.from_url(url)
        waits = run(requests(2))
        assert waits == [0, 0]   # Redis counts afresh
        assert db.exists("ordos:ratelimit:chat:10.0.0.9")
        assert connection.down_since is None
        assert any("is back" in r.getMessage() for r in caplog.records)
        db.close()
    assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1


def test_make_limiters_uses_redis_only_when_it_is_set(redis_url):
    in_memory = make_limiters(Settings(rate_limit_redis_url=""))
    assert set(in_memory) == {CHAT, *API_BUCKETS}
    assert all(isinstance(lim, MemoryRateLimiter) for lim in in_memory.values())
    shared = make_limiters(Settings(rate_limit_redis_url=redis_url, rate_limit_per_minute=7,
                                    api_rate_limit_per_minute=11))
    assert all(isinstance(lim, RedisRateLimiter) for lim in shared.values())
    assert shared[CHAT].limit == 7 and shared["search"].limit == 11
    assert len({id(lim.connection) for lim in shared.values()}) == 1   # one connection per process


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379/2", "redis://", "redis://host:port/2", "redis://h:6379/two",
                                 "127.0.0.1:6379", "redis://h:6379/2?db=3"])
def test_a_malformed_redis_url_stops_the_start(url):
    with pytest.raises(SettingsError, match="RATE_LIMIT_REDIS_URL"):
        Settings(rate_limit_redis_url=url)


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", ""])
def test_web_workers_must_be_a_whole_number_of_at_least_one(monkeypatch, value):
    monkeypatch.setenv("WEB_WORKERS", value)
    if value == "":
        assert Settings().web_workers == 1
        return
    with pytest.raises(SettingsError, match="WEB_WORKERS"):
        Settings()


def test_several_workers_without_redis_refuse_to_start(tmp_path):
    import subprocess
    import sys

    from bot.config import ROOT

    env = {"PATH": "/usr/bin:/bin", "VAR_DIR": str(tmp_path), "WEB_WORKERS": "2", "RATE_LIMIT_REDIS_URL": ""}
    done = subprocess.run([sys.executable, "-m", "bot.web"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0
    assert "WEB_WORKERS=2 needs RATE_LIMIT_REDIS_URL" in done.stderr
