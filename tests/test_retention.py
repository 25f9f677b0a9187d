import sqlite3
import time

from bot.config import load_settings
from bot.retention import purge
from bot.review import ReviewStore


def test_purge_removes_only_old_conversations_and_review_items(tmp_path, monkeypatch):
    tracker = tmp_path / "tracker.db"
    db = sqlite3.connect(tracker)
    db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id TEXT, timestamp REAL, data TEXT)")
    now = time.time()
    db.executemany("INSERT INTO events (sender_id, timestamp, data) VALUES (?, ?, ?)",
                   [("old", now - 31 * 86400, "{}"), ("new", now - 29 * 86400, "{}")])
    db.commit()
    db.close()
    monkeypatch.setenv("TRACKER_DB_URL", f"sqlite:///{tracker}")
    monkeypatch.setenv("REVIEW_DB_URL", f"sqlite:///{tmp_path / 'review.db'}")
    monkeypatch.setenv("RETENTION_DAYS", "30")
    store = ReviewStore(f"sqlite:///{tmp_path / 'review.db'}")
    store.record("unanswered", "u", "recent question")
    settings = load_settings()
    assert purge(settings, now=now) == {"events": 1, "review_items": 0}
    assert purge(settings, now=now + 31 * 86400)["review_items"] == 1
    db = sqlite3.connect(tracker)
    assert [r[0] for r in db.execute("SELECT sender_id FROM events")] == []
