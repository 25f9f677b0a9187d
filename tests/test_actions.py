"""Every action and the form validator, on named tracker states (tests/data/*.json).

Each test asserts the full list of events returned and the messages sent.
"""
import asyncio
import json
from pathlib import Path

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.events import Restarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

import actions.actions as acts
from bot.config import ROOT
from bot.review import ReviewStore

DATA = Path(__file__).parent / "data"
DOMAIN = {"forms": yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))["forms"], "slots": {}}


@pytest.fixture(autouse=True)
def review_db(tmp_path, monkeypatch):
    monkeypatch.setenv("REVIEW_DB_URL", f"sqlite:///{tmp_path / 'review.db'}")
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    acts.services.cache_clear()
    yield ReviewStore(f"sqlite:///{tmp_path / 'review.db'}")
    acts.services.cache_clear()


def tracker(name: str) -> Tracker:
    return Tracker.from_dict(json.loads((DATA / f"{name}.json").read_text(encoding="utf-8")))


def run(action, state: str):
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker(state), DOMAIN))
    return events, dispatcher.messages


def titles(message):
    return [b["title"] for b in message.get("buttons", [])]


def test_answer_renders_knowledge_with_citation_department_and_follow_ups(review_db):
    events, messages = run(acts.ActionAnswer(), "answer_parental_leave")
    assert events == [SlotSet("last_answer", "parental_leave"), SlotSet("last_question", "育儿假有几天")]
    assert len(messages) == 2
    answer, feedback = messages
    assert "夫妻双方每年各给予10天育儿假" in answer["text"]
    assert "依据：《实施方案》二（四）1" in answer["text"]
    assert "牵头部门：市财政局" in answer["text"]
    assert "以官方发布的政策原文为准" in answer["text"]
    assert 2 <= len(answer["buttons"]) <= 3
    assert answer["custom"] == {"clauses": ["2.4.1"], "answer_id": "parental_leave"}
    assert feedback["text"] == "这个回答对您有帮助吗？" and titles(feedback) == ["有帮助", "没帮助"]
    assert review_db.items() == []


def test_answer_to_a_department_question_lists_lead_and_responsible():
    events, messages = run(acts.ActionAnswer(), "department_question")
    assert events == [SlotSet("last_answer", "delivery_subsidy"), SlotSet("last_question", "分娩补贴找哪个部门")]
    text = messages[0]["text"]
    assert "牵头部门：市发展和改革委员会" in text
    assert "市卫生健康委员会" in text and "依据：《实施方案》二（二）2" in text


def test_fallback_with_no_likely_topic_says_so_and_records(review_db):
    events, messages = run(acts.ActionFallback(), "fallback_unknown")
    assert events == []
    assert len(messages) == 1 and "没能理解" in messages[0]["text"] and "12345" in messages[0]["text"]
    items = review_db.items()
    assert [(i["kind"], i["question"]) for i in items] == [("unanswered", "明天天气咋样")]


def test_fallback_offers_the_likely_topics_as_buttons(review_db):
    events, messages = run(acts.ActionFallback(), "fallback_ambiguous")
    assert events == []
    assert messages[0]["text"] == "您是想问以下哪个问题？"
    assert titles(messages[0])[:2] == ["育儿假有几天？", "男方护理假有几天？"]
    assert [i["kind"] for i in review_db.items()] == ["low_confidence"]


def test_handoff_gives_hotline_and_records_the_question_masked(review_db):
    events, messages = run(acts.ActionHandoff(), "handoff")
    assert events == []
    assert "12345" in messages[0]["text"]
    item = review_db.items()[0]
    assert item["kind"] == "handoff" and item["answer_id"] == "delivery_subsidy"
    assert "13912345678" not in item["question"] and "139****5678" in item["question"]


def test_out_of_scope_redirects_and_records(review_db):
    events, messages = run(acts.ActionOutOfScope(), "fallback_unknown")
    assert events == [] and "不在我的服务范围" in messages[0]["text"]
    assert [i["kind"] for i in review_db.items()] == ["out_of_scope"]


def test_unhelpful_feedback_records_the_question(review_db):
    state = json.loads((DATA / "answer_parental_leave.json").read_text(encoding="utf-8"))
    state["slots"]["last_answer"] = "parental_leave"
    state["latest_message"] = {"text": "没帮助", "intent": {"name": "feedback_unhelpful", "confidence": 0.99}}
    state["events"].append({"event": "user", "text": "没帮助",
                            "parse_data": {"intent": {"name": "feedback_unhelpful", "confidence": 0.99}}})
    dispatcher = CollectingDispatcher()
    events = asyncio.run(acts.ActionFeedback().run(dispatcher, Tracker.from_dict(state), DOMAIN))
    assert events == []
    assert "已记录" in dispatcher.messages[0]["text"]
    item = review_db.items()[0]
    assert (item["kind"], item["question"], item["answer_id"]) == ("unhelpful", "育儿假有几天", "parental_leave")


def test_feedback_after_a_session_split_uses_the_carried_over_question(review_db):
    state = {"sender_id": "long-talk", "slots": {"last_answer": "parental_leave", "last_question": "育儿假有几天"},
             "latest_message": {"text": "没帮助", "intent": {"name": "feedback_unhelpful", "confidence": 0.99}},
             "events": [{"event": "session_started"},
                        {"event": "slot", "name": "last_answer", "value": "parental_leave"},
                        {"event": "slot", "name": "last_question", "value": "育儿假有几天"},
                        {"event": "action", "name": "action_listen"},
                        {"event": "user", "text": "没帮助",
                         "parse_data": {"intent": {"name": "feedback_unhelpful", "confidence": 0.99}}}],
             "paused": False, "followup_action": None, "active_loop": {}, "latest_action_name": "action_listen"}
    dispatcher = CollectingDispatcher()
    assert asyncio.run(acts.ActionFeedback().run(dispatcher, Tracker.from_dict(state), DOMAIN)) == []
    item = review_db.items()[0]
    assert (item["kind"], item["question"], item["answer_id"]) == ("unhelpful", "育儿假有几天", "parental_leave")


def test_department_action_names_what_a_department_handles():
    state = json.loads((DATA / "department_question.json").read_text(encoding="utf-8"))
    state["latest_message"] = {"text": "妇联负责啥", "intent": {"name": "ask_department"},
                               "entities": [{"entity": "department", "value": "市妇女联合会"}]}
    dispatcher = CollectingDispatcher()
    events = asyncio.run(acts.ActionDepartment().run(dispatcher, Tracker.from_dict(state), DOMAIN))
    assert events == []
    assert dispatcher.messages[0]["text"].startswith("市妇女联合会在本方案中")


def test_capabilities_menu_has_topic_buttons():
    events, messages = run(acts.ActionCapabilities(), "fallback_unknown")
    assert events == [] and len(messages[0]["buttons"]) >= 8


def test_restart_clears_the_conversation():
    events, messages = run(acts.ActionRestartConversation(), "fallback_unknown")
    assert events == [Restarted()]
    assert "重新开始" in messages[0]["text"]


# -- the eligibility form ------------------------------------------------------

def validate(state: str):
    dispatcher = CollectingDispatcher()
    events = asyncio.run(acts.ValidateEligibilityForm().run(dispatcher, tracker(state), DOMAIN))
    return events, dispatcher.messages


def test_first_message_fills_two_facts_and_asks_only_what_is_missing():
    events, messages = validate("form_first_message")
    assert events == [SlotSet("benefit", "delivery_subsidy"), SlotSet("hukou_ordos", True),
                      SlotSet("child_order", 2), SlotSet("requested_slot", "born_under_policy")]
    assert messages == []


def test_dont_know_is_kept_and_the_form_moves_on():
    events, messages = validate("form_answer_unknown")
    assert events == [SlotSet("born_under_policy", "unknown"),
                      SlotSet("requested_slot", "delivered_at_midwifery_institution")]
    assert messages == []


def test_unparseable_answer_is_rejected_with_a_hint():
    events, messages = validate("form_answer_gibberish")
    assert events == [SlotSet("birth_date", None), SlotSet("requested_slot", "birth_date")]
    assert "没听明白" in messages[0]["text"] and "2024年3月5日" in messages[0]["text"]


def test_ineligible_fact_ends_the_form_early():
    state = json.loads((DATA / "form_first_message.json").read_text(encoding="utf-8"))
    state["slots"]["hukou_ordos"] = "外地"
    state["events"][2]["value"] = "外地"
    dispatcher = CollectingDispatcher()
    events = asyncio.run(acts.ValidateEligibilityForm().run(dispatcher, Tracker.from_dict(state), DOMAIN))
    assert events == [SlotSet("benefit", "delivery_subsidy"), SlotSet("hukou_ordos", False),
                      SlotSet("child_order", 2), SlotSet("requested_slot", None)]


def test_ask_actions_offer_yes_no_buttons():
    events, messages = run(acts.ASK_ACTIONS["born_under_policy"](), "form_answer_unknown")
    assert events == []
    assert "按政策生育" in messages[0]["text"]
    assert titles(messages[0]) == ["是", "否", "不知道"]
    events, messages = run(acts.ASK_ACTIONS["applicant_role"](), "form_answer_unknown")
    assert titles(messages[0]) == ["母亲", "父亲", "不知道"]


def test_ask_benefit_lists_benefits():
    events, messages = run(acts.ActionAskBenefit(), "form_answer_unknown")
    assert events == [] and "二孩、三孩分娩补贴" in titles(messages[0])


def test_verdict_gives_reasons_clause_department_and_clears_the_benefit():
    events, messages = run(acts.ActionCheckEligibility(), "form_complete")
    assert events == [SlotSet("benefit", None)]
    text = messages[0]["text"]
    assert text.startswith("【二孩、三孩分娩补贴】符合条件")
    assert "✓ 产妇为鄂尔多斯市户籍" in text
    assert "依据：《实施方案》二（二）2" in text and "牵头部门：市发展和改革委员会" in text
    assert "未规定" in text  # no invented amount


def test_verdict_with_an_unknown_fact_says_what_is_still_needed():
    state = json.loads((DATA / "form_complete.json").read_text(encoding="utf-8"))
    state["slots"]["delivered_at_midwifery_institution"] = "unknown"
    dispatcher = CollectingDispatcher()
    events = asyncio.run(acts.ActionCheckEligibility().run(dispatcher, Tracker.from_dict(state), DOMAIN))
    assert events == [SlotSet("benefit", None)]
    assert "暂时无法判断" in dispatcher.messages[0]["text"]
    assert "还需确认：在助产机构分娩" in dispatcher.messages[0]["text"]
