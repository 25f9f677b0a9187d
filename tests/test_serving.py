"""The serving fixes behave as Rasa's own code: the patches (installed only on the
Rasa version they were written for) and the SQL tracker store subclass named in
endpoints.yml, which leaves Rasa's own SQLTrackerStore untouched."""
import jsonschema
import pytest
from rasa.core.actions.action import RemoteAction

import rasa_addons  # noqa: F401 - installs the patch
from rasa_addons import serving
from rasa_addons.tracker_store import STORED_EVENTS, OrdosSQLTrackerStore

SPEC = RemoteAction.action_response_format_spec()

VALID = [
    {"events": [], "responses": []},
    {"events": [{"event": "slot", "name": "benefit", "value": "birth_subsidy"}],
     "responses": [{"text": "您好", "buttons": [{"title": "是", "payload": "是"}]}]},
    {"events": [{"event": "active_loop", "name": None}, {"event": "followup", "name": "action_listen"}]},
    {},
]
INVALID = [
    {"events": "not a list"},
    {"events": [{"event": "slot"}]},
    {"events": [{"event": "no_such_event"}]},
    {"responses": "text"},
    {"responses": [1, 2]},
]


def test_patch_is_installed_on_import():
    assert RemoteAction._validate_action_result is serving.validate_action_result


def test_the_guard_names_the_rasa_version_pinned_for_the_project():
    import tomli

    project = tomli.loads(open("pyproject.toml", encoding="utf-8").read())["project"]
    assert f"rasa[spacy]=={serving.RASA_VERSION}" in project["dependencies"]
    serving.require_rasa_version()  # the installed one


@pytest.mark.parametrize("other", ["3.6.20", "3.6.22", "3.7.0", "3.6.21rc1", "4.0.0"])
def test_any_other_rasa_version_stops_the_start_before_anything_is_patched(monkeypatch, other):
    import rasa
    from rasa.core.processor import MessageProcessor

    with pytest.raises(serving.UnsupportedRasaVersion, match=f"Rasa {other}"):
        serving.require_rasa_version(other)
    stock_validate, stock_expired = object(), object()
    monkeypatch.setattr(rasa, "__version__", other)
    monkeypatch.setattr(serving, "_installed", False)
    monkeypatch.setattr(RemoteAction, "_validate_action_result", stock_validate)
    monkeypatch.setattr(MessageProcessor, "_has_session_expired", stock_expired)
    with pytest.raises(serving.UnsupportedRasaVersion, match="refuses to run on Rasa"):
        serving.install()
    assert RemoteAction._validate_action_result is stock_validate
    assert MessageProcessor._has_session_expired is stock_expired


def test_the_tracker_store_module_refuses_another_rasa_version(monkeypatch):
    import importlib
    import sys

    import rasa

    monkeypatch.setattr(rasa, "__version__", "3.7.0")
    monkeypatch.delitem(sys.modules, "rasa_addons.tracker_store")
    with pytest.raises(serving.UnsupportedRasaVersion):
        importlib.import_module("rasa_addons.tracker_store")


def test_rasas_own_sql_tracker_store_is_left_as_it_is():
    from rasa.core import tracker_store

    stock = tracker_store.SQLTrackerStore
    for name in ("_retrieve", "_additional_events", "save", "__init__"):
        assert getattr(stock, name).__module__ == "rasa.core.tracker_store", name
    assert tracker_store.create_engine_kwargs.__module__ == "rasa.core.tracker_store"
    assert issubclass(OrdosSQLTrackerStore, stock)


def test_endpoints_yml_builds_our_store_through_rasas_factory(tmp_path, monkeypatch):
    """The class is found by its name in endpoints.yml (Rasa serves from memory,
    with only a warning, when a custom store cannot be loaded)."""
    import sqlalchemy as sa
    from rasa.core.tracker_store import TrackerStore
    from rasa.core.utils import read_endpoints_from_path
    from rasa.shared.core.domain import Domain

    monkeypatch.setenv("TRACKER_DB_DIALECT", "sqlite")
    monkeypatch.setenv("TRACKER_DB_URL", f"sqlite:///{tmp_path / 'tracker.db'}")
    endpoints = read_endpoints_from_path("endpoints.yml")
    store = TrackerStore.create(endpoints.tracker_store, Domain.load("domain.yml"))
    assert type(store) is OrdosSQLTrackerStore
    assert store.engine.url.database == str(tmp_path / "tracker.db")
    assert isinstance(store.engine.pool, sa.pool.QueuePool)


@pytest.mark.parametrize("result", VALID)
def test_valid_results_pass_both(result):
    jsonschema.validate(result, SPEC)
    assert serving.validate_action_result(RemoteAction("action_x", None), result) is True


@pytest.mark.parametrize("result", INVALID)
def test_invalid_results_fail_both_with_the_same_error(result):
    with pytest.raises(jsonschema.ValidationError) as stock:
        jsonschema.validate(result, SPEC)
    with pytest.raises(jsonschema.ValidationError) as ours:
        serving.validate_action_result(RemoteAction("action_x", None), result)
    assert ours.value.message.startswith(stock.value.message)
    assert "Failed to validate Action server response" in ours.value.message
    assert list(ours.value.path) == list(stock.value.path)


def test_event_lookup_matches_rasa_for_every_event_type():
    from rasa.shared.core.events import Event
    from rasa.shared.utils.common import all_subclasses

    for cls in all_subclasses(Event):
        first = next(c for c in all_subclasses(Event) if c.type_name == cls.type_name)
        assert Event.resolve_by_type(cls.type_name) is first
    assert Event.resolve_by_type("topic") is None
    assert Event.resolve_by_type("nope", default=Event) is Event
    with pytest.raises(ValueError):
        Event.resolve_by_type("nope")


def test_a_sqlite_file_tracker_store_reuses_its_connections(tmp_path):
    import asyncio

    import sqlalchemy as sa
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    from rasa_addons.tracker_store import engine_kwargs

    assert engine_kwargs(f"sqlite:///{tmp_path / 'x.db'}")["poolclass"] is sa.pool.QueuePool
    assert engine_kwargs("sqlite://") == {}                       # in memory: unchanged
    assert "poolclass" not in engine_kwargs("postgresql://u:p@h/db")  # Rasa's own pool
    assert engine_kwargs("postgresql://u:p@h/db")["pool_size"] == 50
    stock = SQLTrackerStore(Domain.load("domain.yml"), dialect="sqlite", db=str(tmp_path / "stock.db"))
    assert isinstance(stock.engine.pool, sa.pool.NullPool)  # Rasa's own class keeps its engine

    connects = []
    store = OrdosSQLTrackerStore(Domain.load("domain.yml"), dialect="sqlite", db=str(tmp_path / "tracker.db"))
    sa.event.listen(store.engine, "connect", lambda *_: connects.append(1))
    tracker = DialogueStateTracker.from_events("pool", [])
    for i in range(3):
        tracker.update(UserUttered(f"问题{i}", {"name": "greet", "confidence": 1.0}))
        tracker.update(ActionExecuted("utter_greet"))
        asyncio.run(store.save(tracker))
        assert [e.text for e in asyncio.run(store.retrieve("pool")).events
                if isinstance(e, UserUttered)] == [f"问题{k}" for k in range(i + 1)]
    assert len(connects) <= 1  # NullPool would open one per database session (9 here)


def test_saves_after_a_read_store_each_event_once_without_counting(tmp_path):
    import asyncio

    import sqlalchemy as sa
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, SessionStarted, SlotSet, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    store = OrdosSQLTrackerStore(Domain.load("domain.yml"), dialect="sqlite", db=str(tmp_path / "tracker.db"))
    statements = []
    sa.event.listen(store.engine, "before_cursor_execute", lambda c, cur, sql, *a: statements.append(sql.lower()))

    def rows():
        with store.engine.connect() as conn:
            return [r[0] for r in conn.execute(sa.text("SELECT type_name FROM events WHERE sender_id='memo' ORDER BY id"))]

    def turn(tracker, text):
        tracker.update(UserUttered(text, {"name": "greet", "confidence": 1.0}))
        tracker.update(ActionExecuted("utter_greet"))
        tracker.update(ActionExecuted("action_listen"))

    # A new conversation, as the processor opens one: the read finds no row, the
    # empty tracker's save writes nothing, and the message's save needs no count.
    tracker = asyncio.run(store.get_or_create_tracker("memo", append_action_listen=False))
    assert getattr(tracker, STORED_EVENTS) == 0 and rows() == []
    for event in (ActionExecuted("action_session_start"), SessionStarted()):
        tracker.update(event)
    turn(tracker, "你好")
    asyncio.run(store.save(tracker))
    assert not any("count(" in s for s in statements)
    assert getattr(tracker, STORED_EVENTS) == 5 and len(rows()) == 5
    # Another conversation opened the usual way (initial action_listen) is stored whole.
    other = asyncio.run(store.get_or_create_tracker("other"))
    turn(other, "在吗")
    asyncio.run(store.save(other))
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM events WHERE sender_id='other'")).scalar() == 4

    # The next message reads the tracker back (from the session start on): its saves no longer count.
    tracker = asyncio.run(store.retrieve("memo"))
    assert getattr(tracker, STORED_EVENTS) == len(tracker.events) == 4
    statements.clear()
    turn(tracker, "育儿假有几天")
    asyncio.run(store.save(tracker))
    tracker.update(SlotSet("benefit", "birth_subsidy"))
    asyncio.run(store.save(tracker))
    asyncio.run(store.save(tracker))  # nothing new: nothing inserted
    # A session that starts during the message (the turn limit) is stored once too.
    tracker.update(ActionExecuted("action_session_start"))
    tracker.update(SessionStarted())
    turn(tracker, "谢谢")
    asyncio.run(store.save(tracker))
    assert not any("count(" in s for s in statements)
    assert rows() == ["action", "session_started", "user", "action", "action",
                      "user", "action", "action", "slot",
                      "action", "session_started", "user", "action", "action"]
    assert [e.text for e in asyncio.run(store.retrieve("memo")).events if isinstance(e, UserUttered)] == ["谢谢"]

    # A tracker built without reading (e.g. replaced through the HTTP API) is counted as before.
    fresh = DialogueStateTracker.from_events("memo", list(tracker.events)[-4:])
    turn(fresh, "再见")
    statements.clear()
    asyncio.run(store.save(fresh))
    assert any("count(" in s for s in statements)
    assert len(rows()) == 17 and rows()[-3:] == ["user", "action", "action"]
    # Reading all sessions (the history view) leaves the count to the save.
    assert not hasattr(asyncio.run(store.retrieve_full_tracker("memo")), STORED_EVENTS)


def test_events_round_trip_through_the_cached_lookup():
    from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered, deserialise_events

    events = [UserUttered("你好", {"name": "greet", "confidence": 1.0}), ActionExecuted("utter_greet"),
              SlotSet("benefit", "birth_subsidy")]
    assert deserialise_events([e.as_dict() for e in events]) == events


def test_sqlite_tracker_db_uses_wal_and_waits_when_locked(tmp_path):
    import sqlalchemy as sa
    from rasa.shared.core.domain import Domain

    store = OrdosSQLTrackerStore(Domain.load("domain.yml"), dialect="sqlite", db=str(tmp_path / "tracker.db"))
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    memory = OrdosSQLTrackerStore(Domain.load("domain.yml"), dialect="sqlite", db="")
    with memory.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "memory"
    # Only the store's own engine: other databases in the process keep their settings.
    other = sa.create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    with other.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "delete"


def _long_tracker(turns, domain, active_loop=None):
    from rasa.shared.core.events import ActionExecuted, ActiveLoop, SessionStarted, SlotSet, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    events = [SessionStarted(), ActionExecuted("action_listen"), SlotSet("hukou_ordos", True)]
    for i in range(turns):
        events += [UserUttered(f"问题{i}", {"name": "ask_parental_leave", "confidence": 0.9}),
                   ActionExecuted("action_answer"), ActionExecuted("action_listen")]
    if active_loop:
        events.insert(-1, ActiveLoop(active_loop))
    return DialogueStateTracker.from_events("long", events, domain.slots)


@pytest.fixture(scope="module")
def domain():
    from rasa.shared.core.domain import Domain

    return Domain.load("domain.yml")


def test_a_session_ends_after_the_turn_limit_and_keeps_the_facts(domain):
    import asyncio

    from rasa.core.actions.action import ActionSessionStart
    from rasa.shared.core.events import SessionStarted, SlotSet

    short = _long_tracker(serving.MAX_TURNS_PER_SESSION - 1, domain)
    long = _long_tracker(serving.MAX_TURNS_PER_SESSION, domain)
    assert serving.turns_in_current_session(long) == serving.MAX_TURNS_PER_SESSION
    assert not serving.is_session_too_long(short, domain)
    assert serving.is_session_too_long(long, domain)
    events = asyncio.run(ActionSessionStart().run(None, None, long, domain))
    assert isinstance(events[0], SessionStarted)
    assert [e for e in events if isinstance(e, SlotSet)] == [SlotSet("hukou_ordos", True)]


def test_a_running_check_goes_on_in_the_next_session(domain):
    import asyncio

    from rasa.core.actions.action import ActionSessionStart
    from rasa.shared.core.events import ActionExecuted, SessionStarted, SlotSet
    from rasa.shared.core.trackers import DialogueStateTracker

    long = _long_tracker(serving.MAX_TURNS_PER_SESSION, domain)
    long.update(SlotSet("check_benefit", "delivery_subsidy"))
    long.update(SlotSet("asked_fact", "born_under_policy"))
    assert serving.is_session_too_long(long, domain)  # a running check no longer keeps a session growing
    events = asyncio.run(ActionSessionStart().run(None, None, long, domain))
    assert events == [SessionStarted(), SlotSet("hukou_ordos", True), SlotSet("check_benefit", "delivery_subsidy"),
                      SlotSet("asked_fact", "born_under_policy"), ActionExecuted("action_listen")]
    resumed = DialogueStateTracker.from_events("long", events, domain.slots)
    assert resumed.get_slot("check_benefit") == "delivery_subsidy"
    assert resumed.get_slot("asked_fact") == "born_under_policy"


def test_carried_slots_do_not_pile_up_over_sessions(domain):
    import asyncio

    from rasa.core.actions.action import ActionSessionStart
    from rasa.shared.core.events import SessionStarted, SlotSet

    tracker = _long_tracker(serving.MAX_TURNS_PER_SESSION, domain)
    carried_per_session = []
    for _ in range(3):
        tracker.update(SlotSet("hukou_ordos", True))
        tracker.update(SlotSet("hukou_ordos", False))
        started = asyncio.run(ActionSessionStart().run(None, None, tracker, domain))
        carried_per_session.append([e for e in started if isinstance(e, SlotSet)])
        for event in started:
            tracker.update(event)
        for event in _long_tracker(serving.MAX_TURNS_PER_SESSION, domain).events:
            if not isinstance(event, (SlotSet, SessionStarted)):
                tracker.update(event)
    # Rasa's own carry-over would copy 3, then 5, then 7 events here.
    assert carried_per_session == [[SlotSet("hukou_ordos", False)]] * 3
    assert tracker.get_slot("hukou_ordos") is False


def _conversation(domain, *, stored=False):
    """Two answered messages with ids, as Rasa's tracker holds them (or, stored=True,
    as read back from the tracker store's JSON)."""
    from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    answer = BotUttered("育儿假每年10天。", {"buttons": [{"title": "有帮助", "payload": "有帮助"}],
                                          "custom": {"clauses": ["2.4.3"], "kind": "answer"}})
    events = [SessionStarted(), ActionExecuted("action_listen"),
              UserUttered("育儿假几天", {"name": "ask_parental_leave", "confidence": 0.9}, message_id="m-0001-aaaa"),
              ActionExecuted("action_respond"), answer, BotUttered("这个回答对您有帮助吗？"),
              ActionExecuted("action_listen"),
              UserUttered("产假呢", {"name": "ask_maternity_leave", "confidence": 0.9}, message_id="m-0002-bbbb"),
              ActionExecuted("action_respond"), BotUttered("产假按条例执行。"), ActionExecuted("action_listen")]
    tracker = DialogueStateTracker.from_events("citizen", events, domain.slots)
    if stored:
        tracker = DialogueStateTracker.from_dict("citizen", [e.as_dict() for e in tracker.events], domain.slots)
    return tracker


@pytest.mark.parametrize("stored", [False, True])
def test_a_resent_message_finds_the_replies_it_got(domain, stored):
    tracker = _conversation(domain, stored=stored)
    assert serving.earlier_replies(tracker, "m-0001-aaaa") == [
        {"text": "育儿假每年10天。", "buttons": [{"title": "有帮助", "payload": "有帮助"}],
         "custom": {"clauses": ["2.4.3"], "kind": "answer"}},
        {"text": "这个回答对您有帮助吗？"}]
    assert serving.earlier_replies(tracker, "m-0002-bbbb") == [{"text": "产假按条例执行。"}]


def test_a_new_message_id_is_handled_as_new(domain):
    tracker = _conversation(domain)
    assert serving.earlier_replies(tracker, "m-0003-cccc") is None
    assert serving.earlier_replies(tracker, None) is None

