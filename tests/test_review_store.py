import asyncio
import fcntl
import json
import multiprocessing
import os
import sqlite3
import stat

import pytest
import sqlalchemy as sa

from bot.config import load_settings
from bot.review import MAX_SPOOL_ATTEMPTS, ReviewStore, get_review_store, sender_hash


def make_store(tmp_path, **kwargs):
    return ReviewStore(f"sqlite:///{tmp_path / 'review.db'}", tmp_path / "spool.jsonl", salt="test-salt", **kwargs)


def questions(store):
    return [i["question"] for i in store.items()]


def spooled(tmp_path, name="spool.jsonl"):
    path = tmp_path / name
    return path.read_bytes().decode("utf-8", "replace").splitlines() if path.exists() else []


class locked_database:
    """Another connection holds an exclusive lock: every write fails as locked."""

    def __init__(self, tmp_path):
        self.db = sqlite3.connect(tmp_path / "review.db")

    def __enter__(self):
        self.db.execute("BEGIN EXCLUSIVE")
        return self

    def __exit__(self, *exc):
        self.db.rollback()
        self.db.close()


def test_masks_personal_data_before_storing(tmp_path):
    store = make_store(tmp_path)
    assert store.record("unanswered", "user-1", "我身份证150602199001011234，电话１３９１２３４５６７８，能领补贴吗")
    item = store.items()[0]
    assert "150602199001011234" not in item["question"] and "13912345678" not in item["question"]
    assert "150***********1234" in item["question"] and "139****5678" in item["question"]
    assert item["sender"] == sender_hash("user-1", "test-salt") != "user-1"
    raw = (tmp_path / "review.db").read_bytes()
    assert b"13912345678" not in raw


def test_locked_database_spools_and_loses_nothing(tmp_path):
    store = make_store(tmp_path, connect_timeout_s=0.2)
    store.record("unanswered", "u", "第一条")
    with locked_database(tmp_path):
        assert store.record("out_of_scope", "u", "明天天气怎么样") is False
        assert store.record("out_of_scope", "u", "后天呢") is False
        assert len(spooled(tmp_path)) == 2
    assert store.record("handoff", "u", "转人工")
    assert questions(store) == ["转人工", "后天呢", "明天天气怎么样", "第一条"]
    assert not (tmp_path / "spool.jsonl").exists()


def test_rejects_unknown_kind(tmp_path):
    with pytest.raises(ValueError):
        make_store(tmp_path).record("gossip", "u", "x")


def test_huge_question_is_capped(tmp_path):
    store = make_store(tmp_path)
    store.record("unanswered", "u", "长" * 10_000)
    assert len(store.items()[0]["question"]) == 1000


def test_a_phone_number_cut_at_the_cap_is_still_masked(tmp_path):
    store = make_store(tmp_path)
    store.record("unanswered", "u", "长" * 993 + "13912345678")
    assert store.items()[0]["question"].endswith("139****")


def test_lone_surrogates_and_control_characters_are_stripped_before_insert(tmp_path):
    # SQLite's driver raises UnicodeEncodeError on a lone surrogate (not a
    # SQLAlchemy error): the item was neither stored nor spooled.
    store = make_store(tmp_path)
    assert store.record("unanswered", "u\ud800", "育儿假\ud800几天\x00？", intent="x\x00", answer_id="a\udfff",
                        detail={"ranking": [{"name": "ask\ud800", "confidence": 0.4}]})
    item = store.items()[0]
    assert item["question"] == "育儿假\ufffd几天 ？"
    assert item["intent"] == "x " and item["answer_id"] == "a\ufffd"
    assert json.loads(item["detail"]) == {"ranking": [{"name": "ask\ufffd", "confidence": 0.4}]}


def test_detail_is_masked(tmp_path):
    store = make_store(tmp_path)
    store.record("handoff", "u", "转人工", detail={"note": "回电13912345678"})
    assert json.loads(store.items()[0]["detail"]) == {"note": "回电139****5678"}


def test_driver_errors_that_are_not_sqlalchemy_errors_are_spooled(tmp_path):
    # psycopg2 raises a plain ValueError for a NUL in a string: it went past
    # the spool and the item was lost.
    store = make_store(tmp_path)
    store.record("unanswered", "u", "第一条")

    def refuse_inserts(conn, cursor, statement, *args):
        if statement.startswith("INSERT"):
            raise ValueError("A string literal cannot contain NUL (0x00) characters.")

    sa.event.listen(store.engine, "before_cursor_execute", refuse_inserts)
    assert store.record("unanswered", "u", "第二条") is False
    assert len(spooled(tmp_path)) == 1
    sa.event.remove(store.engine, "before_cursor_execute", refuse_inserts)
    assert store.record("unanswered", "u", "第三条")
    assert questions(store) == ["第三条", "第二条", "第一条"]


def test_an_unreadable_spool_line_is_moved_aside_and_blocks_nothing(tmp_path):
    # One truncated line made every later record() raise: all later items lost.
    store = make_store(tmp_path, connect_timeout_s=0.2)
    with locked_database(tmp_path):
        store.record("unanswered", "u", "锁住时的问题")
    spool = tmp_path / "spool.jsonl"
    with open(spool, "ab") as fh:
        fh.write(b'{"created_at": "2026-01-01T00:00:00", "kind": "unans\n')   # cut short by a crash
        fh.write(b"\xff\xfe not utf-8\n")
        fh.write(b"[1, 2, 3]\n")
    assert store.record("unanswered", "u", "之后的问题")
    assert questions(store) == ["之后的问题", "锁住时的问题"]
    assert not spool.exists()
    assert len(spooled(tmp_path, "spool.jsonl.bad")) == 3


def test_a_line_cut_short_without_a_newline_does_not_swallow_the_next_item(tmp_path):
    store = make_store(tmp_path, connect_timeout_s=0.2)
    (tmp_path / "spool.jsonl").write_bytes(b'{"created_at": "2026-01-01T00:00:00", "ki')
    with locked_database(tmp_path):
        assert store.record("unanswered", "u", "锁住时的问题") is False
    assert store.drain() == 0
    assert questions(store) == ["锁住时的问题"]
    assert len(spooled(tmp_path, "spool.jsonl.bad")) == 1


def test_spooled_items_go_in_one_at_a_time(tmp_path):
    # All pending items went in one statement: one item the database refuses
    # jammed the spool, and every later item joined it.
    store = make_store(tmp_path, connect_timeout_s=0.2)
    with locked_database(tmp_path):
        store.record("unanswered", "u", "第一条")
        store.record("unanswered", "u", "会被拒绝")
        store.record("unanswered", "u", "第三条")
    lines = spooled(tmp_path)
    refused = json.loads(lines[1])
    refused["status"] = None   # NOT NULL: the database refuses this one item
    (tmp_path / "spool.jsonl").write_text("\n".join([lines[0], json.dumps(refused, ensure_ascii=False), lines[2]]) + "\n",
                                          encoding="utf-8")
    assert store.record("unanswered", "u", "第四条")
    assert questions(store) == ["第四条", "第三条", "第一条"]
    assert [json.loads(line)["question"] for line in spooled(tmp_path)] == ["会被拒绝"]
    for _ in range(MAX_SPOOL_ATTEMPTS):
        store.drain()
    assert not (tmp_path / "spool.jsonl").exists()
    assert [json.loads(line)["question"] for line in spooled(tmp_path, "spool.jsonl.bad")] == ["会被拒绝"]


def test_drain_waits_for_another_process_holding_the_spool_lock(tmp_path):
    store = make_store(tmp_path, connect_timeout_s=0.2)
    with locked_database(tmp_path):
        store.record("unanswered", "u", "锁住时的问题")
    fd = os.open(tmp_path / "spool.jsonl.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert store.drain() == 1          # another process is draining: leave the spool to it
        assert questions(store) == []
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    assert store.drain() == 0
    assert questions(store) == ["锁住时的问题"]


def _record_many(db_url, spool, worker, count):
    store = ReviewStore(db_url, spool, salt="s")
    for i in range(count):
        store.record("unanswered", f"w{worker}", f"进程{worker}第{i}条")


def test_processes_sharing_a_spool_write_every_item_exactly_once(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'review.db'}"
    spool = tmp_path / "spool.jsonl"
    store = make_store(tmp_path, connect_timeout_s=0.2)
    with locked_database(tmp_path):
        for i in range(40):
            store.record("unanswered", "u", f"排队{i}")
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_record_many, args=(db_url, spool, w, 15)) for w in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert all(w.exitcode == 0 for w in workers)
    store.drain()
    stored = questions(store)
    assert len(stored) == len(set(stored)) == 40 + 4 * 15


def test_spool_and_salt_files_are_private(tmp_path, monkeypatch):
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    monkeypatch.setenv("REVIEW_DB_URL", f"sqlite:///{tmp_path / 'review.db'}")
    monkeypatch.delenv("REVIEW_SALT", raising=False)
    store = get_review_store(load_settings())
    salt_file = tmp_path / "review-salt"
    assert stat.S_IMODE(salt_file.stat().st_mode) == 0o600
    with locked_database(tmp_path):
        store.engine.dispose()
        store.engine = sa.create_engine(store.url, connect_args={"timeout": 0.2}, future=True)
        store.record("unanswered", "u", "问题")
    assert stat.S_IMODE((tmp_path / "review-spool.jsonl").stat().st_mode) == 0o600


def test_sender_hash_is_salted_with_a_secret_from_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    monkeypatch.setenv("REVIEW_DB_URL", f"sqlite:///{tmp_path / 'a.db'}")
    monkeypatch.setenv("REVIEW_SALT", "secret-one")
    assert get_review_store(load_settings()).hash_sender("user-1") == sender_hash("user-1", "secret-one")
    assert sender_hash("user-1", "secret-one") != sender_hash("user-1", "secret-two")


def test_default_salt_is_created_once_and_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    monkeypatch.delenv("REVIEW_SALT", raising=False)
    monkeypatch.setenv("REVIEW_DB_URL", f"sqlite:///{tmp_path / 'b.db'}")
    first = get_review_store(load_settings())
    monkeypatch.setenv("REVIEW_DB_URL", f"sqlite:///{tmp_path / 'c.db'}")
    second = get_review_store(load_settings())
    secret = (tmp_path / "review-salt").read_text().strip()
    assert len(secret) >= 32 and first.salt == second.salt == secret
    assert first.hash_sender("user-1") == second.hash_sender("user-1")


def test_record_async_runs_off_the_event_loop(tmp_path):
    store = make_store(tmp_path, connect_timeout_s=1)
    events = []

    async def other_conversation():
        events.append("other conversation served")

    async def main():
        with locked_database(tmp_path):
            recording = asyncio.ensure_future(store.record_async("unanswered", "u", "锁住时的问题"))
            await asyncio.sleep(0)
            await other_conversation()
            events.append(await recording)
        return await store.record_async("unanswered", "u", "解锁后的问题")

    assert asyncio.run(main()) is True
    assert events == ["other conversation served", False]
    assert questions(store) == ["解锁后的问题", "锁住时的问题"]
