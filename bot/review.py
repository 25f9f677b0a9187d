"""What the assistant could not answer, for the policy team.

One table, `review_items`, in SQLite by default or PostgreSQL by URL. Text is
masked (bot.text.mask_personal_data) and stripped of what no database stores
(control characters, lone surrogates) before it is written; the sender is kept
only as a hash salted with a secret (REVIEW_SALT, or a random one created once
in var/). When the database is locked, down or refuses an item, the item goes
to a local spool file and is written on a later successful call, so nothing is
lost. Several action-server processes share the spool under a file lock; a
spool line that cannot be read is moved aside to `<spool>.bad` and never holds
up the others.

The policy team's review workspace (bot.reviewing) keeps its work here too:
the columns of WORK_COLUMNS on each item (added to an older table by
_migrate), tags, new topics and how far its scan of the tracker store got.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
from pathlib import Path
from typing import Any, Iterator

import sqlalchemy as sa
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from .filelock import file_lock
from .schema import create_tables
from .text import mask_personal_data, mask_structure, strip_unsafe

log = logging.getLogger(__name__)

KINDS = ("unanswered", "out_of_scope", "handoff", "unhelpful", "helpful", "low_confidence",
         "desk_no_result", "desk_flag", "abandoned_check")
MAX_STORED_CHARS = 1000
CONNECT_TIMEOUT_S = 3
RECORD_TIMEOUT_S = 10.0
# A spooled item that the database refuses this many times (while it accepts
# others) is moved to the .bad file instead of being retried for ever.
MAX_SPOOL_ATTEMPTS = 5

metadata = sa.MetaData()
review_items = sa.Table(
    "review_items", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.DateTime, nullable=False, index=True),
    sa.Column("kind", sa.String(32), nullable=False, index=True),
    sa.Column("sender", sa.String(64), nullable=False),   # salted hash, never the raw id
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("intent", sa.String(80)),
    sa.Column("confidence", sa.Float),
    sa.Column("answer_id", sa.String(80)),
    sa.Column("detail", sa.Text),
    sa.Column("status", sa.String(16), nullable=False, default="new"),
)
_COLUMNS = {c.name for c in review_items.columns} - {"id"}

# -- the policy team's work on the items (bot.reviewing) ------------------------
# Columns added after the table first shipped: _migrate() adds them to an older
# table, on SQLite and PostgreSQL alike. Spooled rows never carry them.
WORK_COLUMNS = (
    sa.Column("assigned_intent", sa.String(80)),      # the intent the item is training data for
    sa.Column("topic_id", sa.Integer),                # a new topic (review_topics) it belongs to
    sa.Column("note", sa.Text),
    sa.Column("updated_at", sa.DateTime),
    sa.Column("updated_by", sa.String(64)),
    sa.Column("recheck_intent", sa.String(80)),       # what the current model made of it when re-checked
    sa.Column("recheck_confidence", sa.Float),
    sa.Column("rechecked_at", sa.DateTime),
)
for _column in WORK_COLUMNS:
    review_items.append_column(_column)
# The inbox sorts by time (keyset paging on created_at, id) or confidence and
# filters by status, intent, topic and sender; each has an index led by it.
sa.Index("ix_review_items_created_id", review_items.c.created_at, review_items.c.id)
sa.Index("ix_review_items_status_created", review_items.c.status, review_items.c.created_at)
sa.Index("ix_review_items_kind_created", review_items.c.kind, review_items.c.created_at)
sa.Index("ix_review_items_intent_created", review_items.c.intent, review_items.c.created_at)
sa.Index("ix_review_items_answer_created", review_items.c.answer_id, review_items.c.created_at)
sa.Index("ix_review_items_confidence_id", review_items.c.confidence, review_items.c.id)
sa.Index("ix_review_items_sender_created", review_items.c.sender, review_items.c.created_at)

review_tags = sa.Table(
    "review_tags", metadata,
    sa.Column("item_id", sa.Integer, primary_key=True),
    sa.Column("tag", sa.String(32), primary_key=True),
    sa.Index("ix_review_tags_tag_item", "tag", "item_id"),
)
review_topics = sa.Table(
    "review_topics", metadata,   # new topics the policy team drafts (staff text, no citizen data)
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("title", sa.String(80), nullable=False),
    sa.Column("draft_answer", sa.Text, nullable=False),
    sa.Column("clauses", sa.String(200), nullable=False),   # cited clause ids, comma-separated
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_by", sa.String(64)),
    sa.Column("updated_at", sa.DateTime),
)
review_scans = sa.Table(
    "review_scans", metadata,    # how far a periodic scan of the tracker store got
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("position", sa.Float, nullable=False),
)


def purge_orphan_work(engine: sa.engine.Engine, batch_rows: int = 5000) -> int:
    """Delete the tags of review items that no longer exist (the retention purge calls this)."""
    orphans = (sa.select(review_tags.c.item_id).where(~review_tags.c.item_id.in_(sa.select(review_items.c.id)))
               .limit(batch_rows).scalar_subquery())
    total = 0
    while True:
        with engine.begin() as conn:
            count = conn.execute(review_tags.delete().where(review_tags.c.item_id.in_(orphans))).rowcount or 0
        total += count
        if count < batch_rows:
            return total


def _migrate(engine: sa.engine.Engine) -> None:
    """Add the work columns and indexes to a review_items table made before they existed."""
    def columns() -> set[str]:
        with engine.connect() as conn:
            return {c["name"] for c in sa.inspect(conn).get_columns("review_items")}

    have = columns()
    for column in WORK_COLUMNS:
        if column.name in have:
            continue
        ddl = f"ALTER TABLE review_items ADD COLUMN {column.name} {column.type.compile(dialect=engine.dialect)}"
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(ddl))
        except sa.exc.DBAPIError:
            if column.name not in columns():   # not another process adding it at the same moment
                raise
    for index in review_items.indexes:
        try:
            index.create(engine, checkfirst=True)
        except sa.exc.DBAPIError:
            with engine.connect() as conn:
                if index.name not in {i["name"] for i in sa.inspect(conn).get_indexes("review_items")}:
                    raise


def sender_hash(sender_id: str, salt: str) -> str:
    """Keyed hash of a conversation id: the same sender gives the same value,
    and without the secret nobody can test a guessed id against it."""
    return hmac.new(salt.encode("utf-8"), strip_unsafe(sender_id).encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def load_or_create_secret(path: Path) -> str:
    """The secret stored in `path`, created once (random, mode 0600) when missing.

    Safe when several processes start together: the file appears whole or not at all.
    """
    try:
        value = path.read_text(encoding="ascii").strip()
        if value:
            if path.stat().st_mode & 0o077:
                log.warning("%s is readable by other users; it should be mode 0600", path)
            return value
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_hex(32) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)           # fails if another process got there first
        except FileExistsError:
            if not path.read_text(encoding="ascii").strip():
                os.replace(tmp, path)    # an empty file left by a crash: take ours
                tmp = None
    finally:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return path.read_text(encoding="ascii").strip()


def _database_unavailable(exc: BaseException) -> bool:
    """The database as a whole cannot take writes now (locked, down, no
    connection): retry later. Anything else is about the one item."""
    return isinstance(exc, (OperationalError, DisconnectionError, PoolTimeoutError, ConnectionError, TimeoutError))


def stored_question(question: Any) -> str:
    """A question as the store keeps it: masked (with its context), then cut to MAX_STORED_CHARS."""
    return mask_personal_data(str(question or "")[: MAX_STORED_CHARS * 2])[:MAX_STORED_CHARS]


class ReviewStore:
    def __init__(self, url: str, spool: Path | None = None, *, salt: str | None = None,
                 connect_timeout_s: float = CONNECT_TIMEOUT_S):
        self.url = url
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            self.engine = sa.create_engine(url, connect_args={"timeout": connect_timeout_s}, future=True)
        elif url.startswith(("postgresql", "postgres")):
            self.engine = sa.create_engine(url, pool_pre_ping=True, pool_timeout=connect_timeout_s, future=True,
                                           connect_args={"connect_timeout": max(1, int(connect_timeout_s))})
        else:
            self.engine = sa.create_engine(url, pool_pre_ping=True, pool_timeout=connect_timeout_s, future=True)
        self.spool = spool
        # Without a configured secret (tests, one-off scripts) the hashes are
        # consistent within this store only.
        self.salt = salt or secrets.token_hex(32)
        self._lock = threading.Lock()
        self._schema_lock = threading.Lock()
        self._ready = False

    def hash_sender(self, sender_id: str) -> str:
        return sender_hash(sender_id, self.salt)

    def _ensure_schema(self) -> None:
        if self._ready:
            return
        with self._schema_lock:   # one thread of this process; create_tables copes with other processes
            if not self._ready:
                create_tables(metadata, self.engine)
                _migrate(self.engine)
                self._ready = True

    def record(self, kind: str, sender_id: str, question: str, *, intent: str | None = None,
               confidence: float | None = None, answer_id: str | None = None,
               detail: dict[str, Any] | None = None) -> bool:
        """Store one item; returns False when it went to the spool instead.

        Never raises for a database problem (any driver error spools the item);
        raises ValueError only for an unknown kind, a programming error.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown review kind {kind!r}")
        row = self._row(kind, sender_id, question, intent, confidence, answer_id, detail)
        with self._lock:
            try:
                drained = self._drain()
            except Exception:  # noqa: BLE001 - a spool problem must not cost this item
                log.exception("could not drain the review spool")
                drained = None
            if drained is False:      # the database is unavailable: keep the order, spool this one too
                self._append_spool(row)
                return False
            try:
                self._insert(row)
                return True
            except Exception as exc:  # noqa: BLE001 - any driver error: spool, never lose the item
                log.warning("review store refused an item (%s); spooling it", exc.__class__.__name__)
                self._append_spool(row)
                return False

    def record_at(self, at: dt.datetime, kind: str, sender_id: str, question: str, **kwargs: Any) -> None:
        """Store one item found after the fact (e.g. a check abandoned midway) with
        the time it happened. Raises on a database error: the finder tries again."""
        if kind not in KINDS:
            raise ValueError(f"unknown review kind {kind!r}")
        row = self._row(kind, sender_id, question, kwargs.get("intent"), kwargs.get("confidence"),
                        kwargs.get("answer_id"), kwargs.get("detail"))
        row["created_at"] = at.replace(microsecond=0)
        self._insert(row)

    async def record_async(self, kind: str, sender_id: str, question: str, **kwargs: Any) -> bool:
        """record() off the event loop, for async actions: the blocking database
        call runs in a worker thread, bounded by the connect timeout. Returns
        False (the item is spooled or still being written) instead of waiting
        longer than RECORD_TIMEOUT_S."""
        if kind not in KINDS:
            raise ValueError(f"unknown review kind {kind!r}")
        loop = asyncio.get_running_loop()
        call = loop.run_in_executor(None, lambda: self.record(kind, sender_id, question, **kwargs))
        try:
            return await asyncio.wait_for(asyncio.shield(call), timeout=RECORD_TIMEOUT_S)
        except asyncio.TimeoutError:
            log.warning("review store slower than %.0fs; the item is written in the background", RECORD_TIMEOUT_S)
            return False

    def drain(self) -> int:
        """Write spooled items now; returns how many are still waiting."""
        with self._lock:
            self._drain()
        return len(self._spool_lines()) if self.spool else 0

    def recorded_since(self, kind: str, sender_id: str, question: str, since: dt.datetime) -> bool:
        """Whether this sender's question (as it would be stored) is already an item of
        `kind` created at or after `since` (UTC): how every process of the cluster
        tells a repeat from a new item."""
        self._ensure_schema()
        c = review_items.c
        query = sa.select(c.id).where(
            c.kind == kind, c.sender == self.hash_sender(str(sender_id)),
            c.question == stored_question(question),
            c.created_at >= since.replace(microsecond=0)).limit(1)
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    def items(self, kind: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        self._ensure_schema()
        query = sa.select(review_items).order_by(review_items.c.id.desc()).limit(limit)
        if kind:
            query = query.where(review_items.c.kind == kind)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # -- rows ----------------------------------------------------------------
    def _row(self, kind, sender_id, question, intent, confidence, answer_id, detail) -> dict[str, Any]:
        if detail:
            try:
                detail_text = json.dumps(mask_structure(detail), ensure_ascii=False)
            except (ValueError, TypeError):
                detail_text = json.dumps({"unreadable": True})
        else:
            detail_text = None
        return {"created_at": dt.datetime.utcnow().replace(microsecond=0), "kind": kind,
                "sender": self.hash_sender(str(sender_id)),
                "question": stored_question(question),
                "intent": _short(intent), "confidence": _number(confidence), "answer_id": _short(answer_id),
                "detail": strip_unsafe(detail_text) if detail_text else None, "status": "new"}

    def _insert(self, row: dict[str, Any]) -> None:
        self._ensure_schema()
        with self.engine.begin() as conn:
            conn.execute(review_items.insert(), [row])

    # -- spool ---------------------------------------------------------------
    @contextlib.contextmanager
    def _spool_lock(self, blocking: bool = True) -> Iterator[bool]:
        """Exclusive lock shared by every process using this spool (fcntl.flock
        on a lock file beside it). Yields False when not blocking and busy."""
        assert self.spool is not None
        with file_lock(self.spool.with_name(self.spool.name + ".lock"), blocking) as held:
            yield held

    def _spool_lines(self) -> list[bytes]:
        try:
            data = self.spool.read_bytes()
        except FileNotFoundError:
            return []
        return [line for line in data.split(b"\n") if line.strip()]

    def _drain(self) -> bool | None:
        """Insert spooled items one at a time. True: the spool is empty now;
        None: another process is draining it or an item was set aside for a
        retry; False: the database is unavailable."""
        if not self.spool or not self.spool.exists() or self.spool.stat().st_size == 0:
            return True
        with self._spool_lock(blocking=False) as locked:
            if not locked:
                return None
            keep: list[bytes] = []
            bad: list[bytes] = []
            unavailable = False
            for line in self._spool_lines():
                if unavailable:
                    keep.append(line)
                    continue
                row, attempts = _parse_spool_line(line)
                if row is None:
                    bad.append(line)
                    continue
                try:
                    self._insert(row)
                except Exception as exc:  # noqa: BLE001 - decide per item below
                    if _database_unavailable(exc):
                        unavailable = True
                        keep.append(line)
                    elif attempts + 1 >= MAX_SPOOL_ATTEMPTS:
                        log.error("review item refused %d times (%s); moved to %s.bad",
                                  attempts + 1, exc.__class__.__name__, self.spool.name)
                        bad.append(line)
                    else:
                        keep.append(_spool_line(row, attempts + 1))
            if bad:
                log.error("%d unreadable review spool line(s) moved to %s.bad", len(bad), self.spool.name)
                with _open_private(self.spool.with_name(self.spool.name + ".bad"), "ab") as fh:
                    fh.write(b"".join(line + b"\n" for line in bad))
            self._rewrite_spool(keep)
            if unavailable:
                return False
            return True if not keep else None

    def _rewrite_spool(self, lines: list[bytes]) -> None:
        if not lines:
            self.spool.unlink(missing_ok=True)
            return
        tmp = self.spool.with_name(self.spool.name + ".tmp")
        with _open_private(tmp, "wb") as fh:
            fh.write(b"".join(line + b"\n" for line in lines))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.spool)

    def _append_spool(self, row: dict[str, Any]) -> None:
        if not self.spool:
            log.error("review item lost: no spool configured")
            return
        try:
            with self._spool_lock(), _open_private(self.spool, "a+b") as fh:
                # A line cut short by a crash must not swallow this one.
                fh.seek(0, os.SEEK_END)
                if fh.tell():
                    fh.seek(-1, os.SEEK_END)
                    if fh.read(1) != b"\n":
                        fh.write(b"\n")
                fh.write(_spool_line(row, 0) + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError:
            log.exception("review item lost: the spool %s cannot be written", self.spool)


def _open_private(path: Path, mode: str):
    """open() for a file only this user may read (the spool holds citizens' questions)."""
    flags = os.O_CREAT | (os.O_APPEND | os.O_RDWR if mode.startswith("a") else os.O_WRONLY | os.O_TRUNC)
    return os.fdopen(os.open(path, flags, 0o600), mode)


def _spool_line(row: dict[str, Any], attempts: int) -> bytes:
    data = {**row, "created_at": row["created_at"].isoformat(), "_attempts": attempts}
    return json.dumps(data, ensure_ascii=False).encode("utf-8")


def _parse_spool_line(line: bytes) -> tuple[dict[str, Any] | None, int]:
    """(row, failed attempts so far), or (None, 0) for a line that cannot be read."""
    try:
        data = json.loads(line.decode("utf-8"))
        if not isinstance(data, dict):
            return None, 0
        attempts = int(data.pop("_attempts", 0))
        if set(data) - _COLUMNS or data.get("kind") not in KINDS:
            return None, 0
        data["created_at"] = dt.datetime.fromisoformat(data["created_at"])
        if not isinstance(data.get("question"), str) or not isinstance(data.get("sender"), str):
            return None, 0
        for key in ("question", "sender", "intent", "answer_id", "detail", "status"):
            if isinstance(data.get(key), str):
                data[key] = strip_unsafe(data[key])
        return data, attempts
    except (ValueError, TypeError, KeyError, AttributeError):
        return None, 0


def _short(value: Any) -> str | None:
    return strip_unsafe(str(value))[:80] if value is not None else None


def _number(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


_stores: dict[str, ReviewStore] = {}


def get_review_store(settings=None) -> ReviewStore:
    from .config import load_settings

    settings = settings or load_settings()
    url = settings.review_url()
    if url not in _stores:
        salt = settings.review_salt or load_or_create_secret(settings.var_dir / "review-salt")
        _stores[url] = ReviewStore(url, settings.var_dir / "review-spool.jsonl", salt=salt)
    return _stores[url]
