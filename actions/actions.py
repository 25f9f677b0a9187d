"""Rasa SDK actions. Thin: read the message and the slots, call bot.dialogue, send, return events.

Every user message is answered by `action_respond`; what to say is decided
in bot/dialogue.py (no Rasa import there), so a turn is one action and a
reply can never loop.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
from functools import lru_cache
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, Restarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.config import load_settings
from bot.dialogue import Dialogue, Message
from bot.knowledge import get_knowledge
from bot.render import Reply
from bot.review import get_review_store
from bot.search import get_index

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def services():
    settings = load_settings()
    kb = get_knowledge(str(settings.knowledge_dir))
    index = get_index(kb)
    return kb, index, settings, Dialogue(kb, index, settings)


def send(dispatcher: CollectingDispatcher, reply: Reply) -> None:
    message = reply.as_message()
    dispatcher.utter_message(text=message["text"], buttons=message.get("buttons", []), json_message=message["custom"])


def message_of(tracker: Tracker) -> Message:
    latest = tracker.latest_message or {}
    intent = latest.get("intent") or {}
    return Message(text=latest.get("text") or "", intent=intent.get("name") or "",
                   confidence=float(intent.get("confidence") or 0.0),
                   ranking=list(latest.get("intent_ranking") or []), entities=list(latest.get("entities") or []))


def _record_now(settings, sender_id: str, item: Dict[str, Any]) -> None:
    item = dict(item)
    kind, question = item.pop("kind"), item.pop("question", "") or ""
    get_review_store(settings).record(kind, sender_id, question, **item)


async def record_all(settings, sender_id: str, items: List[Dict[str, Any]]) -> None:
    """Store review items off the event loop: a slow or locked database never holds up other conversations."""
    if not items:
        return
    loop = asyncio.get_running_loop()
    for item in items:
        try:
            await loop.run_in_executor(None, _record_now, settings, sender_id, item)
        except Exception:  # noqa: BLE001 - recording must never cost the citizen the answer
            log.exception("could not record review item")


class ActionRespond(Action):
    def name(self) -> Text:
        return "action_respond"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[EventType]:
        kb, index, settings, dialogue = services()
        turn = dialogue.respond(dict(tracker.slots), message_of(tracker), dt.date.today())
        for reply in turn.replies:
            send(dispatcher, reply)
        await record_all(settings, tracker.sender_id, turn.review)
        if turn.restart:
            return [Restarted()]
        return [SlotSet(name, value) for name, value in turn.slots.items()]
