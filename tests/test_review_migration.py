"""The review store's work columns reach a table made before they existed, on SQLite and
on PostgreSQL (a throwaway local server, skipped where PostgreSQL is not installed); the
inbox queries, keyset paging and the dashboard's day buckets run on both."""
import datetime as dt
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.config import ROOT
from bot.knowledge import load_knowledge
from bot.review import WORK_COLUMNS, ReviewStore, purge_orphan_work, review_tags
from bot.reviewing import dashboard, inbox
from bot.reviewing.conversations import TrackerReader, events

OLD_TABLE = """CREATE TABLE review_items (id INTEGER PRIMARY KEY, created_at TIMESTAMP NOT NULL,
    kind VARCHAR(32) NOT NULL, sender VARCHAR(64) NOT NULL, question TEXT NOT NULL, intent VARCHAR(80),
    confidence FLOAT, answer_id VARCHAR(80), detail TEXT, status VARCHAR(16) NOT NULL)"""
OLD_TABLE_PG = OLD_TABLE.replace("id INTEGER PRIMARY KEY", "id SERIAL PRIMARY KEY")


@pytest.fixture(scope="module")
def kb():
    return load_knowledge(ROOT / "knowledge")


def exercise(url: str, kb) -> None:
    """Migrate an old table, then use every query the workspace makes."""
    engine = sa.create_engine(url, future=True)
    with engine.begin() as conn:
        conn.execute(sa.text(OLD_TABLE_PG if engine.dialect.name == "postgresql" else OLD_TABLE))
        conn.execute(sa.text("INSERT INTO review_items (created_at, kind, sender, question, status) "
                             "VALUES ('2026-01-01 00:00:00', 'unanswered', 'h', '旧的问题', 'new')"))
    store = ReviewStore(url)
    assert store.record("unanswered", "s", "新的问题", intent="ask_maternity_leave", confidence=0.4)
    columns = {c["name"] for c in sa.inspect(store.engine).get_columns("review_items")}
    assert {c.name for c in WORK_COLUMNS} <= columns
    indexes = {i["name"] for i in sa.inspect(store.engine).get_indexes("review_items")}
    assert {"ix_review_items_created_id", "ix_review_items_status_created"} <= indexes
    # A second store (another process) finds everything in place.
    assert ReviewStore(url).record("handoff", "s", "第三个问题")
    now = dt.datetime.utcnow()
    for i in range(30):
        store.record_at(now - dt.timedelta(minutes=i // 2), "low_confidence", f"x{i}", f"问题{i}",
                        confidence=i / 30, intent="ask_delivery_subsidy")
    with store.engine.begin() as conn:
        conn.execute(review_tags.insert(), [{"item_id": 1, "tag": "旧"}, {"item_id": 9999, "tag": "孤"}])
    with store.engine.connect() as conn:
        for sort in inbox.SORTS:
            f = inbox.Filters(sort=sort, size=20)
            first = inbox.page(conn, kb, f)
            second = inbox.page(conn, kb, f, after=first.next_cursor)
            ids = [r["id"] for r in first.rows + second.rows]
            assert len(ids) == len(set(ids)) == first.total, sort
            back = inbox.page(conn, kb, f, before=second.prev_cursor)
            assert [r["id"] for r in back.rows] == [r["id"] for r in first.rows], sort
        assert inbox.page(conn, kb, inbox.Filters(tag="旧")).total == 1
        assert inbox.page(conn, kb, inbox.Filters(department="市卫生健康委员会")).total == 30
        assert inbox.page(conn, kb, inbox.Filters(q="问题2")).total == 11   # 问题2 and 问题20 to 问题29
    assert purge_orphan_work(store.engine) == 1
    # The tracker store's day buckets (floor on PostgreSQL, integer cast on SQLite).
    events.metadata.create_all(engine)
    ts = now.replace(tzinfo=dt.timezone.utc).timestamp()
    with engine.begin() as conn:
        conn.execute(events.insert(), [{"sender_id": "a", "type_name": "user", "timestamp": ts - k * 3600,
                                        "intent_name": "ask_maternity_leave", "data": json.dumps({"text": "产假"})}
                                       for k in range(3)])
    today = (now + dt.timedelta(hours=8)).date()
    figures = dashboard.tracker_figures(TrackerReader(url), kb, dashboard.Period(today - dt.timedelta(days=1), today))
    assert sum(figures["per_day"].values()) == 3
    assert figures["top_topics"][0]["intent"] == "ask_maternity_leave"
    engine.dispose()
    store.engine.dispose()


def test_sqlite_table_made_before_the_work_columns(tmp_path, kb):
    exercise(f"sqlite:///{tmp_path / 'review.db'}", kb)
    with sqlite3.connect(tmp_path / "review.db") as conn:
        assert conn.execute("SELECT question FROM review_items WHERE id = 1").fetchone() == ("旧的问题",)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_postgresql_table_made_before_the_work_columns(kb):
    pg_root = Path("/usr/lib/postgresql")
    pg_bin = next(iter(sorted(pg_root.glob("*/bin"), reverse=True)), None) if pg_root.exists() else None
    if pg_bin is None:
        pytest.skip("PostgreSQL is not installed here")
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    tmp = Path(tempfile.mkdtemp(prefix="review-pg-"))
    tmp.chmod(0o755)
    data = tmp / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres")
        shutil.chown(data, "postgres")
    port = _free_port()
    server = None
    try:
        subprocess.run(as_postgres + [str(pg_bin / "initdb"), "-D", str(data), "-U", "review", "--auth=trust"],
                       check=True, capture_output=True)
        server = subprocess.Popen(as_postgres + [str(pg_bin / "postgres"), "-D", str(data), "-p", str(port), "-k",
                                                 str(tmp), "-c", "listen_addresses=127.0.0.1"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        for _ in range(60):
            ready = subprocess.run([str(pg_bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                                   capture_output=True)
            if ready.returncode == 0:
                break
            time.sleep(0.5)
        subprocess.run([str(pg_bin / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "review", "review"],
                       check=True, capture_output=True)
        exercise(f"postgresql://review@127.0.0.1:{port}/review", kb)
    finally:
        if server is not None:
            server.terminate()
            server.wait(20)
        shutil.rmtree(tmp, ignore_errors=True)
