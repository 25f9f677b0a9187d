"""Delete conversations and review items older than the retention period.

The privacy notice promises it; the web app runs this at start and every
six hours. Works on the SQL tracker store's `events` table (SQLite or
PostgreSQL) and on the review store.
"""
from __future__ import annotations

import datetime as dt
import logging
import time

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from .config import Settings
from .review import get_review_store, review_items

log = logging.getLogger(__name__)


def purge(settings: Settings, now: float | None = None) -> dict[str, int]:
    now = time.time() if now is None else now
    cutoff = now - settings.retention_days * 86400
    removed = {"events": 0, "review_items": 0}
    if settings.tracker_db_url:
        engine = sa.create_engine(settings.tracker_db_url, future=True)
        try:
            with engine.begin() as conn:
                if sa.inspect(conn).has_table("events"):
                    result = conn.execute(sa.text("DELETE FROM events WHERE timestamp < :cutoff"), {"cutoff": cutoff})
                    removed["events"] = result.rowcount or 0
        except SQLAlchemyError as exc:
            log.warning("could not purge old conversations: %s", exc.__class__.__name__)
        finally:
            engine.dispose()
    store = get_review_store(settings)
    try:
        store._ensure_schema()
        with store.engine.begin() as conn:
            result = conn.execute(review_items.delete().where(
                review_items.c.created_at < dt.datetime.utcfromtimestamp(cutoff)))
            removed["review_items"] = result.rowcount or 0
    except SQLAlchemyError as exc:
        log.warning("could not purge old review items: %s", exc.__class__.__name__)
    return removed
