"""Delete conversations and review items older than the retention period.

The privacy notice promises it; the web app runs this at start and every
six hours. Works on the SQL tracker store's `events` table (SQLite or
PostgreSQL) and on the review store.

purge() never raises: each failure is logged with its traceback and the
next part (and the next run) goes on. It refuses a retention period under
one day, so a mistyped setting can never empty the databases. Rows go in
batches, each its own short transaction, using an index on the timestamp
(created when missing), so a large backlog never holds a long lock.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

import sqlalchemy as sa

from .config import Settings
from .review import get_review_store, purge_orphan_work, review_items

log = logging.getLogger(__name__)

BATCH_ROWS = 5000
EVENTS_INDEX = "ix_events_timestamp_retention"


def purge(settings: Settings, now: float | None = None, batch_rows: int = BATCH_ROWS) -> dict[str, Any]:
    """Delete what is older than settings.retention_days.

    Returns {"events": n, "review_items": n, "errors": [parts that failed]}.
    """
    removed: dict[str, Any] = {"events": 0, "review_items": 0, "errors": []}
    days = getattr(settings, "retention_days", None)
    if isinstance(days, bool) or not isinstance(days, (int, float)) or days < 1:
        log.error("retention: RETENTION_DAYS=%r is not a number of days >= 1; nothing deleted", days)
        removed["errors"].append("settings")
        return removed
    now = time.time() if now is None else now
    cutoff = now - days * 86400
    if settings.tracker_db_url:
        try:
            removed["events"] = _purge_events(settings.tracker_db_url, cutoff, batch_rows)
        except Exception:  # noqa: BLE001 - log, go on with the review store, try again next run
            log.exception("retention: could not purge old conversations")
            removed["errors"].append("events")
    try:
        removed["review_items"] = _purge_review_items(settings, dt.datetime.utcfromtimestamp(cutoff), batch_rows)
    except Exception:  # noqa: BLE001
        log.exception("retention: could not purge old review items")
        removed["errors"].append("review_items")
    if removed["events"] or removed["review_items"]:
        log.info("retention: deleted %d conversation events and %d review items older than %s days",
                 removed["events"], removed["review_items"], days)
    return removed


def _purge_events(url: str, cutoff: float, batch_rows: int) -> int:
    engine = sa.create_engine(url, future=True, **_timeouts(url))
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("events"):
                return 0
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE INDEX IF NOT EXISTS {EVENTS_INDEX} ON events (timestamp)"))
        batch = sa.text("DELETE FROM events WHERE id IN "
                        "(SELECT id FROM events WHERE timestamp < :cutoff LIMIT :n)")
        return _in_batches(engine, lambda conn: conn.execute(batch, {"cutoff": cutoff, "n": batch_rows}), batch_rows)
    finally:
        engine.dispose()


def _purge_review_items(settings: Settings, cutoff: dt.datetime, batch_rows: int) -> int:
    store = get_review_store(settings)
    store._ensure_schema()
    for index in review_items.indexes:   # created_at's included: tables made before it existed lack it
        index.create(store.engine, checkfirst=True)
    old_ids = (sa.select(review_items.c.id).where(review_items.c.created_at < cutoff)
               .limit(batch_rows).scalar_subquery())
    delete = review_items.delete().where(review_items.c.id.in_(old_ids))
    deleted = _in_batches(store.engine, lambda conn: conn.execute(delete), batch_rows)
    purge_orphan_work(store.engine)   # the review workspace's tags of items deleted here
    return deleted


def _in_batches(engine: sa.engine.Engine, delete_batch, batch_rows: int) -> int:
    total = 0
    while True:
        with engine.begin() as conn:
            count = delete_batch(conn).rowcount or 0
        total += count
        if count < batch_rows:
            return total


def _timeouts(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 5}}
    if url.startswith(("postgresql", "postgres")):
        return {"connect_args": {"connect_timeout": 5}}
    return {}
