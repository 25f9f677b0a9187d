"""The hotline desk at /desk, the staff login and the accounts page.

Staff look up answers while a caller talks: the same search as /api/search,
the answer's script to read aloud, its clause and departments, what the
assistant would make of the words, an eligibility check on the same engine,
and the department directory. Searches that find nothing and flags on a card
go to the review store. Every route here carries one `require_role` decorator.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import functools
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sanic import Blueprint
from sanic.response import html, json as json_response, redirect
from sqlalchemy.exc import SQLAlchemyError

from ..auth import (LOCKED_LOGIN, LOGIN_CSRF_COOKIE, SESSION_COOKIE, SESSION_EXPIRED, WRONG_LOGIN, LoginGuard,
                    SessionStore, clear_cookie, csrf_ok, current_session, require_role, safe_next, set_cookie,
                    set_staff_headers, wants_json)
from ..eligibility import UNKNOWN, FactError, evaluate, parse_facts
from ..render import citation
from ..text import mask_personal_data
from ..users import MAX_PASSWORD_CHARS, ROLE_NAMES, ROLES, AccountError, get_staff_store
from . import ApiError, error_body
from .api import MAX_QUERY_CHARS, department_dict, json_body
from .limits import client_ip as _client_ip

TEMPLATES = Path(__file__).parent / "templates"
OFFICIAL_TEXT = "以官方发布的政策原文为准。"
PARSE_TIMEOUT_S = 2.0
PARSE_UNAVAILABLE = "暂不可用：智能助手（Rasa）未启动或未响应，查询和资格核对不受影响。"
FLAGS = {"wrong": "答复有误", "outdated": "已过时", "not_found": "找不到"}
MAX_NOTE_CHARS = 500
NO_RESULT_MEMORY_S = 3600.0
INTENT_LABELS = {"check_eligibility": "资格核对", "inform": "提供信息", "ask_department": "询问部门",
                 "greet": "问候", "goodbye": "告别", "thank": "致谢", "bot_challenge": "问是否机器人",
                 "ask_capabilities": "问能做什么", "human_handoff": "转人工", "restart_conversation": "重新开始",
                 "affirm": "肯定", "deny": "否定", "dont_know": "不知道", "cancel": "取消",
                 "feedback_helpful": "反馈：有帮助", "feedback_unhelpful": "反馈：没帮助",
                 "out_of_scope": "超出范围", "nlu_fallback": "无法理解"}
_EN = {401: "login required", 403: "forbidden", 404: "not found"}

bp = Blueprint("desk")
templates = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]),
                        trim_blocks=True, lstrip_blocks=True)
templates.globals["role_names"] = ROLE_NAMES


def setup(app) -> None:
    """Staff services on app.ctx and the blueprint (called by create_app)."""
    settings = app.ctx.settings
    app.ctx.staff = get_staff_store(settings)
    app.ctx.sessions = SessionStore(app.ctx.staff, dt.timedelta(hours=settings.session_idle_hours))
    app.ctx.login_guard = LoginGuard(app.ctx.staff)
    app.ctx.refuse = refuse
    app.ctx.desk_cards = {aid: answer_card(app.ctx.kb, aid) for aid in app.ctx.kb.answers}
    app.ctx.desk_no_results = {}
    app.blueprint(bp)


def render(template: str, status: int = 200, **context) -> Any:
    return html(templates.get_template(template).render(**context), status=status)


def refuse(request, status: int, message: str):
    """A refusal as the client expects it: a JSON error for APIs, a page otherwise."""
    if wants_json(request):
        return json_response(error_body(status, None, message, _EN.get(status, "refused")), status=status,
                             ensure_ascii=False)
    session, _ = current_session(request)
    return render("refused.html", status=status, message=message, session=session)


def client_ip(request) -> str:
    """The client address, through the app's trusted proxies (the same rule as the rate limits)."""
    return _client_ip(request, getattr(request.app.ctx, "trusted_proxies", ()))[:64] or "unknown"


async def _blocking(func, *args, **kwargs):
    """Database and hashing work off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(func, *args, **kwargs))


# -- cards: everything a card shows, built once per answer ---------------------------
def departments_of(kb, answer) -> dict[str, Any]:
    handling = getattr(answer, "handling", None)
    if handling is not None and (handling.department or handling.leads):
        return {"handler": handling.department, "reason": handling.reason, "lead": list(handling.leads),
                "responsible": [d for d in handling.responsible if d != handling.department]}
    return {"handler": None, "reason": "", "lead": list(kb.lead_of(answer.clauses)),
            "responsible": list(kb.responsible_of(answer.clauses))}


def clause_dict(kb, clause_id: str) -> dict[str, Any]:
    c = kb.clauses[clause_id]
    return {"id": c.id, "label": c.label, "citation": c.citation, "title": c.title, "text": c.text,
            "lead": list(c.lead), "responsible": list(c.responsible)}


def answer_card(kb, answer_id: str) -> dict[str, Any]:
    a = kb.answers[answer_id]
    cite = citation(kb, a.clauses)
    return {"id": a.id, "title": a.title, "script": getattr(a, "script", "") or "", "text": a.text,
            "citation": cite.removeprefix("依据："), "clauses": [clause_dict(kb, c) for c in a.clauses],
            "departments": departments_of(kb, a), "benefit": a.benefit,
            "copy": f"{a.text}\n{cite}\n{OFFICIAL_TEXT}"}


def clause_card(kb, clause_id: str) -> dict[str, Any]:
    c = clause_dict(kb, clause_id)
    return {**c, "departments": {"handler": None, "reason": "", "lead": c["lead"], "responsible": c["responsible"]},
            "copy": f"{c['text']}\n依据：{c['citation']}\n{OFFICIAL_TEXT}"}


def directory(kb) -> list[dict[str, Any]]:
    """Each department with the clauses it leads or shares and the answers on them, and what the filter matches."""
    out = []
    for dept in kb.departments.values():
        entry = department_dict(kb, dept)
        clause_ids = set(dept.leads) | set(dept.responsible_for)
        answers = [a for a in kb.answers.values() if clause_ids & set(a.clauses)]
        entry["answers"] = [a.title for a in answers]
        words = [dept.name, *dept.aliases, *(c["title"] for c in entry["leads"] + entry["responsible_for"]),
                 *(w for a in answers for w in (a.title, *a.keywords))]
        entry["search"] = " ".join(words).lower()
        out.append(entry)
    return out


def checker_data(kb) -> dict[str, Any]:
    """Benefits with their facts in the order the assistant asks them, and each fact's form field."""
    question_for = getattr(kb, "question_for", None)
    benefits, order = [], []
    for b in kb.benefits.values():
        facts, asks = [], {}
        for cond in b.conditions:
            if getattr(cond, "timing", False):
                continue   # a condition on when, never asked
            for name in kb.facts[cond.fact].derived_from or (cond.fact,):
                if name != "today" and name not in facts:
                    facts.append(name)
                    asks[name] = question_for(b.id, name) if question_for else kb.facts[name].ask
        benefits.append({"id": b.id, "name": b.name, "facts": facts, "asks": asks,
                         "citation": kb.clauses[b.clause].citation})
        order += [f for f in facts if f not in order]
    # For "all benefits": the facts most benefits turn on first, so each answer settles the most verdicts.
    need = {f: sum(f in b["facts"] for b in benefits) for f in order}
    order.sort(key=lambda f: -need[f])
    fields = {}
    for name in order:
        f = kb.facts[name]
        fields[name] = {"type": f.type, "label": f.label, "ask": f.ask, "values": dict(f.values),
                        "min": f.min, "max": f.max}
    return {"benefits": benefits, "order": order, "facts": fields}


# -- login and logout ----------------------------------------------------------------
def _login_page(request, next_path: str, message: str = "", status: int = 200, name: str = ""):
    token = secrets.token_urlsafe(24)
    response = render("login.html", status=status, next=next_path, message=message, name=name, login_csrf=token,
                      bye=request.args.get("bye") == "1")
    set_cookie(response, request, LOGIN_CSRF_COOKIE, token, path="/login")
    return response


@bp.get("/login")
async def login_form(request):
    next_path = safe_next(request.args.get("next"))
    session, _ = current_session(request)
    if session is not None:
        return redirect(next_path)
    return _login_page(request, next_path, SESSION_EXPIRED if request.args.get("expired") == "1" else "")


@bp.post("/login")
async def login(request):
    app, form = request.app, request.form
    name = (form.get("name") or "").strip()[:64]
    password = (form.get("password") or "")[:MAX_PASSWORD_CHARS + 1]
    next_path = safe_next(form.get("next"))
    if not csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE, ""), form.get("csrf_token") or ""):
        return _login_page(request, next_path, "页面已过期，请重新输入账号和密码。", status=403, name=name)
    ip = client_ip(request)
    guard, store = app.ctx.login_guard, app.ctx.staff
    account = LoginGuard.account_key(name) or "-"
    if await _blocking(guard.locked, name, ip):
        await _blocking(store.audit, account, "login_locked", ip=ip)
        return _login_page(request, next_path, LOCKED_LOGIN, status=429, name=name)
    user = await _blocking(store.verify, name, password)
    if user is None:
        await _blocking(guard.record, name, ip, False)
        await _blocking(store.audit, account, "login_failed", ip=ip)
        return _login_page(request, next_path, WRONG_LOGIN, status=401, name=name)
    await _blocking(guard.record, name, ip, True)
    token, _ = await _blocking(app.ctx.sessions.create, user, ip)
    await _blocking(store.audit, user["name"], "login", ip=ip)
    response = redirect(next_path)
    set_cookie(response, request, SESSION_COOKIE, token)
    clear_cookie(response, request, LOGIN_CSRF_COOKIE, path="/login")
    return response


@bp.post("/logout")
@require_role("staff")
async def logout(request):
    request.app.ctx.sessions.end(request.cookies.get(SESSION_COOKIE, ""))
    request.app.ctx.staff.audit(request.ctx.staff.name, "logout", ip=client_ip(request))
    response = redirect("/login?bye=1")
    clear_cookie(response, request, SESSION_COOKIE)
    return response


# -- the desk --------------------------------------------------------------------------
@bp.get("/desk")
@require_role("staff")
async def desk(request):
    kb, settings = request.app.ctx.kb, request.app.ctx.settings
    departments = directory(kb)
    return render("desk.html", session=request.ctx.staff, checker=checker_data(kb), departments=departments,
                  hotline=settings.hotline, hotline_name=settings.hotline_name)


def _query(request, name: str = "q") -> str:
    query = request.args.get(name, "")
    if not query.strip():
        raise ApiError(400, name, "请输入要查询的内容", f"query parameter '{name}' is required")
    if len(query) > MAX_QUERY_CHARS:
        raise ApiError(400, name, f"查询内容不能超过 {MAX_QUERY_CHARS} 个字",
                       f"'{name}' is longer than {MAX_QUERY_CHARS} characters")
    return query


def desk_search(app, query: str, limit: int = 8) -> dict[str, Any]:
    """The public search, with each hit carrying its whole card."""
    kb, cards = app.ctx.kb, app.ctx.desk_cards
    found = app.ctx.search.search(query, limit=limit)
    answers = [{**cards[h.id], **h.as_dict()} for h in found["answers"]]
    clauses = [{**clause_card(kb, h.id), **h.as_dict()} for h in found["clauses"]]
    return {"query": query, "answers": answers, "clauses": clauses, "departments": found.get("departments", [])}


@bp.get("/desk/api/search")
@require_role("staff")
async def search(request):
    query = _query(request)
    try:
        limit = int(request.args.get("limit", "8"))
    except ValueError as exc:
        raise ApiError(400, "limit", "limit 应为整数", "'limit' must be an integer") from exc
    if not 1 <= limit <= 20:
        raise ApiError(400, "limit", "limit 应在 1 到 20 之间", "'limit' must be between 1 and 20")
    return json_response(desk_search(request.app, query, limit), ensure_ascii=False)


def _intent(kb, name: str, confidence: float) -> dict[str, Any]:
    answer_id = name.removeprefix("ask_")
    label = kb.answers[answer_id].title if name.startswith("ask_") and answer_id in kb.answers \
        else INTENT_LABELS.get(name, name)
    return {"name": name, "label": label, "confidence": round(float(confidence or 0.0), 3)}


@bp.get("/desk/api/parse")
@require_role("staff")
async def parse(request):
    """What the assistant would make of the text, from Rasa's /model/parse (the token stays here)."""
    settings, kb = request.app.ctx.settings, request.app.ctx.kb
    text = mask_personal_data(_query(request))
    params = {"token": settings.rasa_token} if settings.rasa_token else {}
    http = getattr(request.app.ctx, "http", None)
    try:
        if http is None:
            raise aiohttp.ClientError("no HTTP client")
        async with http.post(f"{settings.rasa_url}/model/parse", params=params, json={"text": text},
                             timeout=aiohttp.ClientTimeout(total=PARSE_TIMEOUT_S)) as resp:
            parsed = await resp.json(content_type=None) if resp.status == 200 else None
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        parsed = None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("intent"), dict):
        return json_response({"available": False, "message": PARSE_UNAVAILABLE}, ensure_ascii=False)
    top = parsed["intent"]
    ranking = [r for r in parsed.get("intent_ranking") or [] if r.get("name") != top.get("name")]
    entities = [{"entity": e.get("entity"), "value": e.get("value")} for e in parsed.get("entities") or []]
    return json_response({"available": True, "intent": _intent(kb, top.get("name", ""), top.get("confidence")),
                          "alternatives": [_intent(kb, r.get("name", ""), r.get("confidence")) for r in ranking[:3]],
                          "entities": entities}, ensure_ascii=False)


@bp.post("/desk/api/eligibility")
@require_role("staff")
async def eligibility(request):
    """The eligibility engine of POST /api/eligibility, with the next question for each unknown verdict."""
    kb = request.app.ctx.kb
    body = json_body(request)
    benefits = body.get("benefits")
    if benefits is not None and (not isinstance(benefits, list) or not all(b in kb.benefits for b in benefits)):
        raise ApiError(400, "benefits", "benefits 应为福利编号列表", "'benefits' must be a list of benefit ids")
    facts = body.get("facts", {})
    if isinstance(facts, dict):   # an empty field in the form is an unknown fact
        facts = {k: v for k, v in facts.items() if v not in (None, "")}
    try:
        results = evaluate(parse_facts(kb, facts), kb=kb, benefits=benefits or None)
    except FactError as exc:
        raise ApiError(400, exc.field, exc.message_zh, exc.message_en) from exc
    question_for = getattr(kb, "question_for", None)
    out = []
    for r in results:
        item = r.as_dict()
        if r.status == UNKNOWN and r.missing:
            fact = r.missing[0]
            item["next_question"] = {"fact": fact, "label": kb.facts[fact].label,
                                     "ask": question_for(r.benefit, fact) if question_for else kb.facts[fact].ask}
        item["citation"] = kb.clauses[kb.benefits[r.benefit].clause].citation
        out.append(item)
    return json_response({"results": out}, ensure_ascii=False)


def _review(app):
    review = getattr(app.ctx, "review", None)
    if review is None:
        from ..review import get_review_store

        review = app.ctx.review = get_review_store(app.ctx.settings)
    return review


def _text_field(body: dict, name: str, limit: int, required: bool = False) -> str:
    value = body.get(name, "")
    if not isinstance(value, str) or len(value) > limit or (required and not value.strip()):
        raise ApiError(400, name, f"{name} 应为不超过 {limit} 个字的文字", f"'{name}' must be a string of at most {limit}")
    return value


@bp.post("/desk/api/flag")
@require_role("staff")
async def flag(request):
    """答复有误 / 已过时 / 找不到 on a card (or on a search), stored for the policy team."""
    kb, staff = request.app.ctx.kb, request.ctx.staff
    body = json_body(request)
    kind = body.get("flag")
    if kind not in FLAGS:
        raise ApiError(400, "flag", "flag 只能是 wrong、outdated 或 not_found", "'flag' must be wrong, outdated or not_found")
    target_kind, target_id = body.get("target_kind"), body.get("target_id")
    if target_kind == "answer" and target_id in kb.answers:
        answer_id = target_id
    elif target_kind == "clause" and target_id in kb.clauses:
        answer_id = f"clause:{target_id}"
    elif target_kind is None and kind == "not_found":
        answer_id = None
    else:
        raise ApiError(400, "target_id", "没有这张卡片", "unknown card")
    query = _text_field(body, "query", MAX_QUERY_CHARS)
    note = _text_field(body, "note", MAX_NOTE_CHARS)
    stored = await _blocking(_review(request.app).record, "desk_flag", f"desk:{staff.name}", query or "（无查询）",
                             answer_id=answer_id, detail={"flag": kind, "label": FLAGS[kind], "by": staff.name,
                                                          "note": note})
    await _blocking(request.app.ctx.staff.audit, staff.name, "flag", answer_id or "search", ip=client_ip(request),
                    detail={"flag": kind, "query": query})
    return json_response({"stored": True, "spooled": not stored, "label": FLAGS[kind]}, ensure_ascii=False)


@bp.post("/desk/api/no-result")
@require_role("staff")
async def no_result(request):
    """A search that found no answer, once per agent and query an hour (the server re-checks it).
    A repeat is told from this process's memory and, across workers and replicas, from the
    review store itself."""
    app, staff = request.app, request.ctx.staff
    body = json_body(request)
    query = _text_field(body, "query", MAX_QUERY_CHARS, required=True)
    if app.ctx.search.search(query, limit=1)["answers"]:
        return json_response({"recorded": False, "reason": "has_results"})
    key, now, seen = (staff.name, app.ctx.search.analyzer.canonical(query)), time.monotonic(), app.ctx.desk_no_results
    if now - seen.get(key, -NO_RESULT_MEMORY_S) < NO_RESULT_MEMORY_S:
        return json_response({"recorded": False, "reason": "already_recorded"})
    if len(seen) > 10_000:
        seen.clear()
    seen[key] = now
    review, sender = _review(app), f"desk:{staff.name}"
    since = dt.datetime.utcnow() - dt.timedelta(seconds=NO_RESULT_MEMORY_S)
    try:
        repeat = await _blocking(review.recorded_since, "desk_no_result", sender, query, since)
    except SQLAlchemyError:    # the database is down: record() spools the item, nothing is lost
        repeat = False
    if repeat:
        return json_response({"recorded": False, "reason": "already_recorded"})
    await _blocking(review.record, "desk_no_result", sender, query, detail={"by": staff.name})
    return json_response({"recorded": True})


# -- accounts (admin) ------------------------------------------------------------------
@bp.get("/admin/accounts")
@require_role("admin")
async def accounts(request):
    store = request.app.ctx.staff
    return render("accounts.html", session=request.ctx.staff, users=await _blocking(store.users),
                  audit=await _blocking(store.audit_entries, 100), roles=ROLES,
                  message=request.args.get("message", "")[:80])


@bp.post("/admin/accounts/<name:str>/<action:str>")
@require_role("admin")
async def account_action(request, name: str, action: str):
    store, staff = request.app.ctx.staff, request.ctx.staff
    if action not in ("disable", "enable"):
        return refuse(request, 404, "没有这个操作。")
    if name == staff.name and action == "disable":
        return redirect("/admin/accounts?message=" + quote("不能停用自己的账号"))
    try:
        await _blocking(store.set_disabled, name, action == "disable")
    except AccountError as exc:
        return refuse(request, 404, str(exc))
    await _blocking(store.audit, staff.name, f"user_{action}", name, ip=client_ip(request))
    return redirect("/admin/accounts")


@bp.on_response
async def staff_headers(request, response):
    """Staff pages are never cached, framed or sent with a referrer."""
    set_staff_headers(response)
