"""Serving-time fixes for Rasa 3.6, installed when the Rasa process imports rasa_addons.

Action-result validation. For every custom action, Rasa validates the action
server's JSON answer with `jsonschema.validate(result, spec)`. That function
first checks the *schema itself* against the JSON-Schema 2020-12 meta-schema,
on every call. Profiling `rasa run` under load (py-spy, see README
"Benchmarks") showed this meta-schema check taking over half of all CPU time
per message. The schema is a constant, so it is checked once here and the
validator kept; responses are still validated exactly as before (same
validator class, same best-match error, same message).

Event lookup. Reading a tracker from the tracker store turns every stored event
back into an object with `Event.resolve_by_type`, which walks the whole Event
class tree for each event; on a 50-message conversation that was ~6% of CPU.
The lookup is cached per type name (rebuilt when a name is not found, so event
classes imported later still resolve; the first match wins, as before).

SQLite. A SQLite tracker store gets WAL journaling (readers such as the web
app's history view no longer block the writer), `synchronous=NORMAL` (no fsync
per message; WAL stays consistent after a crash) and a 5 s busy timeout, so a
briefly locked database waits instead of failing the message. SQLAlchemy 1.4
opens a new connection for every database session on a SQLite file (NullPool):
three per message, ~5% of CPU. The tracker store's engine keeps its
connections in a pool instead (PostgreSQL keeps Rasa's own pool settings).

Stored-event count. Before inserting a tracker's new events, Rasa's SQL store
counts the rows already stored for the current session (`_additional_events`,
a COUNT with a sub-query for the latest session start): ~11% of CPU per
message in a py-spy profile of the sequential benchmark. The tracker it is
saving was read from that same query moments before, under the conversation's
lock, so the number is already known: the read records it on the tracker and
each save advances it; a conversation with no stored row starts at zero (and
its empty first save is skipped); a tracker that was not read that way
(replaced through the API, or with an event that could not be read back) is
counted as before. Works the same on SQLite and PostgreSQL.

Long conversations. Rasa reads every event of the current session from the
tracker store, replays them for the rule policy and sends them all to the
action server, on every message: per-message time grew from ~35 ms to ~110 ms
over a 60-message conversation (py-spy: past states for the policies, the
tracker JSON for the action server and the tracker read, all growing with the
session). A session therefore ends after MAX_TURNS_PER_SESSION user messages
and the next one starts with what the dialogue needs: each filled slot once
(the facts the citizen gave, the last topic, the slot a form is asking for)
and, inside an eligibility check, the active form, so the check goes on where
it was. The chat history still shows the whole conversation (the history API
reads all sessions). Time-based expiry (`session_config` in domain.yml) is
unchanged and still starts afresh.
"""
from __future__ import annotations

import threading
from typing import Any, Dict, Text

_lock = threading.Lock()
_validator = None
_installed = False


def _cached_validator(spec: Dict[Text, Any]):
    global _validator
    if _validator is None:
        from jsonschema.validators import validator_for

        with _lock:
            if _validator is None:
                cls = validator_for(spec)
                cls.check_schema(spec)
                _validator = cls(spec)
    return _validator


def validate_action_result(self, result: Dict[Text, Any]) -> bool:
    """Drop-in for RemoteAction._validate_action_result with the schema checked once."""
    from jsonschema.exceptions import best_match
    from rasa.shared.constants import DOCS_BASE_URL

    error = best_match(_cached_validator(self.action_response_format_spec()).iter_errors(result))
    if error is None:
        return True
    error.message += (
        ". Failed to validate Action server response from API, "
        "make sure your response from the Action endpoint is valid. "
        f"For more information about the format visit {DOCS_BASE_URL}/custom-actions"
    )
    raise error


_event_classes: Dict[Text, Any] = {}


def _rebuild_event_classes() -> None:
    from rasa.shared.core.events import Event
    from rasa.shared.utils.common import all_subclasses

    table: Dict[Text, Any] = {}
    for cls in all_subclasses(Event):
        table.setdefault(cls.type_name, cls)
    _event_classes.clear()
    _event_classes.update(table)


def resolve_event_by_type(type_name: Text, default=None):
    """Drop-in for Event.resolve_by_type with a cached name -> class table."""
    cls = _event_classes.get(type_name)
    if cls is None:
        _rebuild_event_classes()
        cls = _event_classes.get(type_name)
    if cls is not None:
        return cls
    if type_name == "topic":
        return None  # Rasa's backwards compatibility for old TopicSet events
    if default is not None:
        return default
    raise ValueError(f"Unknown event name '{type_name}'.")


MAX_TURNS_PER_SESSION = 10


def turns_in_current_session(tracker) -> int:
    from rasa.shared.core.events import SessionStarted, UserUttered

    turns = 0
    for event in reversed(tracker.events):
        if isinstance(event, SessionStarted):
            break
        if isinstance(event, UserUttered):
            turns += 1
    return turns


def is_session_too_long(tracker, domain) -> bool:
    """The current session is long and has not expired by time."""
    import time

    from rasa.shared.core.events import UserUttered

    if turns_in_current_session(tracker) < MAX_TURNS_PER_SESSION:
        return False
    config = domain.session_config
    last = tracker.get_last_event_for(UserUttered)
    expired_by_time = (config.are_sessions_enabled() and last is not None
                       and (time.time() - last.timestamp) / 60 > config.session_expiration_time)
    return not expired_by_time


def carried_over(tracker) -> list:
    """What a session split keeps: one SlotSet per slot that holds a value, then
    the active form (after its requested_slot, so the form resumes on it)."""
    from rasa.shared.core.events import ActiveLoop, SlotSet

    events = [SlotSet(name, slot.value) for name, slot in tracker.slots.items()
              if slot.value is not None and slot.value != slot.initial_value]
    if tracker.active_loop_name:
        events.append(ActiveLoop(tracker.active_loop_name))
    return events


def _patch_sessions(processor_cls, session_start_cls) -> None:
    stock_expired = processor_cls._has_session_expired
    stock_run = session_start_cls.run

    def _has_session_expired(self, tracker) -> bool:
        return stock_expired(self, tracker) or is_session_too_long(tracker, self.domain)

    async def run(self, output_channel, nlg, tracker, domain):
        from rasa.shared.core.events import SlotSet

        events = await stock_run(self, output_channel, nlg, tracker, domain)
        if is_session_too_long(tracker, domain):
            # Rasa's own carry-over copies every SlotSet event of the old
            # session, so carried slots would pile up session after session.
            events = [e for e in events if not isinstance(e, SlotSet)]
            events[1:1] = carried_over(tracker)
        return events

    processor_cls._has_session_expired = _has_session_expired
    session_start_cls.run = run


def _tune_sqlite(dbapi_connection, _record) -> None:
    import sqlite3

    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout=5000")
        if cursor.execute("PRAGMA database_list").fetchone()[2]:  # a file, not :memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def tracker_engine_kwargs(url) -> Dict[Text, Any]:
    """Drop-in for rasa.core.tracker_store.create_engine_kwargs: a pool for a SQLite
    file (not for an in-memory database, where each connection is its own database)."""
    import sqlalchemy as sa

    parsed = sa.engine.make_url(url) if isinstance(url, str) else url
    if parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:"):
        # Connections are handed out one at a time by the pool; any thread may use one.
        return {"poolclass": sa.pool.QueuePool, "pool_size": 5, "max_overflow": 10,
                "connect_args": {"check_same_thread": False}}
    return _stock_engine_kwargs(url)


_stock_engine_kwargs = None

# Attribute on a DialogueStateTracker: how many of its leading events are in the
# SQL store (the store's rows for the current session at read time, plus saves).
STORED_EVENTS = "_ordos_stored_events"


async def sql_retrieve(self, sender_id: Text, fetch_events_from_all_sessions: bool):
    """SQLTrackerStore._retrieve that also records how many events were read."""
    import json

    from rasa.shared.core.trackers import DialogueStateTracker

    with self.session_scope() as session:
        rows = self._event_query(session, sender_id,
                                 fetch_events_from_all_sessions=fetch_events_from_all_sessions).all()
        events = [json.loads(row.data) for row in rows]
    if not (self.domain and events):
        # No row at all for this conversation: the save that creates it (next, in
        # get_or_create_tracker) needs no count either.
        self._ordos_absent = sender_id if self.domain and not events else None
        return None
    tracker = DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
    # Only the current-session read matches what a save would count, and only when
    # every stored row became an event in the tracker.
    if not fetch_events_from_all_sessions and len(tracker.events) == len(events):
        setattr(tracker, STORED_EVENTS, len(events))
    return tracker


def sql_additional_events(self, session, tracker):
    """SQLTrackerStore._additional_events without the COUNT when the number is known."""
    import itertools

    stored = getattr(tracker, STORED_EVENTS, None)
    if stored is None:
        return _stock_additional_events(self, session, tracker)
    return itertools.islice(tracker.events, stored, len(tracker.events))


async def sql_save(self, tracker) -> None:
    if getattr(tracker, STORED_EVENTS, None) is None and getattr(self, "_ordos_absent", None) == tracker.sender_id:
        setattr(tracker, STORED_EVENTS, 0)
    self._ordos_absent = None  # used by the first save after the read, or not at all
    if getattr(tracker, STORED_EVENTS, None) == len(tracker.events) and self.event_broker is None:
        return  # nothing new to store (a conversation's empty first save)
    await _stock_sql_save(self, tracker)
    setattr(tracker, STORED_EVENTS, len(tracker.events))


_stock_additional_events = _stock_sql_save = None


def install() -> None:
    """Idempotent: install the fixes once per process."""
    global _installed
    if _installed:
        return
    from rasa.core import tracker_store
    from rasa.core.actions.action import ActionSessionStart, RemoteAction
    from rasa.core.processor import MessageProcessor
    from rasa.shared.core.events import Event
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    RemoteAction._validate_action_result = validate_action_result
    _patch_sessions(MessageProcessor, ActionSessionStart)
    Event.resolve_by_type = staticmethod(resolve_event_by_type)
    event.listen(Engine, "connect", _tune_sqlite)
    global _stock_engine_kwargs
    _stock_engine_kwargs = tracker_store.create_engine_kwargs
    tracker_store.create_engine_kwargs = tracker_engine_kwargs
    global _stock_additional_events, _stock_sql_save
    sql_store = tracker_store.SQLTrackerStore
    _stock_additional_events, _stock_sql_save = sql_store._additional_events, sql_store.save
    sql_store._retrieve, sql_store._additional_events, sql_store.save = sql_retrieve, sql_additional_events, sql_save
    _installed = True
