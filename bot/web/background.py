"""Periodic work that every web worker schedules, done by one process at a time.

Each worker process runs the same schedules (retention purge, review
maintenance), starting together. The work is idempotent, but two processes
doing it at the same moment would race: both deleting the same batches, or
both finding the same abandoned conversation before either recorded it.

A non-blocking lock on a file in VAR_DIR lets one process of a machine do each
round; the others skip that round. Replicas on other machines have their own
VAR_DIR, so when the shared database is PostgreSQL the round also takes a
PostgreSQL advisory lock (pg_try_advisory_lock, one key per kind of work):
one process of the whole cluster does it. The lock belongs to the database
session, so a process that dies releases it with its connection. On SQLite
(one machine by design) the file lock is the whole story.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa

from ..filelock import file_lock

log = logging.getLogger(__name__)


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for one kind of work (PostgreSQL advisory locks take a bigint)."""
    return int.from_bytes(hashlib.blake2b(f"ordos-background:{name}".encode(), digest_size=8).digest(),
                          "big", signed=True)


@contextlib.contextmanager
def cluster_lock(engine: sa.engine.Engine, name: str) -> Iterator[bool]:
    """True while this process holds the advisory lock for `name` on PostgreSQL;
    False when another process (on any machine) holds it or the database cannot be
    reached (the round then waits for the next one)."""
    key = advisory_key(name)
    try:
        # Autocommit: the lock belongs to the session, and no transaction stays open for the round.
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    except sa.exc.DBAPIError as exc:
        log.warning("%s: database unreachable (%s); this round is skipped", name, exc.__class__.__name__)
        yield False
        return
    try:
        try:
            got = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        except sa.exc.DBAPIError as exc:
            log.warning("%s: could not ask for the cluster lock (%s); this round is skipped",
                        name, exc.__class__.__name__)
            got = False
        if not got:
            log.debug("%s: another process of the cluster is doing it; skipped here", name)
            yield False
            return
        try:
            yield True
        finally:
            try:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            except sa.exc.DBAPIError:
                # Never give a connection that may still hold the lock back to the pool.
                conn.invalidate()
    finally:
        conn.close()


@contextlib.contextmanager
def alone(var_dir: Path, name: str, engine: sa.engine.Engine | None = None) -> Iterator[bool]:
    """True while this process may do the round `name`: it holds VAR_DIR/<name>.lock and,
    when `engine` is PostgreSQL, the cluster's advisory lock for `name`; False otherwise."""
    with file_lock(var_dir / f"{name}.lock", blocking=False) as held:
        if not held:
            log.debug("%s: another worker is doing it; skipped here", name)
            yield False
            return
        if engine is None or engine.dialect.name != "postgresql":
            yield True
            return
        with cluster_lock(engine, name) as mine:
            yield mine
