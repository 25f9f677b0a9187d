"""The policy team's changes to review items, one function per action, each audited.

Actions take a list of item ids (one item, a selection, or a whole group):
set a status (已处理 / 忽略 / 待定 / 待处理), assign to an existing intent
(the item becomes training data for the export), mark as a new topic with a
draft answer that cites at least one clause, add or remove a tag, write a
note. Every change names who and when on the item and goes to the audit log
(bot.users.audit_log) with the ids and the new value.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Callable

import sqlalchemy as sa

from ..knowledge import Knowledge
from ..review import review_items, review_tags, review_topics
from ..text import mask_personal_data, strip_unsafe
from .labels import STATUS_LABELS, domain_intents

MAX_IDS = 5000
MAX_NOTE_CHARS = 1000
MAX_TAG_CHARS = 20
MAX_TITLE_CHARS = 80
MAX_DRAFT_CHARS = 2000
STATUS_ACTIONS = {"done": "已处理", "ignored": "忽略", "pending": "待定", "new": "待处理"}
_TAG = re.compile(r"^[^\s,<>\"'&]{1,20}$")


class WorkError(ValueError):
    """A refused change, with the field and a message for the person at the keyboard."""

    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field, self.message = field_name, message


@dataclass
class Actor:
    name: str
    ip: str | None = None


def utcnow() -> dt.datetime:
    return dt.datetime.utcnow().replace(microsecond=0)


def _ids(value: Any) -> list[int]:
    if not isinstance(value, list) or not value:
        raise WorkError("ids", "请先选择条目")
    if len(value) > MAX_IDS:
        raise WorkError("ids", f"一次最多处理 {MAX_IDS} 条")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise WorkError("ids", "条目编号应为正整数")
        out.append(v)
    return sorted(set(out))


def _existing(conn, ids: list[int]) -> list[int]:
    found: list[int] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        found += [r[0] for r in conn.execute(sa.select(review_items.c.id).where(review_items.c.id.in_(chunk)))]
    return sorted(found)


def _update(conn, ids: list[int], values: dict[str, Any], actor: Actor) -> None:
    values = {**values, "updated_at": utcnow(), "updated_by": actor.name[:64]}
    for start in range(0, len(ids), 500):
        conn.execute(review_items.update().where(review_items.c.id.in_(ids[start:start + 500])).values(**values))


def _audit_target(ids: list[int]) -> str:
    return f"item:{ids[0]}" if len(ids) == 1 else f"items:{len(ids)}"


def apply(engine: sa.engine.Engine, kb: Knowledge, actor: Actor, body: dict[str, Any],
          audit: Callable[..., None]) -> dict[str, Any]:
    """Do one action on the items `body["ids"]`; returns what changed. Raises WorkError."""
    if not isinstance(body, dict):
        raise WorkError("action", "请求格式有误")
    action = body.get("action")
    ids = _ids(body.get("ids"))
    with engine.begin() as conn:
        ids = _existing(conn, ids)
        if not ids:
            raise WorkError("ids", "这些条目不存在（可能已按保存期限删除）")
        if action == "status":
            status = body.get("value")
            if status not in STATUS_ACTIONS:
                raise WorkError("value", "状态只能是：已处理、忽略、待定、待处理")
            values: dict[str, Any] = {"status": status}
            if status == "new":
                values.update(assigned_intent=None, topic_id=None)
            _update(conn, ids, values, actor)
            result = {"status": status, "status_label": STATUS_LABELS[status]}
            detail = {"status": status}
        elif action == "assign":
            intent = body.get("value")
            if not isinstance(intent, str) or intent not in domain_intents():
                raise WorkError("value", "没有这个意图")
            _update(conn, ids, {"assigned_intent": intent, "topic_id": None, "status": "accepted"}, actor)
            result = {"status": "accepted", "status_label": STATUS_LABELS["accepted"], "assigned_intent": intent}
            detail = {"intent": intent}
        elif action == "topic":
            topic_id = _topic(conn, kb, body.get("value"), actor)
            _update(conn, ids, {"topic_id": topic_id, "assigned_intent": None, "status": "new_topic"}, actor)
            result = {"status": "new_topic", "status_label": STATUS_LABELS["new_topic"], "topic_id": topic_id}
            detail = {"topic_id": topic_id}
        elif action in ("tag", "untag"):
            tag = _tag(body.get("value"))
            if action == "tag":
                have = {r[0] for r in conn.execute(sa.select(review_tags.c.item_id).where(
                    review_tags.c.tag == tag, review_tags.c.item_id.in_(ids)))} if len(ids) <= 500 else \
                    {r[0] for r in conn.execute(sa.select(review_tags.c.item_id).where(review_tags.c.tag == tag))}
                new = [{"item_id": i, "tag": tag} for i in ids if i not in have]
                if new:
                    conn.execute(review_tags.insert(), new)
            else:
                for start in range(0, len(ids), 500):
                    conn.execute(review_tags.delete().where(review_tags.c.tag == tag,
                                                            review_tags.c.item_id.in_(ids[start:start + 500])))
            _update(conn, ids, {}, actor)
            result = {"tag": tag}
            detail = {"tag": tag}
        elif action == "note":
            note = body.get("value")
            if not isinstance(note, str) or len(note) > MAX_NOTE_CHARS:
                raise WorkError("value", f"备注不超过 {MAX_NOTE_CHARS} 个字")
            note = mask_personal_data(note.strip())   # a note may quote what a citizen typed
            _update(conn, ids, {"note": note or None}, actor)
            result = {"note": note}
            detail = {"note": note[:200]}
        else:
            raise WorkError("action", "没有这个操作")
    audit(actor.name, f"review_{action}", _audit_target(ids), ip=actor.ip,
          detail={"ids": ids[:100], "count": len(ids), **detail})
    return {"ids": ids, "count": len(ids), **result}


def _tag(value: Any) -> str:
    if not isinstance(value, str):
        raise WorkError("value", "请输入标签")
    tag = strip_unsafe(value).strip()
    if not _TAG.match(tag):
        raise WorkError("value", f"标签为 1–{MAX_TAG_CHARS} 个字，不含空格、逗号和引号")
    return tag


def _topic(conn, kb: Knowledge, value: Any, actor: Actor) -> int:
    """An existing topic's id, or a new topic made from {title, draft_answer, clauses}."""
    if isinstance(value, int) and not isinstance(value, bool):
        if conn.execute(sa.select(review_topics.c.id).where(review_topics.c.id == value)).first() is None:
            raise WorkError("value", "没有这个新主题")
        return value
    if not isinstance(value, dict):
        raise WorkError("value", "请填写新主题")
    title = value.get("title")
    draft = value.get("draft_answer")
    clauses = value.get("clauses")
    if not isinstance(title, str) or not title.strip() or len(title) > MAX_TITLE_CHARS:
        raise WorkError("title", f"请填写主题名称（不超过 {MAX_TITLE_CHARS} 个字）")
    if not isinstance(draft, str) or not draft.strip() or len(draft) > MAX_DRAFT_CHARS:
        raise WorkError("draft_answer", f"请填写答复草稿（不超过 {MAX_DRAFT_CHARS} 个字）")
    if isinstance(clauses, str):
        clauses = [c for c in re.split(r"[,，、\s]+", clauses) if c]
    if not isinstance(clauses, list) or not clauses:
        raise WorkError("clauses", "答复草稿必须引用至少一个条款")
    unknown = [c for c in clauses if not isinstance(c, str) or c not in kb.clauses]
    if unknown:
        raise WorkError("clauses", "没有这些条款：" + "、".join(map(str, unknown))[:100])
    now = utcnow()
    result = conn.execute(review_topics.insert().values(
        title=mask_personal_data(title.strip()), draft_answer=mask_personal_data(draft.strip()),
        clauses=",".join(dict.fromkeys(clauses)), created_by=actor.name[:64], created_at=now,
        updated_by=actor.name[:64], updated_at=now))
    return int(result.inserted_primary_key[0])


def topics(engine: sa.engine.Engine, kb: Knowledge) -> list[dict[str, Any]]:
    """Every new topic with its cited clauses and how many items it holds."""
    counts = sa.select(review_items.c.topic_id, sa.func.count().label("n")) \
        .where(review_items.c.topic_id.isnot(None)).group_by(review_items.c.topic_id).subquery()
    query = sa.select(review_topics, counts.c.n).outerjoin(counts, counts.c.topic_id == review_topics.c.id) \
        .order_by(review_topics.c.id.desc())
    out = []
    with engine.connect() as conn:
        for row in conn.execute(query):
            data = dict(row._mapping)
            ids = [c for c in (data["clauses"] or "").split(",") if c]
            data["cited"] = [{"id": c, "citation": kb.clauses[c].citation if c in kb.clauses else c} for c in ids]
            data["items"] = data.pop("n") or 0
            out.append(data)
    return out
