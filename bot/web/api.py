"""JSON API: eligibility, search, departments, clauses."""
from __future__ import annotations

import json

from sanic import Blueprint
from sanic.response import json as json_response

from ..eligibility import FactError, evaluate, parse_facts
from . import ApiError

bp = Blueprint("api", url_prefix="/api")

MAX_QUERY_CHARS = 200


def _json_body(request) -> dict:
    try:
        body = json.loads(request.body or b"")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "body", "请求体不是有效的 JSON", "request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "body", "请求体应为 JSON 对象", "request body must be a JSON object")
    return body


@bp.post("/eligibility")
async def eligibility(request):
    kb = request.app.ctx.kb
    body = _json_body(request)
    unknown_keys = set(body) - {"facts", "benefits"}
    if unknown_keys:
        key = sorted(unknown_keys)[0]
        raise ApiError(400, key, f"未知的字段：{key}", f"unknown field '{key}'")
    if "facts" not in body:
        raise ApiError(400, "facts", "缺少 facts 字段", "missing field 'facts'")
    benefits = body.get("benefits")
    if benefits is not None:
        if not isinstance(benefits, list) or not all(isinstance(b, str) for b in benefits):
            raise ApiError(400, "benefits", "benefits 应为福利编号列表", "'benefits' must be a list of benefit ids")
        for b in benefits:
            if b not in kb.benefits:
                raise ApiError(400, "benefits", f"未知的福利编号：{b}", f"unknown benefit id '{b}'")
    try:
        facts = parse_facts(kb, body["facts"])
        results = evaluate(facts, kb=kb, benefits=benefits)
    except FactError as exc:
        raise ApiError(400, exc.field, exc.message_zh, exc.message_en) from exc
    return json_response({"results": [r.as_dict() for r in results]}, ensure_ascii=False)


@bp.get("/search")
async def search(request):
    query = request.args.get("q", "")
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
async def departments(request):
    kb = request.app.ctx.kb
    return json_response({"departments": [department_dict(kb, d) for d in kb.departments.values()]},
                         ensure_ascii=False)


@bp.get("/clauses/<clause_id>")
async def clause(request, clause_id: str):
    kb = request.app.ctx.kb
    c = kb.clauses.get(clause_id)
    if c is None:
        raise ApiError(404, "clause_id", f"没有编号为 {clause_id[:40]} 的条款", f"no clause '{clause_id[:40]}'")
    return json_response({"id": c.id, "label": c.label, "citation": c.citation, "path": list(c.path),
                          "title": c.title, "text": c.text, "lead": list(c.lead),
                          "responsible": list(c.responsible)}, ensure_ascii=False)
