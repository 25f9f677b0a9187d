"""action_respond on tracker states: the events it returns and the messages it sends.

What to say is tested as tables in tests/test_dialogue.py; here the wiring:
slots in, slot events out, review items stored off the event loop, restart.
"""
import asyncio

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import Restarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

import actions.actions as acts
from bot.review import ReviewStore


@pytest.fixture(autouse=True)
def review_db(tmp_path, monkeypatch):
    monkeypatch.setenv("REVIEW_DB_URL", f"sqlite:///{tmp_path / 'review.db'}")
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    acts.services.cache_clear()
    yield ReviewStore(f"sqlite:///{tmp_path / 'review.db'}")
    acts.services.cache_clear()


def tracker(text, intent, confidence=0.9, slots=None, ranking=None, sender="action-test"):
    latest = {"text": text, "intent": {"name": intent, "confidence": confidence},
              "intent_ranking": ranking or [{"name": intent, "confidence": confidence}], "entities": []}
    return Tracker(sender, dict(slots or {}), latest, [{"event": "user", "text": text, "parse_data": latest}],
                   False, None, {}, "action_listen")


def run(state):
    dispatcher = CollectingDispatcher()
    events = asyncio.run(acts.ActionRespond().run(dispatcher, state, {}))
    return events, dispatcher.messages


def test_an_answer_sets_the_topic_and_carries_its_clause():
    events, messages = run(tracker("育儿假有几天", "ask_parental_leave"))
    assert len(messages) == 1
    assert "10天育儿假" in messages[0]["text"]
    custom = messages[0]["custom"]
    assert custom["kind"] == "answer" and custom["answer_id"] == "parental_leave" and "2.4.1" in custom["clauses"]
    assert SlotSet("last_answer", "parental_leave") in events
    assert SlotSet("last_question", "育儿假有几天") in events


def test_a_check_keeps_the_facts_of_the_question_and_asks_only_what_is_missing():
    events, messages = run(tracker("我是鄂尔多斯户口，生了二胎，能领育儿补贴吗", "ask_childrearing_subsidy"))
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots["hukou_ordos"] is True and slots["child_order"] == 2
    assert slots["check_benefit"] == "childrearing_subsidy"
    asks = [m["custom"] for m in messages if m["custom"]["kind"] == "ask"]
    assert asks and asks[-1]["fact"] not in ("hukou_ordos", "child_order")
    assert slots["asked_fact"] == asks[-1]["fact"]


def test_an_answer_inside_a_check_is_taken_and_the_verdict_given():
    state = {"check_benefit": "housing_fund_loan_uplift", "asked_fact": "first_home_purchase", "children_count": 3}
    events, messages = run(tracker("不是，这是第二套房了", "deny", slots=state))
    verdict = [m["custom"] for m in messages if m["custom"]["kind"] == "verdict"]
    assert verdict == [verdict[0]] and verdict[0]["status"] == "ineligible"
    assert SlotSet("first_home_purchase", False) in events and SlotSet("check_benefit", None) in events


def test_a_fallback_is_recorded_for_review_with_the_real_best_guess(review_db):
    ranking = [{"name": "nlu_fallback", "confidence": 0.45}, {"name": "ask_parental_leave", "confidence": 0.2}]
    run(tracker("zxcv qwer", "nlu_fallback", 0.45, ranking=ranking))
    item = review_db.items()[0]
    assert item["kind"] in ("unanswered", "low_confidence")
    assert item["intent"] == "ask_parental_leave" and item["confidence"] == pytest.approx(0.2)


def test_restart_wipes_the_conversation_and_says_what_happens_to_the_record():
    events, messages = run(tracker("重新开始", "restart_conversation", slots={"hukou_ordos": True}))
    assert events == [Restarted()]
    assert "天后自动删除" in messages[0]["text"]


def test_feedback_names_the_question_it_rates(review_db):
    run(tracker("没帮助", "feedback_unhelpful", slots={"last_question": "产假多少天", "last_answer": "maternity_leave"}))
    item = review_db.items(kind="unhelpful")[0]
    assert (item["question"], item["answer_id"]) == ("产假多少天", "maternity_leave")


def test_recording_never_costs_the_answer(monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("database is gone")

    monkeypatch.setattr(acts, "_record_now", broken)
    _, messages = run(tracker("asdf qwer", "nlu_fallback", 0.1))
    assert messages and messages[0]["text"]
