"""The Redis lock store several Rasa processes share (rasa_addons/lock_store.py),
against a real, throwaway redis-server.

Each worker below has its own store object and its own Redis connections, as a
separate Rasa process has, and runs in its own thread with its own event loop;
Redis calls block outside the GIL, so their reads and writes interleave as two
processes' would.
"""
from __future__ import annotations

import asyncio
import threading
import time

import pytest
import redis
from redis_server import redis_server

from rasa_addons.lock_store import AtomicRedisLockStore


@pytest.fixture(scope="module")
def redis_port():
    with redis_server() as url:
        yield int(url.rsplit(":", 1)[1])


@pytest.fixture
def client(redis_port):
    db = redis.Redis(port=redis_port, db=1)
    db.flushdb()
    yield db
    db.close()


def hammer(store_class, port: int, workers: int, rounds: int, conversation: str) -> dict:
    """`workers` stores take one conversation's lock `rounds` times each; returns
    how many held it at once at most, how many turns ran, and the errors."""
    guard = threading.Lock()
    state = {"inside": 0, "most": 0, "turns": 0, "errors": []}

    async def worker():
        store = store_class(host="127.0.0.1", port=port, db=1)
        for _ in range(rounds):
            try:
                async with store.lock(conversation, lock_lifetime=30, wait_time_in_seconds=0.002):
                    with guard:
                        state["inside"] += 1
                        state["most"] = max(state["most"], state["inside"])
                    time.sleep(0.002)  # the turn's work (blocking, as Rasa's database calls are)
                    with guard:
                        state["inside"] -= 1
                        state["turns"] += 1
            except Exception as exc:  # LockError and anything else: counted, not raised
                state["errors"].append(repr(exc))

    threads = [threading.Thread(target=asyncio.run, args=(worker(),)) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return state


def test_one_conversation_is_held_by_one_process_at_a_time(redis_port, client):
    state = hammer(AtomicRedisLockStore, redis_port, workers=6, rounds=25, conversation="c-one")
    assert state["errors"] == []
    assert state["turns"] == 6 * 25
    assert state["most"] == 1
    assert client.keys("*") == []  # the last clean-up removed the queue


def test_tickets_are_distinct_and_kept_when_issued_at_once(redis_port, client):
    stores = [AtomicRedisLockStore(host="127.0.0.1", port=redis_port, db=1) for _ in range(8)]
    tickets: list[int] = []
    start = threading.Barrier(len(stores))

    def issue(store):
        start.wait()
        for _ in range(20):
            tickets.append(store.issue_ticket("c-two", lock_lifetime=30))

    threads = [threading.Thread(target=issue, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(tickets) == list(range(160))  # every ticket issued once, none lost
    queued = [t.number for t in stores[0].get_lock("c-two").tickets]
    assert queued == list(range(160))


def test_a_ticket_of_a_process_that_died_expires_in_redis_too(redis_port, client):
    store = AtomicRedisLockStore(host="127.0.0.1", port=redis_port, db=1)
    store.issue_ticket("c-dead", lock_lifetime=0.4)  # never cleaned up: its process died
    key = store.key_prefix + "c-dead"
    assert 0 < client.pttl(key) <= 400

    async def next_message():
        async with store.lock("c-dead", lock_lifetime=30, wait_time_in_seconds=0.05) as lock:
            return lock.now_serving

    started = time.monotonic()
    assert asyncio.run(next_message()) == 1  # served once the dead ticket expired
    assert 0.2 < time.monotonic() - started < 5
    assert client.exists(key) == 0
    store.issue_ticket("c-gone", lock_lifetime=0.2)
    time.sleep(0.5)
    assert client.exists(store.key_prefix + "c-gone") == 0  # nothing left behind


def test_created_from_the_endpoint_config_as_rasa_creates_it(redis_port):
    from rasa.core.lock_store import LockStore
    from rasa.utils.endpoints import EndpointConfig

    config = EndpointConfig(url="127.0.0.1", type="rasa_addons.lock_store.AtomicRedisLockStore",
                            port=redis_port, db=1, key_prefix="ordos")
    store = LockStore.create(config)
    assert isinstance(store, AtomicRedisLockStore)
    assert store.key_prefix.startswith("ordos:")
    assert store.issue_ticket("c-config") == 0
