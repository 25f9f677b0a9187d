"""Serving-time fixes for Rasa 3.6.21, installed when the Rasa process imports rasa_addons.

What Rasa lets us change through an extension point is done there: the SQL
tracker store's changes are a subclass named in endpoints.yml
(rasa_addons/tracker_store.py), the REST channel is ours in credentials.yml.
What is left has no hook and replaces methods of Rasa's own classes, so it is
installed only on the exact Rasa version it was written and tested against
(RASA_VERSION): any other version stops the start with an error instead of
running half-patched (an upgrade re-reads each fix below against the new code,
re-runs tests/test_serving.py, then moves RASA_VERSION).

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

Resent messages. A client that got no answer in time (the web app gives up
after its timeout and the widget keeps the message) sends the same message
again, while Rasa may still have handled the first copy: it was then stored
and answered twice. A client now names each message (`message_id` in the REST
body, the same id on every resend; Rasa stores it on the user event). Before
handling a message, the processor looks for a user event with that id in the
conversation it has just read: when there is one, the replies that followed it
are sent again and nothing is stored. The look-up runs inside the
conversation's lock (Agent.handle_message), so a resend that arrives while the
first copy is being handled waits for it and then finds it, and it reads the
tracker Rasa reads anyway: no extra round trip to the tracker store.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Dict, List, Optional, Text

log = logging.getLogger(__name__)

# The one Rasa version the patches below were written against (pyproject.toml pins it).
RASA_VERSION = "3.6.21"


class UnsupportedRasaVersion(RuntimeError):
    """The installed Rasa is not the version the serving fixes replace code of."""


def require_rasa_version(installed: Optional[Text] = None) -> None:
    """Stop unless the installed Rasa is exactly RASA_VERSION."""
    if installed is None:
        import rasa

        installed = rasa.__version__
    if installed != RASA_VERSION:
        raise UnsupportedRasaVersion(
            f"rasa_addons replaces methods of Rasa {RASA_VERSION} and refuses to run on Rasa {installed}: "
            f"check every fix in rasa_addons/serving.py and rasa_addons/tracker_store.py against the new "
            f"version's code, run tests/test_serving.py, then change RASA_VERSION")


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


def earlier_replies(tracker, message_id: Optional[Text]) -> Optional[List[Dict[Text, Any]]]:
    """The replies sent after the user message with this id, as output-channel
    messages, or None when the conversation has no message with this id."""
    from rasa.shared.core.events import BotUttered, UserUttered

    if not message_id:
        return None
    replies: List[Dict[Text, Any]] = []   # the bot messages after the user message met last
    for event in reversed(tracker.events):
        if isinstance(event, UserUttered):
            if event.message_id == message_id:
                return replies[::-1]
            replies = []
        elif isinstance(event, BotUttered):
            data = {k: v for k, v in (event.data or {}).items() if v is not None}
            replies.append({"text": event.text, **data} if event.text else data)
    return None


def _patch_resends(processor_cls) -> None:
    from rasa.core.channels.channel import CollectingOutputChannel
    from rasa.shared.data import TrainingType
    from rasa.shared.utils.io import raise_warning

    async def handle_message(self, message):
        """Rasa 3.6.21's MessageProcessor.handle_message (log_message inlined), which
        answers a message already in the conversation from what was sent then."""
        tracker = await self.fetch_tracker_and_update_session(
            message.sender_id, message.output_channel, message.metadata)
        replies = earlier_replies(tracker, message.message_id)
        if replies is not None:
            log.info("message %s was resent: answered from the conversation, not handled again",
                     message.message_id)
            for reply in replies:
                await message.output_channel.send_response(message.sender_id, reply)
            if isinstance(message.output_channel, CollectingOutputChannel):
                return message.output_channel.messages
            return None
        await self._handle_message_with_tracker(message, tracker)
        if self.model_metadata.training_type == TrainingType.NLU:
            await self.save_tracker(tracker)
            raise_warning("No core model. Skipping action prediction and execution.")
            return None
        tracker = await self.run_action_extract_slots(message.output_channel, tracker)
        await self._run_prediction_loop(message.output_channel, tracker)
        await self.run_anonymization_pipeline(tracker)
        await self.save_tracker(tracker)
        if isinstance(message.output_channel, CollectingOutputChannel):
            return message.output_channel.messages
        return None

    processor_cls.handle_message = handle_message


def install() -> None:
    """Idempotent: install the fixes once per process, on the one Rasa version they fit."""
    global _installed
    if _installed:
        return
    require_rasa_version()
    from rasa.core.actions.action import ActionSessionStart, RemoteAction
    from rasa.core.processor import MessageProcessor
    from rasa.shared.core.events import Event

    RemoteAction._validate_action_result = validate_action_result
    _patch_sessions(MessageProcessor, ActionSessionStart)
    _patch_resends(MessageProcessor)
    Event.resolve_by_type = staticmethod(resolve_event_by_type)
    _installed = True
