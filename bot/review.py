"""What the assistant could not answer, for the policy team.

One table, `review_items`, in SQLite by default or PostgreSQL by URL. Text is
masked (ID-card and phone numbers) before it is written. When the database
is locked or down, the item goes to a local spool file and is written on the
next successful call, so nothing is lost.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from .text import mask_personal_data

log = logging.getLogger(__name__)

KINDS = ("unanswered", "out_of_scope", "handoff", "unhelpful", "helpful", "low_confidence",
         "desk_no_result", "desk_flag")
MAX_STORED_CHARS = 1000

metadata = sa.MetaData()
review_items = sa.Table(
    "review_items", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False, index=True),
    sa.Column("sender", sa.String(64), nullable=False),   # salted hash, never the raw id
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("intent", sa.String(80)),
    sa.Column("confidence", sa.Float),
    sa.Column("answer_id", sa.String(80)),
    sa.Column("detail", sa.Text),
    sa.Column("status", sa.String(16), nullable=False, default="new"),
)


def sender_hash(sender_id: str) -> str:
    return hashlib.sha256(("ordos-review:" + sender_id).encode("utf-8")).hexdigest()[:32]


class ReviewStore:
    def __init__(self, url: str, spool: Path | None = None):
        self.url = url
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            self.engine = sa.create_engine(url, connect_args={"timeout": 2}, future=True)
        else:
            self.engine = sa.create_engine(url, pool_pre_ping=True, future=True)
        self.spool = spool
        self._lock = threading.Lock()
        self._ready = False

    def _ensure_schema(self) -> None:
        if not self._ready:
            metadata.create_all(self.engine)
            self._ready = True

    def record(self, kind: str, sender_id: str, question: str, *, intent: str | None = None,
               confidence: float | None = None, answer_id: str | None = None,
               detail: dict[str, Any] | None = None) -> bool:
        """Store one item; returns False when it went to the spool instead."""
        if kind not in KINDS:
            raise ValueError(f"unknown review kind {kind!r}")
        row = {"created_at": dt.datetime.utcnow().replace(microsecond=0), "kind": kind,
               "sender": sender_hash(sender_id), "question": mask_personal_data(question or "")[:MAX_STORED_CHARS],
               "intent": intent, "confidence": confidence, "answer_id": answer_id,
               "detail": json.dumps(detail, ensure_ascii=False) if detail else None, "status": "new"}
        with self._lock:
            try:
                self._ensure_schema()
                with self.engine.begin() as conn:
                    pending = self._read_spool()
                    for old in pending:
                        old["created_at"] = dt.datetime.fromisoformat(old["created_at"])
                    conn.execute(review_items.insert(), pending + [row])
                self._clear_spool()
                return True
            except (OperationalError, SQLAlchemyError) as exc:
                log.warning("review store unavailable (%s); spooling item", exc.__class__.__name__)
                self._append_spool(row)
                return False

    def items(self, kind: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        self._ensure_schema()
        query = sa.select(review_items).order_by(review_items.c.id.desc()).limit(limit)
        if kind:
            query = query.where(review_items.c.kind == kind)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # -- spool -------------------------------------------------------------
    def _read_spool(self) -> list[dict]:
        if not self.spool or not self.spool.exists():
            return []
        lines = self.spool.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def _append_spool(self, row: dict) -> None:
        if not self.spool:
            log.error("review item lost: no spool configured")
            return
        self.spool.parent.mkdir(parents=True, exist_ok=True)
        with self.spool.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({**row, "created_at": row["created_at"].isoformat()}, ensure_ascii=False) + "\n")

    def _clear_spool(self) -> None:
        if self.spool and self.spool.exists():
            self.spool.unlink()


_stores: dict[str, ReviewStore] = {}


def get_review_store(settings=None) -> ReviewStore:
    from .config import load_settings

    settings = settings or load_settings()
    url = settings.review_url()
    if url not in _stores:
        _stores[url] = ReviewStore(url, settings.var_dir / "review-spool.jsonl")
    return _stores[url]
