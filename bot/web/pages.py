"""The citizen chat page, the embeddable widget script, and their static files.

Their security headers (CSP with frame-ancestors, nosniff, referrer policy) are
set app-wide in bot.web.create_app.
"""
from __future__ import annotations

from pathlib import Path

from sanic import Blueprint
from sanic.response import html, json as json_response, raw

from ..assistant import menu_reply
from .limits import limited

STATIC = Path(__file__).parent / "static"
bp = Blueprint("pages")

CONTENT_TYPES = {".js": "application/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                 ".html": "text/html; charset=utf-8"}
ASSETS = {p.name: p for p in STATIC.iterdir() if p.suffix in CONTENT_TYPES}


@bp.get("/")
async def index(request):
    settings = request.app.ctx.settings
    page = (STATIC / "index.html").read_text(encoding="utf-8").replace("{{RETENTION_DAYS}}",
                                                                      str(settings.retention_days))
    return html(page)


@bp.get("/static/<name>")
async def static_file(request, name: str):
    path = ASSETS.get(name)
    if path is None:
        from . import ApiError

        raise ApiError(404, "name", "文件不存在", "no such file")
    return raw(path.read_bytes(), content_type=CONTENT_TYPES[path.suffix],
               headers={"cache-control": "no-cache"})


@bp.get("/widget.js")
async def widget(request):
    return raw((STATIC / "widget.js").read_bytes(), content_type=CONTENT_TYPES[".js"],
               headers={"cache-control": "no-cache", "access-control-allow-origin": "*"})


@bp.get("/api/welcome")
@limited("welcome")
async def welcome(request):
    reply = menu_reply(request.app.ctx.kb)
    reply.text = "您好！我是鄂尔多斯市生育支持政策智能助手，" + reply.text.split("，", 1)[1]
    return json_response({"text": reply.text, "buttons": reply.buttons}, ensure_ascii=False)


@bp.get("/api/clauses")
@limited("clauses")
async def clause_index(request):
    kb = request.app.ctx.kb
    return json_response({"clauses": [{"id": c.id, "label": c.label, "title": c.title} for c in kb.clauses.values()]},
                         ensure_ascii=False)
