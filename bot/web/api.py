"""JSON API: eligibility, search, departments, clauses; and the request checks every JSON route shares."""
from __future__ import annotations

import json
import re

from sanic import Blueprint
from sanic.response import json as json_response

from ..eligibility import FactError, evaluate, parse_facts
from . import ApiError
from .limits import limited

bp = Blueprint("api", url_prefix="/api")

MAX_QUERY_CHARS = 200
# Our bodies nest three deep ({"facts": {"x": 1}}); far deeper is an attack or a bug.
MAX_JSON_DEPTH = 8

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Text that can be encoded: a lone surrogate (from a JSON escape such as "\\ud800") becomes U+FFFD."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def require_json(request) -> None:
    media_type = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(415, "content-type", "请求格式应为 JSON（Content-Type: application/json）",
                       "Content-Type must be application/json")


def json_body(request) -> dict:
    """The request body as a JSON object: no NaN/Infinity, at most MAX_JSON_DEPTH deep, strings encodable."""
    try:
        body = json.loads(request.body or b"", parse_constant=_no_constant)
    except RecursionError as exc:
        raise _too_deep() from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "body", "请求体不是有效的 JSON", "request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "body", "请求体应为 JSON 对象", "request body must be a JSON object")
    if _depth(body) > MAX_JSON_DEPTH:
        raise _too_deep()
    return _clean(body)


def _no_constant(name: str):
    raise ValueError(f"{name} is not allowed")


def _too_deep() -> ApiError:
    return ApiError(400, "body", "请求体嵌套层级过深", f"request body nests deeper than {MAX_JSON_DEPTH} levels")


def _depth(value) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            break
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def _clean(value):
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


@bp.post("/eligibility")
@limited("eligibility")
async def eligibility(request):
    kb = request.app.ctx.kb
    require_json(request)
    body = json_body(request)
    unknown_keys = set(body) - {"facts", "benefits"}
    if unknown_keys:
        key = sorted(unknown_keys)[0]
        raise ApiError(400, key, f"未知的字段：{key}", f"unknown field '{key}'")
    if "facts" not in body:
        raise ApiError(400, "facts", "缺少 facts 字段", "missing field 'facts'")
    facts = body["facts"]
    if isinstance(facts, dict):
        for name, value in facts.items():
            if isinstance(value, (list, dict)):
                raise ApiError(400, name, f"{name} 应为单个值（文字、数字或 true/false），不能是列表或对象",
                               f"'{name}' must be a single value, not a list or an object")
    benefits = body.get("benefits")
    if benefits is not None:
        if not isinstance(benefits, list) or not all(isinstance(b, str) for b in benefits):
            raise ApiError(400, "benefits", "benefits 应为福利编号列表", "'benefits' must be a list of benefit ids")
        # Each benefit once: the answer can never be longer than the list of benefits.
        benefits = list(dict.fromkeys(benefits))
        for b in benefits:
            if b not in kb.benefits:
                raise ApiError(400, "benefits", f"未知的福利编号：{b}", f"unknown benefit id '{b}'")
    try:
        facts = parse_facts(kb, facts)
        results = evaluate(facts, kb=kb, benefits=benefits)
    except FactError as exc:
        raise ApiError(400, exc.field, exc.message_zh, exc.message_en) from exc
    return json_response({"results": [r.as_dict() for r in results]}, ensure_ascii=False)


@bp.get("/search")
@limited("search")
async def search(request):
    query = clean_text(request.args.get("q", ""))
    if not query.strip():
        raise ApiError(400, "q", "请输入要查询的内容", "query parameter 'q' is required")
    if len(query) > MAX_QUERY_CHARS:
        raise ApiError(400, "q", f"查询内容不能超过 {MAX_QUERY_CHARS} 个字", f"'q' is longer than {MAX_QUERY_CHARS} characters")
    try:
        limit = int(request.args.get("limit", "5"))
    except ValueError as exc:
        raise ApiError(400, "limit", "limit 应为整数", "'limit' must be an integer") from exc
    if not 1 <= limit <= 20:
        raise ApiError(400, "limit", "limit 应在 1 到 20 之间", "'limit' must be between 1 and 20")
    found = request.app.ctx.search.search(query, limit=limit)
    return json_response({"query": query,
                          "answers": [h.as_dict() for h in found["answers"]],
                          "clauses": [h.as_dict() for h in found["clauses"]],
                          "departments": found["departments"]}, ensure_ascii=False)


def department_dict(kb, dept) -> dict:
    return {"id": dept.id, "name": dept.name, "aliases": list(dept.aliases), "contact": dept.contact,
            "leads": [{"clause": c, "citation": kb.clauses[c].citation, "title": kb.clauses[c].title}
                      for c in dept.leads],
            "responsible_for": [{"clause": c, "citation": kb.clauses[c].citation, "title": kb.clauses[c].title}
                                for c in dept.responsible_for]}


@bp.get("/departments")
@limited("departments")
async def departments(request):
    kb = request.app.ctx.kb
    return json_response({"departments": [department_dict(kb, d) for d in kb.departments.values()]},
                         ensure_ascii=False)


@bp.get("/clauses/<clause_id>")
@limited("clauses")
async def clause(request, clause_id: str):
    kb = request.app.ctx.kb
    c = kb.clauses.get(clause_id)
    if c is None:
        clause_id = clean_text(clause_id)
        raise ApiError(404, "clause_id", f"没有编号为 {clause_id[:40]} 的条款", f"no clause '{clause_id[:40]}'")
    return json_response({"id": c.id, "label": c.label, "citation": c.citation, "path": list(c.path),
                          "title": c.title, "text": c.text, "lead": list(c.lead),
                          "responsible": list(c.responsible)}, ensure_ascii=False)
