"""End to end: real Rasa and action servers, conversing through the REST channel."""
import sqlite3
import time
import uuid

import pytest

pytestmark = pytest.mark.e2e


def texts(replies):
    return "\n".join(r.get("text", "") for r in replies)


def sender():
    return "e2e-" + uuid.uuid4().hex


def test_a_question_gets_its_answer_with_clause_and_department(stack):
    replies = stack.say(sender(), "育儿假有几天")
    text = texts(replies)
    assert "10天育儿假" in text
    assert "依据：《实施方案》二（四）1" in text and "牵头部门：市财政局" in text
    assert any(r.get("buttons") for r in replies)


def test_traditional_and_typo_questions(stack):
    assert "25天护理假" in texts(stack.say(sender(), "男方陪產假幾天"))
    assert "分娩补贴" in texts(stack.say(sender(), "分免补贴给多少钱"))


def test_eligibility_dialogue_with_an_interruption(stack):
    me = sender()
    first = texts(stack.say(me, "我是鄂尔多斯户口，生了二胎，能领分娩补贴吗"))
    assert "按政策生育" in first            # hukou and child order came from the first message
    side = texts(stack.say(me, "产假有多少天"))
    assert "产假" in side and "依据：《实施方案》二（四）1" in side
    assert "按政策生育" in side              # ... and the form asks again
    assert "助产机构" in texts(stack.say(me, "是的"))
    verdict = texts(stack.say(me, "是"))
    assert "【二孩、三孩分娩补贴】符合条件" in verdict
    assert "依据：《实施方案》二（二）2" in verdict and "市发展和改革委员会" in verdict


def test_an_eligibility_check_survives_a_session_boundary(stack):
    import requests

    from rasa_addons.serving import MAX_TURNS_PER_SESSION
    from tests.e2e.conftest import RASA_PORT

    me = sender()
    assert "按政策生育" in texts(stack.say(me, "我是鄂尔多斯户口，生了二胎，能领分娩补贴吗"))
    questions = ["产假有多少天", "育儿假有几天", "男方护理假几天"]
    for i in range(MAX_TURNS_PER_SESSION):  # side questions: each answered, then the check asks again
        side = texts(stack.say(me, questions[i % len(questions)]))
        assert "依据：《实施方案》" in side and "按政策生育" in side
    assert "助产机构" in texts(stack.say(me, "是的"))
    verdict = texts(stack.say(me, "是"))
    assert "【二孩、三孩分娩补贴】符合条件" in verdict
    tracker = requests.get(f"http://127.0.0.1:{RASA_PORT}/conversations/{me}/tracker",
                           params={"token": stack.env["RASA_TOKEN"], "include_events": "ALL"}, timeout=10).json()
    kinds = [e["event"] for e in tracker["events"]]
    assert kinds.count("session_started") == 2  # the check went on in the second session


def test_cancel_an_eligibility_check(stack):
    me = sender()
    stack.say(me, "老二能跟哥哥同校吗")
    assert "已取消" in texts(stack.say(me, "算了"))


def test_fallback_offers_topics_or_says_it_does_not_know(stack):
    text = texts(stack.say(sender(), "qwerty asdf zxcv"))
    assert "您是想问" in text or "没能理解" in text or "最相关的政策原文" in text


def test_slash_restart_is_text_not_a_command(stack):
    import requests

    from tests.e2e.conftest import RASA_PORT

    me = sender()
    assert "按政策生育" in texts(stack.say(me, "我是本地户口，生了老三，能领育儿补贴吗"))
    replies = stack.say(me, "/restart")
    assert texts(replies)                       # an answer, not silence
    tracker = requests.get(f"http://127.0.0.1:{RASA_PORT}/conversations/{me}/tracker",
                           params={"token": stack.env["RASA_TOKEN"], "include_events": "ALL"}, timeout=10).json()
    last = [e for e in tracker["events"] if e["event"] == "user"][-1]
    # Stored and understood as text: never Rasa's "/restart" command (intent "restart").
    assert last["text"] == "／restart"
    intent = last["parse_data"]["intent"]["name"]
    assert intent != "restart"
    if intent != "restart_conversation":         # read as some other text: nothing was wiped
        assert tracker["slots"]["hukou_ordos"] is True and tracker["slots"]["child_order"] == 3


def test_phone_numbers_are_masked_before_storage(stack):
    me = sender()
    stack.say(me, "我电话13912345678，身份证150602199001011234，育儿假几天")
    db = sqlite3.connect(stack.tmp / "tracker.db")
    rows = " ".join(str(r) for r in db.execute("select data from events where sender_id = ?", (me,)))
    db.close()
    assert rows and "13912345678" not in rows and "150602199001011234" not in rows
    assert "139****5678" in rows


def test_empty_and_huge_messages_get_a_clear_answer(stack):
    assert "请输入" in texts(stack.say(sender(), "   "))
    assert "太长" in texts(stack.say(sender(), "长" * 600))


def test_dead_action_server_still_answers_within_5_seconds(stack):
    from tests.e2e.conftest import stop

    stop(stack.actions)
    try:
        started = time.monotonic()
        replies = stack.say(sender(), "育儿假有几天", timeout=10)
        elapsed = time.monotonic() - started
        assert elapsed < 5
        assert "12345" in texts(replies) and "抱歉" in texts(replies)
    finally:
        stack.start_actions()


def test_a_long_conversation_keeps_facts_feedback_and_history(stack):
    import requests

    from bot.review import ReviewStore
    from rasa_addons.serving import MAX_TURNS_PER_SESSION
    from tests.e2e.conftest import RASA_PORT

    me = sender()
    stack.say(me, "我是本地户口，生了老三，能领育儿补贴吗")
    stack.say(me, "算了")
    questions = ["育儿假有几天", "产假多少天", "男方护理假几天", "生育登记怎么办"]
    for i in range(MAX_TURNS_PER_SESSION - 2):
        stack.say(me, questions[i % len(questions)])
    # This message starts a new session; the feedback must still name the question it rates.
    assert "已记录" in texts(stack.say(me, "没帮助"))
    tracker = requests.get(f"http://127.0.0.1:{RASA_PORT}/conversations/{me}/tracker",
                           params={"token": stack.env["RASA_TOKEN"], "include_events": "ALL"}, timeout=10).json()
    events = tracker["events"]
    assert sum(e["event"] == "session_started" for e in events) >= 2
    assert tracker["slots"]["hukou_ordos"] is True and tracker["slots"]["child_order"] == 3  # carried over
    assert sum(e["event"] == "user" for e in events) == MAX_TURNS_PER_SESSION + 1           # nothing lost
    assert events[-1]["event"] == "action" and [e["event"] for e in events].count("session_started") == 2
    item = ReviewStore(stack.env["REVIEW_DB_URL"]).items(kind="unhelpful")[0]  # newest first
    expected = questions[(MAX_TURNS_PER_SESSION - 3) % len(questions)]
    assert (item["kind"], item["question"]) == ("unhelpful", expected)
