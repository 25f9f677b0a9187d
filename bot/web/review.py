"""The policy team's review workspace at /review (role `policy`).

Pages: the gap inbox with filters, sorting and keyset paging; one item with
the conversation around it (from Rasa's tracker store); similar questions
grouped, biggest gap first, each re-checkable against the current model; a
group's items; the dashboard; the NLU export with its conflict checks; new
topics with their draft answers. JSON endpoints under /review/api/ change
items (keyboard-first in the page's script) and re-check groups. Every route
carries `require_role("policy")`; every change goes to the audit log. Citizen
text is only ever rendered through Jinja2's autoescape or `textContent`.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import functools
import itertools
import logging
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from sanic import Blueprint
from sanic.response import html, json as json_response, raw

from ..auth import require_role, set_staff_headers
from ..grouping import Normaliser, Question, group_questions
from ..review import get_review_store, review_items
from ..reviewing import dashboard, export, inbox, recheck, work
from ..reviewing.conversations import ABANDONED_AFTER_MINUTES, TrackerReader, conversation_around, \
    scan_abandoned_checks
from ..reviewing.labels import (GAP_KINDS, KIND_LABELS, NO_DEPARTMENT, NO_DEPARTMENT_LABEL, QUESTION_KINDS,
                                STATUS_LABELS, department_of, departments_in_use, domain_intents, intent_label,
                                to_local, today_local)
from ..users import ROLE_NAMES
from . import ApiError
from .background import alone
from .limits import client_ip as _client_ip

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
MAX_GROUPED = 10_000          # questions grouped at most per view (the newest)
GROUPS_PER_PAGE = 50
GROUP_DAYS_DEFAULT = 30
DASHBOARD_DAYS_DEFAULT = 7
SCAN_EVERY_S = 600
STATISTICS_EVERY_SCANS = 6    # the planner's statistics refreshed hourly
GROUP_CACHE_SIZE = 8

bp = Blueprint("review", url_prefix="/review")
templates = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]),
                        trim_blocks=True, lstrip_blocks=True)
templates.globals.update(role_names=ROLE_NAMES, kind_labels=KIND_LABELS, status_labels=STATUS_LABELS)


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.0%}"


def _confidence(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _when(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


templates.filters.update(percent=_percent, confidence=_confidence, when=_when)


def setup(app) -> None:
    """Review services on app.ctx and the blueprint (called by create_app after the staff accounts)."""
    settings = app.ctx.settings
    app.ctx.review = getattr(app.ctx, "review", None) or get_review_store(settings)
    app.ctx.tracker = TrackerReader(settings.tracker_db_url) if settings.tracker_db_url else None
    app.ctx.review_groups = {}
    app.ctx.review_groups_lock = threading.Lock()
    app.ctx.review_normaliser = None
    app.blueprint(bp)

    async def scan_forever(app, _loop):
        # The export's checker and the default grouping take seconds to build: not on a request.
        asyncio.get_running_loop().run_in_executor(None, _warm_up, app)

        async def loop_body():
            for cycle in itertools.count(1):
                await asyncio.sleep(60)
                try:
                    await _blocking(_maintain, app, cycle)
                except Exception:  # noqa: BLE001 - one failed scan must not end the schedule
                    log.exception("review maintenance failed; next try in %d s", SCAN_EVERY_S)
                await asyncio.sleep(SCAN_EVERY_S - 60)

        app.ctx.review_scan_task = asyncio.get_running_loop().create_task(loop_body())

    async def stop_scan(app, _loop):
        task = getattr(app.ctx, "review_scan_task", None)
        if task:
            task.cancel()

    app.register_listener(scan_forever, "after_server_start")
    app.register_listener(stop_scan, "before_server_stop")


def _warm_up(app) -> None:
    try:
        export.checker_for()
        _refresh_statistics(app)
        compute_groups(app, default_group_filters())   # the groups page's default view, ready for the first visit
    except Exception:  # noqa: BLE001 - the first request builds them instead
        log.exception("review workspace warm-up failed")


def _maintain(app, cycle: int) -> None:
    """One round of the scan (and, every few, the statistics), by one worker process at a time."""
    with alone(app.ctx.settings.var_dir, "review-maintenance", app.ctx.review.engine) as mine:
        if mine:
            _scan(app)
            if cycle % STATISTICS_EVERY_SCANS == 0:
                _refresh_statistics(app)


def _refresh_statistics(app) -> None:
    store = app.ctx.review
    store._ensure_schema()
    inbox.refresh_statistics(store.engine)


def _scan(app) -> int:
    if app.ctx.tracker is None:
        return 0
    return scan_abandoned_checks(app.ctx.tracker, app.ctx.review, app.ctx.kb, idle_minutes=ABANDONED_AFTER_MINUTES)


async def _blocking(func, *args, **kwargs):
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(func, *args, **kwargs))


def render(template: str, request, status: int = 200, **context) -> Any:
    context.setdefault("session", request.ctx.staff)
    context.setdefault("section", "")
    return html(templates.get_template(template).render(**context), status=status)


def client_ip(request) -> str:
    return _client_ip(request, getattr(request.app.ctx, "trusted_proxies", ()))[:64] or "unknown"


def _engine(request):
    store = request.app.ctx.review
    store._ensure_schema()
    return store.engine


def _normaliser(app) -> Normaliser:
    if app.ctx.review_normaliser is None:
        app.ctx.review_normaliser = Normaliser(app.ctx.kb, analyzer=app.ctx.search.analyzer)
    return app.ctx.review_normaliser


def _audit(request, action: str, target: str | None = None, detail: dict | None = None) -> None:
    request.app.ctx.staff.audit(request.ctx.staff.name, action, target, ip=client_ip(request), detail=detail)


def _choices(kb) -> dict[str, Any]:
    intents = [{"name": n, "label": intent_label(kb, n)} for n in domain_intents()]
    departments = departments_in_use(kb)
    clauses = [{"id": c.id, "citation": c.citation, "title": c.title} for c in kb.clauses.values()]
    return {"intents": intents, "departments": departments, "clauses": clauses, "kinds": GAP_KINDS,
            "statuses": list(STATUS_LABELS), "sorts": inbox.SORTS, "sizes": inbox.PAGE_SIZES,
            "no_department": NO_DEPARTMENT, "no_department_label": NO_DEPARTMENT_LABEL}


def _filters(request, **defaults) -> tuple[inbox.Filters, str | None]:
    """The page's filters; on a bad value, the defaults and a message saying so."""
    try:
        return inbox.Filters.from_args(request.args, request.app.ctx.kb, **defaults), None
    except inbox.FilterError as exc:
        return inbox.Filters(kinds=defaults.get("default_kinds", ())), f"{exc.message}（已忽略筛选条件）"


# -- inbox -------------------------------------------------------------------------------
@bp.get("")
@require_role("policy")
async def inbox_page(request):
    kb = request.app.ctx.kb
    filters, error = _filters(request)
    after, before = request.args.get("after"), request.args.get("before")
    known = request.args.get("n", "")
    known_total = int(known) if known.isdigit() and (after or before) else None
    engine = _engine(request)

    def load():
        with engine.connect() as conn:
            return (inbox.page(conn, kb, filters, after=after, before=before, known_total=known_total),
                    inbox.all_tags(conn))

    result, tags = await _blocking(load)
    return render("review_inbox.html", request, status=400 if error else 200, page=result, filters=filters,
                  error=error, tags=tags, section="inbox", count_cap=inbox.COUNT_CAP, **_choices(kb))


@bp.get("/items/<item_id:int>")
@require_role("policy")
async def item_page(request, item_id: int):
    app, kb = request.app, request.app.ctx.kb
    engine = _engine(request)
    whole = request.args.get("whole") == "1"

    def load():
        with engine.connect() as conn:
            item = inbox.get_item(conn, kb, item_id)
        if item is None:
            return None, None, None
        conversation = conversation_around(app.ctx.tracker, app.ctx.review, item, whole=whole)
        for message in conversation["messages"]:
            message["intent_label"] = intent_label(kb, message["intent"])
        topic = None
        if item["topic_id"]:
            topic = next((t for t in work.topics(engine, kb) if t["id"] == item["topic_id"]), None)
        return item, conversation, topic

    item, conversation, topic = await _blocking(load)
    if item is None:
        return request.app.ctx.refuse(request, 404, "没有这个条目（可能已按保存期限删除）。")
    return render("review_item.html", request, item=item, conversation=conversation, topic=topic, whole=whole,
                  back=request.args.get("back", "") if request.args.get("back", "").startswith("/review") else
                  "/review", section="inbox", **_choices(kb))


@bp.get("/export.csv")
@require_role("policy")
async def inbox_csv(request):
    kb = request.app.ctx.kb
    filters, error = _filters(request)
    if error:
        raise ApiError(400, "filters", error, "bad filter")
    engine = _engine(request)

    def build() -> bytes:
        with engine.connect() as conn:
            return "".join(inbox.csv_lines(conn, kb, filters)).encode("utf-8")

    body = await _blocking(build)
    await _blocking(_audit, request, "review_export_csv", "inbox", {"filters": filters.query_string()[:500]})
    name = f"review-inbox-{today_local():%Y%m%d}.csv"
    return raw(body, content_type="text/csv; charset=utf-8",
               headers={"content-disposition": f'attachment; filename="{name}"'})


# -- actions -------------------------------------------------------------------------------
def _json_body(request) -> dict[str, Any]:
    try:
        body = request.json
    except Exception:  # noqa: BLE001 - Sanic raises its own error for bad JSON
        body = None
    if not isinstance(body, dict):
        raise ApiError(400, None, "请求内容应为 JSON 对象", "body must be a JSON object")
    return body


@bp.post("/api/items")
@require_role("policy")
async def item_action(request):
    body = _json_body(request)
    actor = work.Actor(request.ctx.staff.name, client_ip(request))
    app = request.app
    try:
        result = await _blocking(work.apply, _engine(request), app.ctx.kb, actor, body, app.ctx.staff.audit)
    except work.WorkError as exc:
        raise ApiError(400, exc.field, exc.message, exc.message) from exc
    app.ctx.review_groups.clear()
    return json_response(result, ensure_ascii=False)


@bp.post("/api/groups/recheck")
@require_role("policy")
async def group_recheck(request):
    app, kb, settings = request.app, request.app.ctx.kb, request.app.ctx.settings
    body = _json_body(request)
    ids = body.get("ids")
    if not isinstance(ids, list) or not ids or len(ids) > work.MAX_IDS or \
            not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise ApiError(400, "ids", "请先选择要复核的分组", "ids must be a non-empty list of item ids")
    engine = _engine(request)

    def members():
        import sqlalchemy as sa

        out = []
        with engine.connect() as conn:
            for start in range(0, len(ids), 500):
                query = sa.select(review_items.c.id, review_items.c.question).where(
                    review_items.c.id.in_(ids[start:start + 500]))
                out += [dict(r._mapping) for r in conn.execute(query)]
        return out

    items = await _blocking(members)
    counts = Counter(i["question"] for i in items)
    texts = [t for t, _ in counts.most_common()]
    parsed = await recheck.parse_texts(getattr(app.ctx, "http", None), settings.rasa_url, settings.rasa_token, texts)
    if parsed is None:
        return json_response({"available": False, "message": recheck.UNAVAILABLE}, ensure_ascii=False)
    updated = await _blocking(recheck.store_results, engine, items, parsed)
    now = dt.datetime.utcnow()
    state = recheck.coverage([{**i, "recheck_intent": parsed[i["question"]][0],
                               "recheck_confidence": parsed[i["question"]][1], "rechecked_at": now}
                              if i["question"] in parsed else {**i, "rechecked_at": None} for i in items])
    results = [{"text": t, "intent": parsed[t][0], "label": intent_label(kb, parsed[t][0]),
                "confidence": round(parsed[t][1], 3), "answered": recheck.answered(*parsed[t])}
               for t in texts if t in parsed]
    await _blocking(_audit, request, "review_recheck", f"items:{len(items)}",
                    {"ids": sorted(i["id"] for i in items)[:100], "coverage": state["state"], "checked": updated})
    app.ctx.review_groups.clear()
    return json_response({"available": True, "coverage": {k: v for k, v in state.items() if k != "at"},
                          "results": results, "updated": updated}, ensure_ascii=False)


# -- groups ------------------------------------------------------------------------------
def _group_filters(request) -> tuple[inbox.Filters, str | None]:
    filters, error = _filters(request, default_kinds=QUESTION_KINDS)
    if filters.date_from is None and "from" not in request.args:
        filters = inbox.Filters(**{**filters.__dict__,
                                   "date_from": today_local() - dt.timedelta(days=GROUP_DAYS_DEFAULT - 1)})
    return filters, error


def default_group_filters() -> inbox.Filters:
    """What /review/groups shows without a query: open questions of the last 30 days."""
    return inbox.Filters(kinds=QUESTION_KINDS,
                         date_from=today_local() - dt.timedelta(days=GROUP_DAYS_DEFAULT - 1))


GROUP_COLUMNS = [review_items.c.id, review_items.c.question, review_items.c.created_at, review_items.c.intent,
                 review_items.c.answer_id, review_items.c.status, review_items.c.recheck_intent,
                 review_items.c.recheck_confidence, review_items.c.rechecked_at]


def compute_groups(app, filters: inbox.Filters) -> list[dict[str, Any]]:
    """The filtered questions grouped, biggest first, each summarised (cached until the items change)."""
    import sqlalchemy as sa

    kb, store = app.ctx.kb, app.ctx.review
    store._ensure_schema()
    f = inbox.Filters(**{**filters.__dict__, "sort": "new"})
    with store.engine.connect() as conn:
        stamp = conn.execute(sa.select(sa.func.count(), sa.func.max(review_items.c.id),
                                       sa.func.max(review_items.c.updated_at), sa.func.max(review_items.c.rechecked_at))
                             .where(*inbox.conditions(f, kb))).first()
        key = (f.query_string(), tuple(stamp))
        cache = app.ctx.review_groups
        with app.ctx.review_groups_lock:
            if key in cache:
                return cache[key]
        rows = list(inbox.matching_rows(conn, kb, f, columns=GROUP_COLUMNS, limit=MAX_GROUPED))
    questions = [Question(r["id"], r["question"], r["created_at"], r) for r in rows]
    groups = group_questions(questions, _normaliser(app))
    end = f.date_to or today_local()
    start = f.date_from or min((dashboard._local_day(r["created_at"]) for r in rows), default=end)
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)][-92:]
    out = []
    for g in groups:
        members = [q.extra for q in g.members]
        per_day = Counter(dashboard._local_day(m["created_at"]) for m in members)
        trend = [per_day.get(d, 0) for d in days]
        guesses = Counter(m["intent"] for m in members if m["intent"])
        guess = guesses.most_common(1)[0][0] if guesses else None
        statuses = Counter(m["status"] for m in members)
        out.append({
            "key": g.key, "count": g.count, "representative": g.representative.text, "examples": g.examples,
            "ids": g.ids, "trend": trend, "days": days, "first": to_local(min(m["created_at"] for m in members)),
            "last": to_local(max(m["created_at"] for m in members)),
            "spark": Markup(dashboard.sparkline(trend, f"近{len(days)}天每日提问数：" + "、".join(map(str, trend)))),
            "intent": guess, "intent_label": intent_label(kb, guess),
            "department": department_of(kb, guess, None) or NO_DEPARTMENT_LABEL,
            "coverage": recheck.coverage(members), "open": statuses.get("new", 0) + statuses.get("pending", 0),
        })
    with app.ctx.review_groups_lock:
        while len(cache) >= GROUP_CACHE_SIZE:
            cache.pop(next(iter(cache)))
        cache[key] = out
    return out


@bp.get("/groups")
@require_role("policy")
async def groups_page(request):
    filters, error = _group_filters(request)
    started = time.perf_counter()
    groups = await _blocking(compute_groups, request.app, filters)
    took = time.perf_counter() - started
    try:
        page_no = max(1, int(request.args.get("page", "1")))
    except ValueError:
        page_no = 1
    pages = max(1, -(-len(groups) // GROUPS_PER_PAGE))
    page_no = min(page_no, pages)
    shown = groups[(page_no - 1) * GROUPS_PER_PAGE: page_no * GROUPS_PER_PAGE]
    return render("review_groups.html", request, status=400 if error else 200, groups=shown, total=len(groups),
                  items=sum(g["count"] for g in groups), max_grouped=MAX_GROUPED, page_no=page_no, pages=pages,
                  filters=filters, error=error,
                  took=took, section="groups", **_choices(request.app.ctx.kb))


@bp.get("/groups/<key:int>")
@require_role("policy")
async def group_page(request, key: int):
    kb = request.app.ctx.kb
    filters, error = _group_filters(request)
    groups = await _blocking(compute_groups, request.app, filters)
    group = next((g for g in groups if g["key"] == key), None)
    if group is None:
        return request.app.ctx.refuse(request, 404, "没有这个分组：条件已变化或其中的问题已处理，请回到分组列表。")
    engine = _engine(request)

    def load():
        with engine.connect() as conn:
            import sqlalchemy as sa

            rows = []
            for start in range(0, len(group["ids"]), 500):
                query = sa.select(review_items).where(review_items.c.id.in_(group["ids"][start:start + 500]))
                rows += [dict(r._mapping) for r in conn.execute(query)]
            tags = inbox.tags_of(conn, [r["id"] for r in rows])
        rows.sort(key=lambda r: r["created_at"], reverse=True)
        return [inbox.describe(kb, r, tags.get(r["id"], [])) for r in rows]

    members = await _blocking(load)
    return render("review_group.html", request, group=group, members=members, filters=filters, error=error,
                  section="groups", **_choices(kb))


# -- dashboard ---------------------------------------------------------------------------
@bp.get("/dashboard")
@require_role("policy")
async def dashboard_page(request):
    app, kb = request.app, request.app.ctx.kb
    today = today_local()
    error = None
    try:
        end = dt.date.fromisoformat(request.args.get("to") or today.isoformat())
        start = dt.date.fromisoformat(request.args.get("from") or
                                      (end - dt.timedelta(days=DASHBOARD_DAYS_DEFAULT - 1)).isoformat())
        if start > end:
            raise ValueError("start after end")
        if (end - start).days >= dashboard.MAX_DAYS:
            start = end - dt.timedelta(days=dashboard.MAX_DAYS - 1)
            error = f"时段最长 {dashboard.MAX_DAYS} 天，已从 {start.isoformat()} 起显示。"
    except ValueError:
        end, start = today, today - dt.timedelta(days=DASHBOARD_DAYS_DEFAULT - 1)
        error = "日期格式应为 YYYY-MM-DD，且开始不晚于结束；已显示最近 7 天。"
    period = dashboard.Period(start, end)
    engine = _engine(request)
    reviews = await _blocking(dashboard.review_figures, engine, kb, period)
    tracked = await _blocking(dashboard.tracker_figures, app.ctx.tracker, kb, period)
    group_filters = inbox.Filters(date_from=start, date_to=end, kinds=("unanswered", "low_confidence", "out_of_scope"),
                                  statuses=())
    groups = (await _blocking(compute_groups, app, group_filters))[:dashboard.TOP]
    days = period.days
    unanswered = [reviews["unanswered_per_day"].get(d, 0) for d in days]
    questions = [tracked["per_day"].get(d, 0) for d in days] if tracked else None
    total_q = sum(questions) if questions else None
    charts = {
        "daily": Markup(dashboard.daily_chart(days, questions, unanswered, "chart-daily")),
        "topics": Markup(dashboard.bar_chart([(t["label"], t["count"], f"{t['count']}次") for t in tracked["top_topics"]],
                                             "提问最多的主题", "chart-topics")) if tracked else None,
        "groups": Markup(dashboard.bar_chart([(g["representative"], g["count"], f"{g['count']}条") for g in groups],
                                             "未答问题最多的分组", "chart-groups")),
        "unhelpful": Markup(dashboard.bar_chart(
            [(r["label"], r["share"], f"{r['share']:.0%}（{r['unhelpful']}/{r['total']}）")
             for r in reviews["unhelpful_share"]], "各主题“没帮助”占比", "chart-unhelpful", percent=True)),
        "departments": Markup(dashboard.bar_chart(
            [(d, n, f"{n}条") for d, n in reviews["gaps_by_department"].most_common(dashboard.TOP)],
            "各部门待改进条目", "chart-departments")),
    }
    summary = {"questions": total_q, "unanswered": sum(unanswered),
               "rate": (sum(unanswered) / total_q) if total_q else None,
               "gaps": sum(n for k, n in reviews["kinds"].items() if k in GAP_KINDS),
               "unhelpful": reviews["kinds"].get("unhelpful", 0), "helpful": reviews["kinds"].get("helpful", 0)}
    return render("review_dashboard.html", request, period=period, charts=charts, summary=summary, groups=groups,
                  reviews=reviews, tracked=tracked, days=days, questions=questions, unanswered=unanswered,
                  error=error, section="dashboard")


# -- export ------------------------------------------------------------------------------
def _export_candidates(app) -> list[export.Candidate]:
    kb, store = app.ctx.kb, app.ctx.review
    store._ensure_schema()
    f = inbox.Filters(kinds=GAP_KINDS, statuses=("accepted",), sort="old")
    with store.engine.connect() as conn:
        rows = list(inbox.matching_rows(conn, kb, f, columns=[review_items.c.id, review_items.c.question,
                                                             review_items.c.assigned_intent]))
    return export.candidates(rows, export.checker_for())


@bp.get("/export")
@require_role("policy")
async def export_page(request):
    kb = request.app.ctx.kb
    found = await _blocking(_export_candidates, request.app)
    ok = [c for c in found if not c.problems]
    conflicts = [c for c in found if c.problems]
    return render("review_export.html", request, ok=ok, conflicts=conflicts, file_name=export.EXPORT_FILE,
                  labels={c.intent: intent_label(kb, c.intent) for c in found}, section="export")


@bp.post("/export/nlu.yml")
@require_role("policy")
async def export_yaml(request):
    found = await _blocking(_export_candidates, request.app)
    text = export.to_yaml(found)
    passed = [c for c in found if not c.problems]
    await _blocking(_audit, request, "review_export_nlu", f"examples:{len(passed)}",
                    {"ids": sorted(i for c in passed for i in c.item_ids)[:200], "held_back": len(found) - len(passed)})
    return raw(text.encode("utf-8"), content_type="application/x-yaml; charset=utf-8",
               headers={"content-disposition": f'attachment; filename="{export.EXPORT_FILE}"'})


@bp.post("/api/export/validate")
@require_role("policy")
async def export_validate(request):
    found = await _blocking(_export_candidates, request.app)
    result = await _blocking(export.validate, export.to_yaml(found))
    await _blocking(_audit, request, "review_export_check", None, {"ok": result["ok"]})
    return json_response({**result, "examples": sum(1 for c in found if not c.problems)}, ensure_ascii=False)


# -- new topics -----------------------------------------------------------------------------
@bp.get("/topics")
@require_role("policy")
async def topics_page(request):
    kb = request.app.ctx.kb
    found = await _blocking(work.topics, _engine(request), kb)
    return render("review_topics.html", request, topics=found, section="topics")


@bp.on_response
async def review_headers(request, response):
    """Review pages are never cached, framed or sent with a referrer."""
    set_staff_headers(response)

