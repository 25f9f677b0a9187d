"""Conversations read from Rasa's tracker store (read-only), for the review pages.

The review store keeps the sender only as a keyed hash, so nothing new is
stored to find an item's conversation: the senders who wrote in the minutes
before the item was recorded are hashed with the same secret until one
matches, and the conversation is read from the tracker's `events` table
(indexed by sender and, for the retention purge, by timestamp).

Also here: eligibility checks abandoned midway (a conversation whose last
`check_benefit` was set and never cleared, and that has been quiet for a
while) become review items of kind `abandoned_check`.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

import sqlalchemy as sa

from ..knowledge import Knowledge
from ..review import ReviewStore, review_items, review_scans
from ..text import mask_personal_data
from .labels import to_local

log = logging.getLogger(__name__)

MATCH_BEFORE_S = 600      # an item is recorded within seconds of its message; ten minutes is ample
MATCH_AFTER_S = 60
ABANDONED_AFTER_MINUTES = 30
SCAN_NAME = "abandoned_check"
MAX_EVENTS = 2000         # a whole conversation shown at most this long (sessions end after 10 messages)
EVENT_INDEX = "ix_events_timestamp_retention"   # the retention purge's index on the timestamp

events = sa.Table(
    "events", sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sender_id", sa.String(255), nullable=False),
    sa.Column("type_name", sa.String(255), nullable=False),
    sa.Column("timestamp", sa.Float),
    sa.Column("intent_name", sa.String(255)),
    sa.Column("action_name", sa.String(255)),
    sa.Column("data", sa.Text),
)


@dataclass
class Message:
    who: str                  # "user" or "bot"
    text: str
    at: dt.datetime | None
    intent: str | None = None
    kind: str | None = None   # the bot message's custom.kind
    channel: str | None = None
    anchor: bool = False


class TrackerReader:
    """Read-only access to the tracker store's events table."""

    def __init__(self, url: str):
        self.url = url
        kwargs: dict[str, Any] = {"future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 5}
        elif url.startswith(("postgresql", "postgres")):
            kwargs.update(pool_pre_ping=True, connect_args={"connect_timeout": 5})
        self.engine = sa.create_engine(url, **kwargs)
        self._has_table: bool | None = None
        self._indexed = False

    def available(self) -> bool:
        if not self._has_table:
            try:
                with self.engine.connect() as conn:
                    self._has_table = sa.inspect(conn).has_table("events")
            except Exception:  # noqa: BLE001 - no tracker database: the pages say so
                log.warning("tracker store at %s cannot be read", self.url.split("@")[-1], exc_info=True)
                self._has_table = False
        if self._has_table and not self._indexed:
            self._ensure_index()
        return bool(self._has_table)

    def _ensure_index(self) -> None:
        # The lookups go by timestamp; the retention purge creates this same index, and so may we.
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.text(f"CREATE INDEX IF NOT EXISTS {EVENT_INDEX} ON events (timestamp)"))
        except Exception:  # noqa: BLE001 - a read-only login: the queries still work, slower
            log.info("could not create %s on the tracker store", EVENT_INDEX)
        self._indexed = True

    def senders_between(self, start: float, end: float) -> list[str]:
        query = sa.select(events.c.sender_id).where(events.c.timestamp >= start, events.c.timestamp <= end) \
            .distinct()
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(query)]

    def find_sender(self, sender_hash: str, at: dt.datetime, hasher: Callable[[str], str]) -> str | None:
        """The conversation id whose keyed hash is `sender_hash`, among those active around `at` (UTC)."""
        if not self.available():
            return None
        ts = at.replace(tzinfo=dt.timezone.utc).timestamp()
        for sender in self.senders_between(ts - MATCH_BEFORE_S, ts + MATCH_AFTER_S):
            if hasher(sender) == sender_hash:
                return sender
        return None

    def messages(self, sender_id: str, limit: int = MAX_EVENTS) -> list[Message]:
        query = (sa.select(events.c.type_name, events.c.timestamp, events.c.intent_name, events.c.data)
                 .where(events.c.sender_id == sender_id, events.c.type_name.in_(("user", "bot")))
                 .order_by(events.c.id).limit(limit))
        out = []
        with self.engine.connect() as conn:
            for type_name, ts, intent, data in conn.execute(query):
                try:
                    body = json.loads(data or "{}")
                except ValueError:
                    body = {}
                at = dt.datetime.fromtimestamp(ts, dt.timezone.utc).replace(tzinfo=None) if ts else None
                # Older rows may predate masking: mask again before anyone reads them.
                text = mask_personal_data(str(body.get("text") or ""))
                if type_name == "user":
                    out.append(Message("user", text, at, intent=intent, channel=body.get("input_channel")))
                else:
                    custom = (body.get("data") or {}).get("custom") or {}
                    kind = custom.get("kind") if isinstance(custom, dict) else None
                    out.append(Message("bot", text, at, kind=kind))
        return out


def conversation_around(reader: TrackerReader | None, store: ReviewStore, item: dict[str, Any],
                        before: int = 5, after: int = 5, whole: bool = False) -> dict[str, Any]:
    """{"available", "found", "messages", "channel", "answer"}: the messages around the item's moment."""
    result: dict[str, Any] = {"available": False, "found": False, "messages": [], "channel": None,
                              "answer": None, "more_before": 0, "more_after": 0}
    if reader is None or item["kind"].startswith("desk_"):
        return result
    try:
        if not reader.available():
            return result
        result["available"] = True
        sender = reader.find_sender(item["sender"], item["created_at"], store.hash_sender)
        if sender is None:
            return result
        messages = reader.messages(sender)
    except Exception:  # noqa: BLE001 - the item is still shown, without its conversation
        log.exception("could not read the conversation of review item %s", item["id"])
        result["available"] = False
        return result
    if not messages:
        return result
    result["found"] = True
    anchor = _anchor(messages, item)
    messages[anchor].anchor = True
    result["channel"] = messages[anchor].channel
    replies = []
    for m in messages[anchor + 1:]:
        if m.who == "user":
            break
        replies.append(m.text)
    result["answer"] = "\n".join(t for t in replies if t) or None
    if whole:
        shown = messages
    else:
        start, end = max(0, anchor - before), min(len(messages), anchor + after + 1)
        shown = messages[start:end]
        result["more_before"], result["more_after"] = start, len(messages) - end
    result["messages"] = [{"who": m.who, "text": m.text, "time": to_local(m.at), "intent": m.intent,
                           "kind": m.kind, "anchor": m.anchor} for m in shown]
    return result


ANCHOR_INTENTS = {"handoff": ("human_handoff",), "unhelpful": ("feedback_unhelpful",),
                  "helpful": ("feedback_helpful",)}


def _anchor(messages: list[Message], item: dict[str, Any]) -> int:
    """The index of the citizen message the item was recorded for: the latest one sent
    before the item (stored to the second) that fits it: the same text for a question
    the assistant could not place, the 转人工 / feedback message for those."""
    moment = item["created_at"] + dt.timedelta(seconds=2)
    before = [i for i, m in enumerate(messages) if m.who == "user" and m.at and m.at <= moment]
    if not before:
        return 0
    question = (item.get("question") or "").strip()

    def fits(m: Message) -> bool:
        if item["kind"] in ANCHOR_INTENTS:
            return m.intent in ANCHOR_INTENTS[item["kind"]]
        return bool(question) and m.text.strip() == question

    return next((i for i in reversed(before) if fits(messages[i])), before[-1])


# -- checks abandoned midway -------------------------------------------------------------
def _scan_position(store: ReviewStore) -> float:
    store._ensure_schema()
    with store.engine.connect() as conn:
        value = conn.execute(sa.select(review_scans.c.position).where(review_scans.c.name == SCAN_NAME)).scalar()
    return float(value) if value is not None else 0.0


def _save_scan_position(store: ReviewStore, position: float) -> None:
    with store.engine.begin() as conn:
        updated = conn.execute(review_scans.update().where(review_scans.c.name == SCAN_NAME)
                               .values(position=position)).rowcount
        if not updated:
            conn.execute(review_scans.insert().values(name=SCAN_NAME, position=position))


def _check_state(reader: TrackerReader, sender: str) -> dict[str, Any] | None:
    """The running check at the end of a conversation, or None: the last check_benefit
    slot set and not cleared since (a restart clears every slot)."""
    query = (sa.select(events.c.type_name, events.c.timestamp, events.c.data)
             .where(events.c.sender_id == sender, events.c.type_name.in_(("slot", "restart", "user")))
             .order_by(events.c.id))
    benefit = asked = question = None
    last_user_text = None
    since = None
    with reader.engine.connect() as conn:
        for type_name, ts, data in conn.execute(query):
            if type_name == "restart":
                benefit = asked = None
                continue
            try:
                body = json.loads(data or "{}")
            except ValueError:
                continue
            if type_name == "user":
                last_user_text = body.get("text")
            elif body.get("name") == "check_benefit":
                value = body.get("value")
                if value and value != benefit:
                    question, since = last_user_text, ts
                benefit = value or None
            elif body.get("name") == "asked_fact":
                asked = body.get("value") or None
    if not benefit:
        return None
    return {"benefit": benefit, "asked_fact": asked, "question": question, "since": since}


def scan_abandoned_checks(reader: TrackerReader, store: ReviewStore, kb: Knowledge, *,
                          idle_minutes: float = ABANDONED_AFTER_MINUTES, now: float | None = None) -> int:
    """Record each conversation that went quiet mid-check since the last scan; returns how many.

    A conversation is looked at once its last event is `idle_minutes` old, and
    only once: the scan remembers how far it got (review_scans)."""
    if not reader.available():
        return 0
    now = time.time() if now is None else now
    upper = now - idle_minutes * 60
    lower = _scan_position(store)
    if upper <= lower:
        return 0
    found = 0
    with reader.engine.connect() as conn:
        candidates = [r[0] for r in conn.execute(
            sa.select(events.c.sender_id).where(events.c.timestamp > lower, events.c.timestamp <= upper).distinct())]
    for sender in candidates:
        with reader.engine.connect() as conn:
            last = conn.execute(sa.select(sa.func.max(events.c.timestamp))
                                .where(events.c.sender_id == sender)).scalar()
        if last is None or last > upper:
            continue   # still talking: a later scan sees it
        state = _check_state(reader, sender)
        if state is None:
            continue
        at = dt.datetime.fromtimestamp(last, dt.timezone.utc).replace(tzinfo=None)
        sender_hash = store.hash_sender(sender)
        with store.engine.connect() as conn:
            seen = conn.execute(sa.select(review_items.c.id).where(
                review_items.c.kind == "abandoned_check", review_items.c.sender == sender_hash,
                review_items.c.created_at == at.replace(microsecond=0))).first()
        if seen:
            continue
        benefit = kb.benefits.get(state["benefit"])
        answer_id = benefit.answer if benefit and benefit.answer in kb.answers else None
        fact = kb.facts.get(state["asked_fact"] or "")
        detail = {"benefit": state["benefit"], "benefit_name": benefit.name if benefit else state["benefit"],
                  "asked_fact": state["asked_fact"], "asked": fact.label if fact else None}
        store.record_at(at, "abandoned_check", sender, state["question"] or (benefit.name if benefit else ""),
                        intent="check_eligibility", answer_id=answer_id, detail=detail)
        found += 1
    _save_scan_position(store, upper)
    return found
