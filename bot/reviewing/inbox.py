"""The gap inbox: filters, sorting and keyset paging over the review store.

Every filter is a WHERE clause on an indexed column of review_items (time,
kind, status, intent, answer, confidence) or an indexed subquery (tags), and
every sort is an indexed ORDER BY that ends in the id, so a page is found by
keyset ("the 50 after this one") at any depth: bench/review_bench.py measures
it at 100,000 items. The department of an item is not stored: it is the
handling department of its topic, so the filter becomes "the topic is one of
the answers this department handles".
"""
from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Iterator
from urllib.parse import urlencode

import sqlalchemy as sa

from ..knowledge import Knowledge
from ..review import review_items, review_tags
from ..text import mask_personal_data, to_simplified
from .labels import (GAP_KINDS, KIND_LABELS, NO_DEPARTMENT, NO_DEPARTMENT_LABEL, OPEN_STATUSES, STATUS_LABELS,
                     clauses_led_by, department_of, intent_label, local_day_start_utc, to_local, topic_of,
                     topics_handled_by)

SORTS = {"new": "最新在前", "old": "最早在前", "conf_asc": "置信度从低到高", "conf_desc": "置信度从高到低"}
PAGE_SIZES = (20, 50, 100, 200)
MAX_SEARCH_CHARS = 100
MAX_TAG_CHARS = 20
CSV_MAX_ROWS = 100_000
COUNT_CAP = 1_000        # the inbox says "1000+" rather than counting every match
TEXT_SCAN_CAP = 10_000   # a text search sorts up to this many matches itself (see _text_search_page)


class FilterError(ValueError):
    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field, self.message = field_name, message


@dataclass(frozen=True)
class Filters:
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    kinds: tuple[str, ...] = ()            # empty: every gap kind
    conf_min: float | None = None
    conf_max: float | None = None
    intent: str | None = None              # predicted intent (or the answer given, for feedback items)
    department: str | None = None
    statuses: tuple[str, ...] = OPEN_STATUSES   # empty: any status
    tag: str | None = None
    q: str | None = None
    sort: str = "new"
    size: int = 50

    @classmethod
    def from_args(cls, args, kb: Knowledge, *, default_kinds: tuple[str, ...] = (),
                  default_statuses: tuple[str, ...] = OPEN_STATUSES) -> "Filters":
        """From a query string (request.args: lists of strings). Raises FilterError naming the field."""
        def values(name: str) -> list[str]:
            got = args.getlist(name) if hasattr(args, "getlist") else args.get(name)
            if got is None:
                return []
            return [str(v) for v in (got if isinstance(got, (list, tuple)) else [got])]

        def one(name: str) -> str:
            got = values(name)
            return got[0].strip() if got else ""

        def many(name: str) -> list[str]:
            return [p.strip() for v in values(name) for p in v.split(",") if p.strip()]

        def date(name: str) -> dt.date | None:
            text = one(name)
            if not text:
                return None
            try:
                return dt.date.fromisoformat(text)
            except ValueError:
                raise FilterError(name, "日期格式应为 YYYY-MM-DD") from None

        def number(name: str) -> float | None:
            text = one(name)
            if not text:
                return None
            try:
                value = float(text)
            except ValueError:
                raise FilterError(name, "置信度应为 0 到 1 之间的数") from None
            if not 0.0 <= value <= 1.0:
                raise FilterError(name, "置信度应为 0 到 1 之间的数")
            return value

        kinds = many("kind")
        if any(k not in GAP_KINDS + ("helpful",) for k in kinds):
            raise FilterError("kind", "没有这种原因")
        status_given = "status" in args
        statuses = [s for s in many("status") if s != "any"]
        if any(s not in STATUS_LABELS for s in statuses):
            raise FilterError("status", "没有这种状态")
        intent = one("intent") or None
        if intent and len(intent) > 80:
            raise FilterError("intent", "意图名过长")
        department = one("department") or None
        if department and department != NO_DEPARTMENT and department not in kb.departments:
            raise FilterError("department", "没有这个部门")
        tag = one("tag") or None
        if tag and len(tag) > MAX_TAG_CHARS:
            raise FilterError("tag", f"标签不超过 {MAX_TAG_CHARS} 个字")
        q = one("q") or None
        if q and len(q) > MAX_SEARCH_CHARS:
            raise FilterError("q", f"搜索内容不超过 {MAX_SEARCH_CHARS} 个字")
        sort = one("sort") or "new"
        if sort not in SORTS:
            raise FilterError("sort", "没有这种排序")
        size_text = one("size") or "50"
        if not size_text.isdigit() or int(size_text) not in PAGE_SIZES:
            raise FilterError("size", "每页条数只能是 " + "、".join(map(str, PAGE_SIZES)))
        date_from, date_to = date("from"), date("to")
        if date_from and date_to and date_from > date_to:
            raise FilterError("to", "结束日期早于开始日期")
        conf_min, conf_max = number("conf_min"), number("conf_max")
        if conf_min is not None and conf_max is not None and conf_min > conf_max:
            raise FilterError("conf_max", "置信度上限小于下限")
        return cls(date_from=date_from, date_to=date_to, kinds=tuple(kinds) or default_kinds,
                   conf_min=conf_min, conf_max=conf_max, intent=intent, department=department,
                   statuses=tuple(statuses) if status_given else default_statuses, tag=tag, q=q, sort=sort,
                   size=int(size_text))

    def params(self, **override: Any) -> list[tuple[str, str]]:
        """Query-string pairs that rebuild these filters (with `override` applied)."""
        f = replace(self, **override) if override else self
        out: list[tuple[str, str]] = []
        if f.date_from:
            out.append(("from", f.date_from.isoformat()))
        if f.date_to:
            out.append(("to", f.date_to.isoformat()))
        out += [("kind", k) for k in f.kinds]
        if f.conf_min is not None:
            out.append(("conf_min", f"{f.conf_min:g}"))
        if f.conf_max is not None:
            out.append(("conf_max", f"{f.conf_max:g}"))
        for name in ("intent", "department", "tag", "q"):
            if getattr(f, name):
                out.append((name, getattr(f, name)))
        out += [("status", s) for s in f.statuses] or [("status", "any")]
        if f.sort != "new":
            out.append(("sort", f.sort))
        if f.size != 50:
            out.append(("size", str(f.size)))
        return out

    def query_string(self, **override: Any) -> str:
        return urlencode(self.params(**override))


def conditions(f: Filters, kb: Knowledge, scan: bool = False) -> list[Any]:
    """WHERE clauses for the filters (each on an indexed column).

    `scan=True` when the table is read in its own order anyway (text search):
    kind and status are then tested as expressions no index applies to, so the
    planner does not visit most of the table through an index on them."""
    c = review_items.c
    kind, status = (sa.func.coalesce(c.kind, ""), sa.func.coalesce(c.status, "")) if scan else (c.kind, c.status)
    where: list[Any] = [kind.in_(f.kinds or GAP_KINDS)]
    if f.date_from:
        where.append(c.created_at >= local_day_start_utc(f.date_from))
    if f.date_to:
        where.append(c.created_at < local_day_start_utc(f.date_to + dt.timedelta(days=1)))
    if f.conf_min is not None:
        where.append(c.confidence >= f.conf_min)
    if f.conf_max is not None:
        where.append(c.confidence <= f.conf_max)
    if f.intent:
        alternatives = [c.intent == f.intent]
        if f.intent.startswith("ask_"):
            alternatives.append(c.answer_id == f.intent[4:])
        where.append(sa.or_(*alternatives))
    if f.department == NO_DEPARTMENT:
        topic_intents = [f"ask_{a}" for a in kb.answers]
        where.append(sa.and_(sa.or_(c.answer_id.is_(None), c.answer_id.notin_(list(kb.answers))),
                             sa.or_(c.intent.is_(None), c.intent.notin_(topic_intents)),
                             sa.or_(c.answer_id.is_(None), c.answer_id.notlike("clause:%"))))
    elif f.department:
        answers = list(topics_handled_by(kb, f.department))
        clauses = [f"clause:{cid}" for cid in clauses_led_by(kb, f.department)]
        other = [a for a in kb.answers if a not in answers]
        where.append(sa.or_(c.answer_id.in_(answers + clauses),
                            sa.and_(sa.or_(c.answer_id.is_(None), c.answer_id.notin_(other)),
                                    c.intent.in_([f"ask_{a}" for a in answers]))))
    if f.statuses:
        where.append(status.in_(f.statuses))
    if f.tag:
        where.append(c.id.in_(sa.select(review_tags.c.item_id).where(review_tags.c.tag == f.tag)))
    if f.q:
        # Citizens type either script: search for the words in both.
        words = {f.q, to_simplified(f.q), to_traditional(f.q)}
        where.append(sa.or_(*(c.question.like(f"%{_escape_like(w)}%", escape="\\") for w in words)))
    if f.sort in ("conf_asc", "conf_desc"):
        where.append(c.confidence.isnot(None))   # sorted by confidence: the items that have one
    return where


@lru_cache(maxsize=1)
def _s2t():
    import opencc

    return opencc.OpenCC("s2t")


def to_traditional(text: str) -> str:
    return _s2t().convert(text)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _sort_columns(sort: str):
    c = review_items.c
    if sort in ("conf_asc", "conf_desc"):
        return (c.confidence, c.id), sort == "conf_desc"
    return (c.created_at, c.id), sort == "new"


def encode_cursor(values: tuple[Any, ...]) -> str:
    plain = [v.isoformat() if isinstance(v, dt.datetime) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode().rstrip("=")


def decode_cursor(token: str, sort: str) -> tuple[Any, Any] | None:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        first, last = data
        if sort in ("conf_asc", "conf_desc"):
            return float(first), int(last)
        return dt.datetime.fromisoformat(first), int(last)
    except (ValueError, TypeError, json.JSONDecodeError):
        return None


@dataclass
class Page:
    rows: list[dict[str, Any]]
    total: int
    next_cursor: str | None = None
    prev_cursor: str | None = None
    filters: Filters = field(default_factory=Filters)


def count_matching(conn, kb: Knowledge, f: Filters, cap: int = COUNT_CAP) -> int:
    """How many items the filters select, counted up to `cap` (cap + 1 means "more than cap").

    Counted over the page query's own ORDER BY and LIMIT, so the database walks
    the same index the page uses and stops early instead of visiting every match."""
    columns, descending = _sort_columns(f.sort)
    inner = (sa.select(review_items.c.id).where(*conditions(f, kb))
             .order_by(*[col.desc() if descending else col.asc() for col in columns]).limit(cap + 1).subquery())
    return conn.execute(sa.select(sa.func.count()).select_from(inner)).scalar() or 0


def refresh_statistics(engine: sa.engine.Engine) -> None:
    """Table statistics for the query planner, so it walks the time index for the inbox's
    common filters instead of sorting every open item (SQLite keeps none until asked)."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("ANALYZE review_items")
            conn.exec_driver_sql("ANALYZE review_tags")
        elif engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE review_items")
            conn.exec_driver_sql("ANALYZE review_tags")


def page(conn, kb: Knowledge, f: Filters, after: str | None = None, before: str | None = None,
         count: bool = True, known_total: int | None = None) -> Page:
    """One page of items: the first, the one after `after`, or the one before `before` (cursors).

    `total` is counted up to COUNT_CAP (COUNT_CAP + 1: more); a page reached by a
    cursor may pass the total the first page counted (`known_total`)."""
    key = decode_cursor(after or before, f.sort) if (after or before) else None
    backwards = bool(before) and key is not None
    found = _text_search_page(conn, kb, f, key, backwards) if f.q else None
    if found is not None:
        rows, more, total = found
    else:
        rows, more = _indexed_page(conn, kb, f, key, backwards)
        if known_total is not None and known_total >= 0:
            total = known_total
        elif key is None and not more:
            total = len(rows)          # the first page holds every match
        else:
            total = count_matching(conn, kb, f) if count else -1
    tags = tags_of(conn, [r["id"] for r in rows])
    described = [describe(kb, r, tags.get(r["id"], [])) for r in rows]
    result = Page(described, total, filters=f)
    if rows:
        first_key, last_key = _key(rows[0], f.sort), _key(rows[-1], f.sort)
        has_next = more if not backwards else True
        has_prev = (key is not None) if not backwards else more
        result.next_cursor = encode_cursor(last_key) if has_next else None
        result.prev_cursor = encode_cursor(first_key) if has_prev else None
    return result


def _indexed_page(conn, kb: Knowledge, f: Filters, key, backwards: bool) -> tuple[list[dict], bool]:
    """The page by keyset over the sort's index: (rows in page order, whether more follow)."""
    columns, descending = _sort_columns(f.sort)
    where = conditions(f, kb)
    if key is not None:
        tup, bound = sa.tuple_(*columns), sa.tuple_(*[sa.literal(v) for v in key])
        forward_is_less = descending != backwards
        where.append(tup < bound if forward_is_less else tup > bound)
    order_desc = descending != backwards
    order = [col.desc() if order_desc else col.asc() for col in columns]
    query = sa.select(review_items).where(*where).order_by(*order).limit(f.size + 1)
    rows = [dict(r._mapping) for r in conn.execute(query)]
    more = len(rows) > f.size
    rows = rows[: f.size]
    if backwards:
        rows.reverse()
    return rows, more


def _text_search_page(conn, kb: Knowledge, f: Filters, key, backwards: bool):
    """A text search: (rows, more, exact total), or None when it matches more than TEXT_SCAN_CAP.

    Text is matched by scanning the table (no index helps with '%word%'). One
    plain scan in table order collects every match's sort key, and the page is
    cut here: walking an index instead visits the rows in random order,
    five times slower at 100,000 items on SQLite, whose planner prefers it
    (bench/review_bench.py)."""
    columns, descending = _sort_columns(f.sort)
    query = sa.select(columns[0], review_items.c.id).where(*conditions(f, kb, scan=True)).limit(TEXT_SCAN_CAP + 1)
    matches = [((first, item_id), item_id) for first, item_id in conn.execute(query).all()]
    if len(matches) > TEXT_SCAN_CAP:
        return None
    matches.sort(key=lambda m: m[0], reverse=descending)
    keys = [m[0] for m in matches]
    if key is None:
        start, end = 0, f.size
    elif not backwards:
        start = next((i for i, k in enumerate(keys) if (k < key if descending else k > key)), len(keys))
        end = start + f.size
    else:
        end = next((i for i, k in enumerate(keys) if (k <= key if descending else k >= key)), len(keys))
        start = max(0, end - f.size)
    chosen = [m[1] for m in matches[start:end]]
    more = end < len(matches) if not backwards else start > 0
    by_id = {}
    if chosen:
        by_id = {r.id: dict(r._mapping) for r in conn.execute(sa.select(review_items)
                                                               .where(review_items.c.id.in_(chosen)))}
    return [by_id[i] for i in chosen if i in by_id], more, len(matches)


def _key(row: dict[str, Any], sort: str) -> tuple[Any, Any]:
    if sort in ("conf_asc", "conf_desc"):
        return row["confidence"], row["id"]
    return row["created_at"], row["id"]


def tags_of(conn, ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        query = sa.select(review_tags.c.item_id, review_tags.c.tag).where(review_tags.c.item_id.in_(chunk)) \
            .order_by(review_tags.c.tag)
        for item_id, tag in conn.execute(query):
            out.setdefault(item_id, []).append(tag)
    return out


def all_tags(conn, limit: int = 200) -> list[str]:
    query = sa.select(review_tags.c.tag, sa.func.count()).group_by(review_tags.c.tag) \
        .order_by(sa.func.count().desc(), review_tags.c.tag).limit(limit)
    return [tag for tag, _ in conn.execute(query)]


def _detail(row: dict[str, Any]) -> dict[str, Any]:
    try:
        value = json.loads(row.get("detail") or "null")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def describe(kb: Knowledge, row: dict[str, Any], tags: list[str] | None = None) -> dict[str, Any]:
    """Everything a page shows about one item (text is shown as stored: masked when it was written)."""
    detail = _detail(row)
    intent, answer_id = row.get("intent"), row.get("answer_id")
    ranking = detail.get("ranking") if isinstance(detail.get("ranking"), list) else []
    alternatives = []
    for entry in ranking:
        if not isinstance(entry, dict) or entry.get("name") in (None, "nlu_fallback", intent):
            continue
        try:
            confidence = float(entry.get("confidence") or 0.0)
        except (TypeError, ValueError):
            confidence = 0.0
        alternatives.append({"name": str(entry["name"]), "label": intent_label(kb, str(entry["name"])),
                             "confidence": confidence})
    topic = topic_of(kb, intent, answer_id)
    department = department_of(kb, intent, answer_id)
    answer_title = ""
    if answer_id and answer_id in kb.answers:
        answer_title = kb.answers[answer_id].title
    elif answer_id and answer_id.startswith("clause:") and answer_id[7:] in kb.clauses:
        answer_title = "条款 " + kb.clauses[answer_id[7:]].citation
    kind = row["kind"]
    if not answer_title and kind in GENERIC_REPLIES:
        answer_title = GENERIC_REPLIES[kind]
    extra = ""
    if kind == "desk_flag":
        extra = str(detail.get("label") or "") + ("：" + str(detail["note"]) if detail.get("note") else "")
    elif kind == "abandoned_check":
        extra = "核对：" + str(detail.get("benefit_name") or detail.get("benefit") or "") + \
            ("；停在：" + str(detail["asked"]) if detail.get("asked") else "")
    return {
        "id": row["id"], "created_at": row["created_at"], "local_time": to_local(row["created_at"]),
        "kind": kind, "kind_label": KIND_LABELS.get(kind, kind), "question": row.get("question") or "",
        "intent": intent, "intent_label": intent_label(kb, intent), "confidence": row.get("confidence"),
        "alternatives": alternatives[:3], "answer_id": answer_id, "answer_title": answer_title, "topic": topic,
        "department": department or "", "department_label": department or NO_DEPARTMENT_LABEL,
        "channel": "坐席" if kind.startswith("desk_") else "在线咨询",
        "status": row.get("status") or "new", "status_label": STATUS_LABELS.get(row.get("status") or "new", ""),
        "assigned_intent": row.get("assigned_intent"), "assigned_label": intent_label(kb, row.get("assigned_intent")),
        "topic_id": row.get("topic_id"), "note": row.get("note") or "", "tags": tags or [],
        "recheck_intent": row.get("recheck_intent"), "recheck_label": intent_label(kb, row.get("recheck_intent")),
        "recheck_confidence": row.get("recheck_confidence"), "rechecked_at": to_local(row.get("rechecked_at")),
        "updated_by": row.get("updated_by"), "updated_at": to_local(row.get("updated_at")),
        "sender": row.get("sender"), "extra": extra, "detail": detail,
    }


def get_item(conn, kb: Knowledge, item_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(review_items).where(review_items.c.id == item_id)).first()
    if row is None:
        return None
    return describe(kb, dict(row._mapping), tags_of(conn, [item_id]).get(item_id, []))


def matching_rows(conn, kb: Knowledge, f: Filters, columns=None, limit: int | None = None) -> Iterator[dict]:
    """Every item the filters select, in their sort order (for grouping and exports)."""
    cols, descending = _sort_columns(f.sort)
    order = [col.desc() if descending else col.asc() for col in cols]
    query = sa.select(*(columns or [review_items])).where(*conditions(f, kb)).order_by(*order)
    if limit:
        query = query.limit(limit)
    for row in conn.execute(query):
        yield dict(row._mapping)


# What the assistant said where no topic answer was given (the words themselves are in the tracker store).
GENERIC_REPLIES = {"unanswered": "未理解的回复", "low_confidence": "推荐了相近问题",
                   "out_of_scope": "超出范围的说明"}

CSV_COLUMNS = ("编号", "时间（北京时间）", "原因", "问题（已遮盖）", "预测意图", "置信度", "备选意图", "给出的答复", "部门",
               "渠道", "状态", "归入意图", "标签", "备注")


def _cell(value: Any) -> str:
    """A CSV cell that a spreadsheet never runs as a formula."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        text = "'" + text
    return text


def csv_lines(conn, kb: Knowledge, f: Filters) -> Iterator[str]:
    """The filtered inbox as CSV (UTF-8 with BOM, so spreadsheet programs read the Chinese)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(CSV_COLUMNS)
    rows: list[dict] = []

    def flush() -> str:
        tags = tags_of(conn, [r["id"] for r in rows])
        for r in rows:
            d = describe(kb, r, tags.get(r["id"], []))
            writer.writerow([_cell(v) for v in (
                d["id"], d["local_time"].strftime("%Y-%m-%d %H:%M:%S") if d["local_time"] else "", d["kind_label"],
                mask_personal_data(d["question"]), d["intent"] or "",
                f"{d['confidence']:.3f}" if d["confidence"] is not None else "",
                "；".join(f"{a['name']} {a['confidence']:.2f}" for a in d["alternatives"]), d["answer_title"],
                d["department_label"], d["channel"], d["status_label"], d["assigned_intent"] or "",
                "、".join(d["tags"]), mask_personal_data(d["note"]))])
        rows.clear()
        out = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return out

    for row in matching_rows(conn, kb, f, limit=CSV_MAX_ROWS):
        rows.append(row)
        if len(rows) >= 1000:
            yield flush()
    yield flush()
