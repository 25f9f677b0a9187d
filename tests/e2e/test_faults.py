"""Fault tests with real processes: the action server killed and restarted, the
action server hanging, Rasa restarted in the middle of an eligibility check,
the review database locked, the tracker database unavailable.

Each fault ends with a clear message to the citizen, and every message is
either answered or kept. These tests start their own action server, Rasa and
web app (free ports, a temporary var dir), since they kill, stop and restart
them; they assert on behaviour any version of the dialogue keeps (a reply, the
apology with the hotline, facts kept in the tracker), not on answer wording.
"""
from __future__ import annotations

import os
import signal
import socket
import sqlite3
import time
import uuid

import pytest
import requests

from bot.config import load_settings
from bot.render import busy_apology
from bot.review import ReviewStore
from tests.e2e.conftest import MODEL, Stack, stop

pytestmark = pytest.mark.e2e

APOLOGY = busy_apology(load_settings())
# Rasa waits up to 300 s for an action; a citizen must hear back long before.
# A reply that has not come in 60 s counts as none at all.
NO_REPLY_S = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def sender() -> str:
    return "fault-" + uuid.uuid4().hex


def texts(replies: list[dict]) -> str:
    return "\n".join(r.get("text") or "" for r in replies)


def user_texts(tracker: dict) -> list[str]:
    return [e["text"] for e in tracker["events"] if e["event"] == "user"]


def answered(replies: list[dict]) -> bool:
    """A real answer: something to read, and not the apology."""
    return bool(texts(replies).strip()) and APOLOGY not in texts(replies)


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    if not MODEL.exists():
        pytest.skip(f"no trained model at {MODEL}: the fault tests need one (make test trains it first)")
    s = Stack(tmp_path_factory.mktemp("faults"), rasa_port=free_port(), actions_port=free_port(),
              web_port=free_port())
    try:
        s.start_actions()
        s.start_rasa()
        s.start_web()
        warm_up(s)  # the model loads lazily on the first message
        yield s
    finally:
        s.stop()


def warm_up(stack: Stack) -> None:
    """One message so the next ones do not wait for lazy loading (its answer does not matter)."""
    requests.post(f"{stack.rasa_url}/webhooks/rest/webhook", json={"sender": "fault-warm-up", "message": "你好"},
                  timeout=NO_REPLY_S)


def restart_rasa(stack: Stack) -> None:
    stop(stack.rasa)
    stack.start_rasa()
    warm_up(stack)


def web_conversation(stack: Stack) -> tuple[dict, str]:
    """A conversation id issued by the web app: (headers to send it, Rasa's sender id)."""
    resp = requests.post(f"{stack.web_url}/api/session", timeout=30)
    assert resp.status_code == 201, resp.text
    issued = resp.json()
    return {issued["header"]: issued["conversation_id"]}, issued["conversation_id"].split(".")[0]


def web_chat(stack: Stack, headers: dict, text: str) -> requests.Response:
    return requests.post(f"{stack.web_url}/api/chat", json={"message": text}, headers=headers, timeout=NO_REPLY_S)


def wait_for(condition, what: str, limit_s: float = NO_REPLY_S):
    """Poll until `condition()` is truthy (a background step finishing), or fail."""
    end = time.monotonic() + limit_s
    while True:
        value = condition()
        if value or time.monotonic() > end:
            assert value, f"{what}: not after {limit_s}s"
            return value
        time.sleep(0.5)


def test_action_server_killed_mid_conversation_then_restarted(faulty):
    me = sender()
    assert answered(faulty.say(me, "育儿假有几天", timeout=NO_REPLY_S))
    os.killpg(faulty.actions.pid, signal.SIGKILL)
    faulty.actions.wait()
    try:
        during = faulty.say(me, "产假有多少天", timeout=NO_REPLY_S)
        assert APOLOGY in texts(during) and "12345" in texts(during)
        assert faulty.rasa.poll() is None, "Rasa died with the action server"
    finally:
        faulty.start_actions()
    assert answered(faulty.say(me, "男方护理假几天", timeout=NO_REPLY_S))
    # The message sent while the action server was down is kept in the conversation.
    assert user_texts(faulty.tracker(me))[-3:] == ["育儿假有几天", "产假有多少天", "男方护理假几天"]


def test_hanging_action_server_gets_the_apology_then_recovers(faulty):
    me = sender()
    assert answered(faulty.say(me, "育儿假有几天", timeout=NO_REPLY_S))
    os.killpg(faulty.actions.pid, signal.SIGSTOP)
    try:
        during = faulty.say(me, "产假有多少天", timeout=NO_REPLY_S)
        assert APOLOGY in texts(during) and "12345" in texts(during)
    finally:
        os.killpg(faulty.actions.pid, signal.SIGCONT)
    # The held message finishes in the background once the action server runs again ...
    wait_for(lambda: faulty.tracker(me)["latest_action_name"] == "action_listen"
             and "产假有多少天" in user_texts(faulty.tracker(me)), "the held message was not finished")
    # ... and the next one is answered as usual.
    assert answered(faulty.say(me, "男方护理假几天", timeout=NO_REPLY_S))
    assert user_texts(faulty.tracker(me))[-3:] == ["育儿假有几天", "产假有多少天", "男方护理假几天"]


def running_check(tracker: dict) -> dict:
    """The eligibility check in progress: the benefit checked and the fact it asked for."""
    return {"benefit": tracker["slots"].get("check_benefit"), "asked": tracker["slots"].get("asked_fact")}


def test_rasa_restarted_in_the_middle_of_an_eligibility_check_resumes_it(faulty):
    me = sender()
    faulty.say(me, "我是本地户口，生了老三，能领育儿补贴吗", timeout=NO_REPLY_S)
    before = faulty.tracker(me)
    facts = {"hukou_ordos": True, "child_order": 3}
    assert {k: before["slots"].get(k) for k in facts} == facts, before["slots"]
    check = running_check(before)
    assert check["benefit"] and check["asked"], f"no eligibility check running: {check}"

    restart_rasa(faulty)

    after = faulty.tracker(me)
    assert {k: after["slots"].get(k) for k in facts} == facts
    assert running_check(after) == check
    reply = faulty.say(me, "是的", timeout=NO_REPLY_S)
    assert answered(reply)
    final = faulty.tracker(me)
    # The answer went to the question the check was asking, and the facts stayed.
    assert final["slots"].get(check["asked"]) is True, (check, final["slots"])
    assert {k: final["slots"].get(k) for k in facts} == facts


def test_locked_review_database_loses_no_item(faulty):
    url = f"sqlite:///{faulty.tmp / 'review.db'}"
    ReviewStore(url).items()  # the table exists before the test locks the file
    lock = sqlite3.connect(faulty.tmp / "review.db", timeout=5, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        reply = faulty.say(sender(), "明天天气怎么样", timeout=NO_REPLY_S)
        assert texts(reply).strip()
        stored = [q for (q,) in lock.execute("select question from review_items")]
        assert "明天天气怎么样" not in stored  # it could not be written while the lock was held
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert texts(faulty.say(sender(), "后天天气怎么样", timeout=NO_REPLY_S)).strip()

    def both_stored():
        questions = {item["question"] for item in ReviewStore(url).items()}
        return {"明天天气怎么样", "后天天气怎么样"} <= questions

    wait_for(both_stored, "an unanswered question asked while the review database was locked is missing")


def test_unavailable_tracker_database_answers_503_with_retry_and_loses_nothing(faulty):
    headers, me = web_conversation(faulty)
    first = web_chat(faulty, headers, "育儿假有几天")
    assert first.status_code == 200 and answered(first.json()["messages"])
    stop(faulty.rasa)
    db, aside = faulty.tmp / "tracker.db", faulty.tmp / "tracker-aside"
    aside.mkdir()
    for part in faulty.tmp.glob("tracker.db*"):  # the database and its WAL files
        part.rename(aside / part.name)
    db.mkdir()  # a directory where the database should be: it cannot be opened
    try:
        faulty.start_rasa()
        warm_up(faulty)
        refused = web_chat(faulty, headers, "产假有多少天")
        assert refused.status_code == 503, (refused.status_code, refused.text[:300])
        body = refused.json()
        assert body["retry"] is True and body["error"]["message_zh"]
    finally:
        stop(faulty.rasa)
        db.rmdir()
        for part in aside.iterdir():
            part.rename(faulty.tmp / part.name)
        aside.rmdir()
        faulty.start_rasa()
        warm_up(faulty)
    # The widget sends the kept message again once the database is back: answered, in the same conversation.
    again = web_chat(faulty, headers, "产假有多少天")
    assert again.status_code == 200 and answered(again.json()["messages"])
    assert user_texts(faulty.tracker(me)) == ["育儿假有几天", "产假有多少天"]
