"""End to end: real Rasa and action servers, conversing through the REST channel."""
import sqlite3
import time
import uuid

import pytest

pytestmark = pytest.mark.e2e


def texts(replies):
    return "\n".join(r.get("text", "") for r in replies)


def custom(replies, kind):
    """The custom data of the messages of one kind (see README "Reply data")."""
    return [r["custom"] for r in replies if isinstance(r.get("custom"), dict) and r["custom"].get("kind") == kind]


def sender():
    return "e2e-" + uuid.uuid4().hex


def test_a_question_gets_its_answer_with_clause_and_department(stack):
    replies = stack.say(sender(), "育儿假有几天")
    text = texts(replies)
    assert "10天育儿假" in text
    assert "依据：《实施方案》二（四）1" in text
    assert custom(replies, "answer")[0]["answer_id"] == "parental_leave"
    assert any(r.get("buttons") for r in replies)


def test_traditional_and_typo_questions(stack):
    assert "25天护理假" in texts(stack.say(sender(), "男方陪產假幾天"))
    assert "分娩补贴" in texts(stack.say(sender(), "分免补贴给多少钱"))


def test_eligibility_dialogue_with_an_interruption(stack):
    me = sender()
    first = stack.say(me, "我是鄂尔多斯户口，生了二胎，能领育儿补贴吗")
    asked = custom(first, "ask")
    # hukou and child order came from the first message: neither is asked
    assert asked and asked[-1]["benefit"] == "childrearing_subsidy"
    assert asked[-1]["fact"] not in ("hukou_ordos", "child_order")
    side = stack.say(me, "产假有多少天")
    assert custom(side, "answer")[0]["answer_id"] == "maternity_leave"
    assert custom(side, "ask")[-1]["fact"] == asked[-1]["fact"]      # ... and the check asks again
    verdict = custom(stack.say(me, "是的，夫妻俩都是按政策生的"), "verdict")
    assert verdict and verdict[0]["benefit"] == "childrearing_subsidy" and verdict[0]["status"] == "eligible"
    assert "2.4.2" in verdict[0]["clauses"]


def test_an_eligibility_check_survives_a_session_boundary(stack):
    import requests

    from rasa_addons.serving import MAX_TURNS_PER_SESSION
    from tests.e2e.conftest import RASA_PORT

    me = sender()
    fact = custom(stack.say(me, "我是鄂尔多斯户口，生了二胎，能领育儿补贴吗"), "ask")[-1]["fact"]
    questions = ["产假有多少天", "育儿假有几天", "男方护理假几天"]
    for i in range(MAX_TURNS_PER_SESSION):  # side questions: each answered, then the check asks again
        side = stack.say(me, questions[i % len(questions)])
        assert "依据：《实施方案》" in texts(side) and custom(side, "ask")[-1]["fact"] == fact
    verdict = custom(stack.say(me, "是的，夫妻俩都是按政策生的"), "verdict")
    assert verdict and verdict[0]["status"] == "eligible"
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
    assert custom(stack.say(me, "我是本地户口，生了老三，能领育儿补贴吗"), "ask")
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


def test_an_unexpected_answer_in_a_check_decides_it_and_nothing_repeats(stack):
    me = sender()
    stack.say(me, "二孩能跟哥哥同校吗")
    replies = stack.say(me, "哥哥已经毕业了")
    texts_ = [r.get("text") for r in replies]
    assert len(texts_) == len(set(texts_))
    verdict = custom(replies, "verdict")
    assert verdict and verdict[0]["benefit"] == "same_school_enrolment" and verdict[0]["status"] == "ineligible"


def test_a_follow_up_is_read_against_the_last_topic(stack):
    me = sender()
    stack.say(me, "三孩家庭公积金贷款有什么优惠")
    verdict = custom(stack.say(me, "不是，这是第二套房了"), "verdict")
    assert verdict and verdict[0]["benefit"] == "housing_fund_loan_uplift" and verdict[0]["status"] == "ineligible"
    who = custom(stack.say(me, "这个找哪个部门"), "department")
    assert who and who[0]["answer_id"] == "housing_fund_loan"


def test_every_button_of_a_check_is_accepted(stack):
    """Tapping a button sends its payload as text: it must move the check on, never loop."""
    for first in ("我能领分娩补贴吗", "我能休育儿假吗", "二孩能跟哥哥同校吗"):
        me = sender()
        replies = stack.say(me, first)
        for _ in range(8):
            asks = [r for r in replies if (r.get("custom") or {}).get("kind") == "ask"]
            if not asks:
                break
            fact = asks[-1]["custom"]["fact"]
            button = asks[-1]["buttons"][0]
            replies = stack.say(me, button["payload"])
            moved = custom(replies, "verdict") or [c for c in custom(replies, "ask") if c["fact"] != fact]
            assert moved, (first, button, texts(replies))
        assert custom(replies, "verdict"), (first, texts(replies))
