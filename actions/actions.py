"""Rasa SDK actions. Thin: read slots, call bot/, send the reply, return events."""
from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, Restarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot import assistant
from bot.config import load_settings
from bot.knowledge import get_knowledge
from bot.render import Reply
from bot.review import get_review_store
from bot.search import get_index
from bot.understand import UNKNOWN

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def services():
    settings = load_settings()
    kb = get_knowledge(str(settings.knowledge_dir))
    return kb, get_index(kb), settings


def send(dispatcher: CollectingDispatcher, reply: Reply) -> None:
    message = reply.as_message()
    dispatcher.utter_message(text=message["text"], buttons=message.get("buttons", []), json_message=message["custom"])


def latest(tracker: Tracker) -> tuple[str, str]:
    msg = tracker.latest_message or {}
    return (msg.get("intent") or {}).get("name") or "", msg.get("text") or ""


def last_question(tracker: Tracker) -> str:
    """The citizen's last message that was not a control word (for review).

    A long conversation is split into sessions (rasa_addons/serving.py) and the
    action server only sees the current one, so the last answered question is
    also kept in the `last_question` slot, which carries over.
    """
    control = {"human_handoff", "feedback_helpful", "feedback_unhelpful", "affirm", "deny", "cancel", "thank"}
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
            if intent not in control and event.get("text"):
                return event["text"]
    return tracker.get_slot("last_question") or ""


def record(kind: str, tracker: Tracker, question: str, **kwargs: Any) -> None:
    try:
        get_review_store(services()[2]).record(kind, tracker.sender_id, question, **kwargs)
    except Exception:  # noqa: BLE001 - recording must never cost the citizen the answer
        log.exception("could not record review item")


class ActionAnswer(Action):
    def name(self) -> Text:
        return "action_answer"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        kb, _, settings = services()
        intent, text = latest(tracker)
        reply = assistant.answer_reply(kb, settings, intent, text)
        if reply is None:
            send(dispatcher, assistant.menu_reply(kb))
            return []
        send(dispatcher, reply)
        send(dispatcher, assistant.feedback_prompt())
        return [SlotSet("last_answer", reply.answer_id), SlotSet("last_question", text)]


class ActionDepartment(Action):
    def name(self) -> Text:
        return "action_department"

    async def run(self, dispatcher, tracker, domain) -> List[EventType]:
        kb, index, _ = services()
        _, text = latest(tracker)
        department = next(tracker.get_latest_entity_values("department"), None)
        send(dispatcher, assistant.department_reply(kb, index, text, department))
        return []


class ActionCapabilities(Action):
    def name(self) -> Text:
        return "action_capabilities"

    async def run(self, dispatcher, tracker, domain) -> List[EventType]:
        send(dispatcher, assistant.menu_reply(services()[0]))
        return []


class ActionOutsideForm(Action):
    """'是的' or '本地户口' with nothing asked: offer the menu."""

    def name(self) -> Text:
        return "action_outside_form"

    async def run(self, dispatcher, tracker, domain) -> List[EventType]:
        kb = services()[0]
        reply = assistant.menu_reply(kb)
        reply.text = "请问您想咨询哪方面的政策？" + reply.text.split("。", 1)[-1]
        send(dispatcher, reply)
        return []


class ActionFallback(Action):
    def name(self) -> Text:
        return "action_fallback"

    async def run(self, dispatcher, tracker, domain) -> List[EventType]:
        kb, index, settings = services()
        intent, text = latest(tracker)
        ranking = (tracker.latest_message or {}).get("intent_ranking") or []
        reply, unanswered = assistant.fallback_reply(kb, index, settings, text, ranking)
        send(dispatcher, reply)
        top = ranking[0] if ranking else {}
        record("unanswered" if unanswered else "low_confidence", tracker, text,
               intent=top.get("name"), confidence=top.get("confidence"))
        return []


class ActionOutOfScope(Action):
    def name(self) -> Text:
        return "action_out_of_scope"

    async def run(self, dispatcher, tracker, domain) -> List[EventType]:
        _, _, settings = services()
        _, text = latest(tracker)
        send(dispatcher, assistant.out_of_scope_reply(settings))
        record("out_of_scope", tracker, text, intent="out_of_scope")
        return []


class ActionHandoff(Action):
    def name(self) -> Text:
        return "action_handoff"

    async def run(self, dispatcher, tracker, domain) -> List[EventType]:
        _, _, settings = services()
        send(dispatcher, assistant.handoff_reply(settings))
        record("handoff", tracker, last_question(tracker) or latest(tracker)[1], intent="human_handoff",
               answer_id=tracker.get_slot("last_answer"))
        return []


class ActionFeedback(Action):
    def name(self) -> Text:
        return "action_feedback"

    async def run(self, dispatcher, tracker, domain) -> List[EventType]:
        _, _, settings = services()
        intent, _ = latest(tracker)
        answer_id = tracker.get_slot("last_answer")
        if intent == "feedback_unhelpful":
            record("unhelpful", tracker, last_question(tracker), answer_id=answer_id)
            dispatcher.utter_message(text=f"抱歉没能帮到您，您的问题已记录，我们会改进答复。您也可以换个说法再问，"
                                          f"或拨打{settings.hotline}（{settings.hotline_name}）咨询。",
                                     buttons=[{"title": "转人工", "payload": "转人工"}])
        else:
            record("helpful", tracker, last_question(tracker), answer_id=answer_id)
            dispatcher.utter_message(text="感谢您的反馈！还有其他问题可以继续问我。")
        return []


# -- eligibility -------------------------------------------------------------

class ValidateEligibilityForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_eligibility_form"

    async def required_slots(self, domain_slots: List[Text], dispatcher: CollectingDispatcher, tracker: Tracker,
                             domain: DomainDict) -> List[Text]:
        kb, _, _ = services()
        benefit = tracker.get_slot("benefit")
        if not benefit or benefit not in kb.benefits:
            return ["benefit"]
        return ["benefit"] + assistant.still_needed(kb, benefit, tracker.slots)

    async def get_validation_events(self, dispatcher, tracker, domain) -> List[EventType]:
        """Parse every slot set this turn into its fact value, or None to ask again."""
        kb, index, _ = services()
        events: List[EventType] = []
        for slot, raw in tracker.slots_to_validate().items():
            if slot == "benefit":
                benefit = assistant.resolve_benefit(kb, index, raw)
                if benefit is None:
                    send(dispatcher, Reply("抱歉，没有找到这项政策。", []))
                events.append(SlotSet("benefit", benefit))
            elif slot in kb.facts:
                value = assistant.to_fact(kb, slot, raw)
                if value is None and tracker.get_slot("requested_slot") == slot:
                    send(dispatcher, assistant.not_understood_reply(kb, slot))
                events.append(SlotSet(slot, assistant.slot_value(value)))
        return events


def _make_ask_action(fact: str) -> type:
    class AskFact(Action):
        def name(self) -> Text:
            return f"action_ask_{fact}"

        async def run(self, dispatcher, tracker, domain) -> List[EventType]:
            send(dispatcher, assistant.ask_fact_reply(services()[0], fact))
            return []

    AskFact.__name__ = f"ActionAsk_{fact}"
    return AskFact


ASK_ACTIONS = {fact: _make_ask_action(fact) for fact in assistant.fact_slots(services()[0])}


class ActionAskBenefit(Action):
    def name(self) -> Text:
        return "action_ask_benefit"

    async def run(self, dispatcher, tracker, domain) -> List[EventType]:
        send(dispatcher, assistant.ask_benefit_reply(services()[0]))
        return []


class ActionCheckEligibility(Action):
    def name(self) -> Text:
        return "action_check_eligibility"

    async def run(self, dispatcher, tracker, domain) -> List[EventType]:
        kb, _, _ = services()
        benefit = tracker.get_slot("benefit")
        if benefit not in kb.benefits:
            send(dispatcher, assistant.ask_benefit_reply(kb))
            return []
        send(dispatcher, assistant.verdict_reply(kb, benefit, tracker.slots))
        # Facts stay for the next check; the benefit is asked afresh.
        return [SlotSet("benefit", None)]


class ActionRestartConversation(Action):
    """'重新开始': forget everything said so far, and say so."""

    def name(self) -> Text:
        return "action_restart_conversation"

    async def run(self, dispatcher, tracker, domain) -> List[EventType]:
        dispatcher.utter_message(text="好的，我们重新开始，之前的对话内容已清空。请问您想了解哪方面的政策？")
        return [Restarted()]
