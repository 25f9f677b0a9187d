import dataclasses
import logging
import sqlite3
import time

import pytest
import sqlalchemy as sa

import bot.retention as retention
from bot.config import load_settings
from bot.retention import EVENTS_INDEX, purge
from bot.review import ReviewStore


def make_tracker(path, ages_days, now):
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id TEXT, timestamp REAL, data TEXT)")
    db.executemany("INSERT INTO events (sender_id, timestamp, data) VALUES (?, ?, ?)",
                   [(f"s{i}", now - age * 86400, "{}") for i, age in enumerate(ages_days)])
    db.commit()
    db.close()


def senders(path):
    db = sqlite3.connect(path)
    try:
        return sorted(r[0] for r in db.execute("SELECT sender_id FROM events"))
    finally:
        db.close()


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKER_DB_URL", f"sqlite:///{tmp_path / 'tracker.db'}")
    monkeypatch.setenv("REVIEW_DB_URL", f"sqlite:///{tmp_path / 'review.db'}")
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    monkeypatch.setenv("RETENTION_DAYS", "30")
    return tmp_path


def test_purge_removes_only_old_conversations_and_review_items(env):
    now = time.time()
    make_tracker(env / "tracker.db", [31, 29], now)
    store = ReviewStore(f"sqlite:///{env / 'review.db'}")
    store.record("unanswered", "u", "recent question")
    settings = load_settings()
    assert purge(settings, now=now) == {"events": 1, "review_items": 0, "errors": []}
    assert senders(env / "tracker.db") == ["s1"]
    assert purge(settings, now=now + 31 * 86400) == {"events": 1, "review_items": 1, "errors": []}
    assert senders(env / "tracker.db") == []


@pytest.mark.parametrize("days", ["0", "-1", "-30"])
def test_a_retention_under_one_day_is_refused_at_settings_load(env, monkeypatch, days):
    monkeypatch.setenv("RETENTION_DAYS", days)
    with pytest.raises(ValueError, match="RETENTION_DAYS"):
        load_settings()


@pytest.mark.parametrize("days", [0, -1, 0.5, None, True])
def test_purge_itself_refuses_a_retention_under_one_day_and_deletes_nothing(env, days, caplog):
    # RETENTION_DAYS=0 deleted every conversation at start.
    now = time.time()
    make_tracker(env / "tracker.db", [400, 1, 0], now)
    store = ReviewStore(f"sqlite:///{env / 'review.db'}")
    store.record("unanswered", "u", "question")
    settings = load_settings()
    object.__setattr__(settings, "retention_days", days)   # however it got there
    with caplog.at_level(logging.ERROR, logger="bot.retention"):
        assert purge(settings, now=now + 10 * 86400) == {"events": 0, "review_items": 0, "errors": ["settings"]}
    assert senders(env / "tracker.db") == ["s0", "s1", "s2"]
    assert len(store.items()) == 1
    assert "RETENTION_DAYS" in caplog.text


def test_purge_never_raises_and_logs_each_failure(env, monkeypatch, caplog):
    # An error in the six-hourly loop ended it for good, with no log line.
    (env / "tracker.db").write_bytes(b"this is not a database" * 100)

    def broken_store(settings):
        raise RuntimeError("review database gone")

    monkeypatch.setattr(retention, "get_review_store", broken_store)
    with caplog.at_level(logging.ERROR, logger="bot.retention"):
        result = purge(load_settings())
    assert result == {"events": 0, "review_items": 0, "errors": ["events", "review_items"]}
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 2 and all(r.exc_info for r in failures)
    assert "review database gone" in caplog.text


def test_one_failing_part_does_not_stop_the_other(env, monkeypatch):
    now = time.time()
    make_tracker(env / "tracker.db", [31, 1], now)
    monkeypatch.setattr(retention, "get_review_store", lambda settings: 1 / 0)
    assert purge(load_settings(), now=now) == {"events": 1, "review_items": 0, "errors": ["review_items"]}


def test_purge_deletes_in_batches_with_an_index_on_the_timestamp(env, monkeypatch):
    now = time.time()
    make_tracker(env / "tracker.db", [40] * 7 + [1] * 2, now)
    store = ReviewStore(f"sqlite:///{env / 'review.db'}")
    for i in range(5):
        store.record("unanswered", "u", f"q{i}")
    statements = []
    settings = load_settings()
    original_create_engine = sa.create_engine

    def traced_engine(*args, **kwargs):
        engine = original_create_engine(*args, **kwargs)
        sa.event.listen(engine, "before_cursor_execute",
                        lambda conn, cursor, statement, *a: statements.append(statement))
        return engine

    monkeypatch.setattr(retention.sa, "create_engine", traced_engine)
    result = purge(settings, now=now, batch_rows=3)
    assert result == {"events": 7, "review_items": 0, "errors": []}
    assert senders(env / "tracker.db") == ["s7", "s8"]
    deletes = [s for s in statements if s.startswith("DELETE FROM events")]
    assert len(deletes) == 3                                      # 3 + 3 + 1 rows
    assert purge(settings, now=now + 31 * 86400, batch_rows=2)["review_items"] == 5
    db = sqlite3.connect(env / "tracker.db")
    indexes = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='events'")]
    plan = " ".join(str(r) for r in db.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM events WHERE timestamp < 0 LIMIT 5"))
    db.close()
    assert EVENTS_INDEX in indexes and EVENTS_INDEX in plan


def test_review_items_made_before_the_index_existed_get_it(env):
    db = sqlite3.connect(env / "review.db")
    db.execute("CREATE TABLE review_items (id INTEGER PRIMARY KEY, created_at DATETIME NOT NULL, kind VARCHAR(32) "
               "NOT NULL, sender VARCHAR(64) NOT NULL, question TEXT NOT NULL, intent VARCHAR(80), confidence FLOAT, "
               "answer_id VARCHAR(80), detail TEXT, status VARCHAR(16) NOT NULL)")
    db.commit()
    db.close()
    purge(load_settings())
    db = sqlite3.connect(env / "review.db")
    indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    db.close()
    assert "ix_review_items_created_at" in indexes


def test_settings_override_keeps_the_check():
    settings = load_settings()
    with pytest.raises(ValueError):
        dataclasses.replace(settings, retention_days=0)
