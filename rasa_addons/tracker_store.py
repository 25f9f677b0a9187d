"""The SQL tracker store Rasa serves with, named in endpoints.yml
(`tracker_store: type: rasa_addons.tracker_store.OrdosSQLTrackerStore`).

A subclass of Rasa's SQLTrackerStore, through Rasa's own extension point for
tracker stores: the stock class is left as it is. The same settings as the
stock store (`dialect`, `url`, `db`, ... in endpoints.yml, filled from the
environment); the same table and rows, so either class reads what the other
wrote. What it changes, each found by profiling `rasa run` under
`bench/rest_bench.py` with py-spy (README "Serving notes"):

SQLite. A SQLite file gets WAL journaling (readers such as the web app's
history view no longer block the writer), `synchronous=NORMAL` (no fsync per
message; WAL stays consistent after a crash) and a 5 s busy timeout, so a
briefly locked database waits instead of failing the message. SQLAlchemy 1.4
opens a new connection for every database session on a SQLite file (NullPool):
three per message, ~5% of CPU. This store's engine keeps its connections in a
pool instead. PostgreSQL keeps Rasa's own engine and pool settings
(SQL_POOL_SIZE, SQL_MAX_OVERFLOW, POSTGRESQL_SCHEMA).

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

It overrides private methods of Rasa's class, so it runs only on the Rasa
version it was written against (rasa_addons.serving.require_rasa_version).
"""
from __future__ import annotations

import itertools
import json
import time
from typing import Any, Dict, Optional, Text

import sqlalchemy as sa

from rasa_addons.serving import require_rasa_version

require_rasa_version()

from rasa.core.tracker_store import SQLTrackerStore  # noqa: E402  (after the version check)
from rasa.shared.core.trackers import DialogueStateTracker  # noqa: E402

# Attribute on a DialogueStateTracker: how many of its leading events are in the
# SQL store (the store's rows for the current session at read time, plus saves).
STORED_EVENTS = "_ordos_stored_events"

SQLITE_BUSY_TIMEOUT_MS = 5000
SQLITE_POOL = {"pool_size": 5, "max_overflow": 10}


def is_sqlite_file(url) -> bool:
    """A SQLite database in a file (an in-memory one is a new database per connection)."""
    parsed = sa.engine.make_url(url) if isinstance(url, str) else url
    return parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:")


def tune_sqlite(dbapi_connection, _record) -> None:
    """On every new SQLite connection of the store: wait when locked; WAL for a file."""
    import sqlite3

    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        if cursor.execute("PRAGMA database_list").fetchone()[2]:  # a file, not :memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


# Rasa wraps every tracker store in FailSafeTrackerStore: a failed read starts an empty
# conversation and a failed save goes to memory, so the reply would look normal while the
# conversation is lost. The store notes each failure; the REST channel then answers 503 and
# the web app keeps the message for a retry (rasa_addons/channels.py).
_FAILURES: Dict[Text, float] = {}
_MAX_FAILURES_KEPT = 10_000


def record_failure(sender_id: Text) -> None:
    if len(_FAILURES) >= _MAX_FAILURES_KEPT:
        _FAILURES.clear()
    _FAILURES[sender_id] = time.monotonic()


def failed_since(sender_id: Text, started: float) -> bool:
    """Whether reading or storing this conversation failed after `started` (time.monotonic())."""
    at = _FAILURES.get(sender_id)
    return at is not None and at >= started


class OrdosSQLTrackerStore(SQLTrackerStore):
    """Rasa's SQL tracker store with a pooled, WAL-mode SQLite engine and no
    COUNT per save when the stored-event count is known."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().__init__(*args, **kwargs)
        except (AttributeError, ImportError) as exc:
            # Rasa answers these two from a custom store's constructor by serving
            # from memory with only a warning: every conversation would be lost
            # at the next restart. Stop the start instead.
            raise RuntimeError(f"the tracker store could not be created: {exc!r}") from exc
        # The store created from the endpoint config; None until a read finds no
        # row for a conversation (see _retrieve / save).
        self._absent_sender: Optional[Text] = None
        if self.engine.dialect.name == "sqlite":
            url = self.engine.url
            if is_sqlite_file(url):
                # Replace the stock NullPool engine (its one connection made the tables).
                self.engine.dispose()
                self.engine = sa.create_engine(url, poolclass=sa.pool.QueuePool, **SQLITE_POOL,
                                               connect_args={"check_same_thread": False})
                self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)
            sa.event.listen(self.engine, "connect", tune_sqlite)

    async def _retrieve(self, sender_id: Text, fetch_events_from_all_sessions: bool
                        ) -> Optional[DialogueStateTracker]:
        try:
            return await self._read(sender_id, fetch_events_from_all_sessions)
        except Exception:
            record_failure(sender_id)
            raise

    async def _read(self, sender_id: Text, fetch_events_from_all_sessions: bool
                    ) -> Optional[DialogueStateTracker]:
        """Rasa's read, which also records on the tracker how many events were read."""
        with self.session_scope() as session:
            rows = self._event_query(session, sender_id,
                                     fetch_events_from_all_sessions=fetch_events_from_all_sessions).all()
            events = [json.loads(row.data) for row in rows]
        if not (self.domain and events):
            # No row at all for this conversation: the save that creates it (next, in
            # get_or_create_tracker) needs no count either.
            self._absent_sender = sender_id if self.domain and not events else None
            return None
        tracker = DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
        # Only the current-session read matches what a save would count, and only when
        # every stored row became an event in the tracker.
        if not fetch_events_from_all_sessions and len(tracker.events) == len(events):
            setattr(tracker, STORED_EVENTS, len(events))
        return tracker

    def _additional_events(self, session, tracker: DialogueStateTracker):
        """Rasa's new-event slice, without the COUNT when the number is known."""
        stored = getattr(tracker, STORED_EVENTS, None)
        if stored is None:
            return super()._additional_events(session, tracker)
        return itertools.islice(tracker.events, stored, len(tracker.events))

    async def save(self, tracker: DialogueStateTracker) -> None:
        if getattr(tracker, STORED_EVENTS, None) is None and self._absent_sender == tracker.sender_id:
            setattr(tracker, STORED_EVENTS, 0)
        self._absent_sender = None  # used by the first save after the read, or not at all
        if getattr(tracker, STORED_EVENTS, None) == len(tracker.events) and self.event_broker is None:
            return  # nothing new to store (a conversation's empty first save)
        try:
            await super().save(tracker)
        except Exception:
            record_failure(tracker.sender_id)
            raise
        setattr(tracker, STORED_EVENTS, len(tracker.events))


def engine_kwargs(url) -> Dict[Text, Any]:
    """The engine settings the store ends up with for `url` (for tests and the docs):
    a pool for a SQLite file, Rasa's own for anything else."""
    from rasa.core.tracker_store import create_engine_kwargs

    if is_sqlite_file(url):
        return {"poolclass": sa.pool.QueuePool, **SQLITE_POOL, "connect_args": {"check_same_thread": False}}
    return create_engine_kwargs(url)
