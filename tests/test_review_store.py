import sqlite3

from bot.review import ReviewStore, sender_hash


def make_store(tmp_path):
    return ReviewStore(f"sqlite:///{tmp_path / 'review.db'}", tmp_path / "spool.jsonl")


def test_masks_personal_data_before_storing(tmp_path):
    store = make_store(tmp_path)
    assert store.record("unanswered", "user-1", "我身份证150602199001011234，电话13912345678，能领补贴吗")
    item = store.items()[0]
    assert "150602199001011234" not in item["question"] and "13912345678" not in item["question"]
    assert "150***********1234" in item["question"] and "139****5678" in item["question"]
    assert item["sender"] == sender_hash("user-1") != "user-1"
    raw = (tmp_path / "review.db").read_bytes()
    assert b"13912345678" not in raw


def test_locked_database_spools_and_loses_nothing(tmp_path):
    store = make_store(tmp_path)
    store.record("unanswered", "u", "第一条")
    blocker = sqlite3.connect(tmp_path / "review.db")
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        assert store.record("out_of_scope", "u", "明天天气怎么样") is False
        assert (tmp_path / "spool.jsonl").exists()
    finally:
        blocker.rollback()
        blocker.close()
    assert store.record("handoff", "u", "转人工")
    questions = [i["question"] for i in store.items()]
    assert questions == ["转人工", "明天天气怎么样", "第一条"]
    assert not (tmp_path / "spool.jsonl").exists()


def test_rejects_unknown_kind(tmp_path):
    import pytest

    with pytest.raises(ValueError):
        make_store(tmp_path).record("gossip", "u", "x")


def test_huge_question_is_capped(tmp_path):
    store = make_store(tmp_path)
    store.record("unanswered", "u", "长" * 10_000)
    assert len(store.items()[0]["question"]) == 1000
