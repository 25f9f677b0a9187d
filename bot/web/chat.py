"""Chat proxy and readiness: the widget talks to this app only (one origin).

POST /api/session issues a signed conversation id; the widget sends it back in
the X-Conversation-Id header (never in a URL), and /api/chat and /api/history
accept only ids this server issued. Rasa knows the conversation by the id's
value part.

POST /api/chat forwards a citizen's message to Rasa's REST channel after
checking it (JSON from this site or a listed host site, length, rate, id) and
masking personal numbers. When Rasa cannot be reached or does not answer in
time the answer is 503 with "retry": true, and the widget keeps the message and
sends it again; it is never answered as if it had been delivered. The widget
names each message (`message_id`, the same on every resend) and the id goes on
to Rasa, which answers a message it already has from the conversation instead
of handling and storing it twice.
GET /api/history returns the conversation (for reloads), never cached.
GET /ready reports the web app, Rasa and the action server.
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
from urllib.parse import urlsplit

import aiohttp
from sanic import Blueprint
from sanic.response import json as json_response

from ..render import busy_apology
from ..text import is_message_id, mask_personal_data
from . import ApiError
from .api import clean_text, json_body, require_json
from .conversations import HEADER as CONVERSATION_HEADER
from .limits import CHAT, limited

log = logging.getLogger(__name__)

bp = Blueprint("chat")

NO_STORE = {"cache-control": "no-store"}
# Control characters other than tab and newline say nothing to the assistant.
_CONTROL = re.compile(r"[\x00-\x08\x0B-\x1F\x7F]")


class RasaUnavailable(Exception):
    """Rasa did not take the message: refused, failed, or no answer in time."""


def apology(settings) -> dict:
    return {"text": busy_apology(settings)}


@bp.before_server_start
async def _open_http(app, _loop):
    app.ctx.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=app.ctx.settings.rasa_timeout_s))


@bp.after_server_stop
async def _close_http(app, _loop):
    await app.ctx.http.close()


def check_origin(request) -> None:
    """A browser request must come from this site or a listed host site (EMBED_ORIGINS).

    Browsers send Origin with every POST; clients without one (curl, servers)
    are not a cross-site risk and pass.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return
    origin = origin.strip().lower()
    if origin in request.app.ctx.embed_origins:
        return
    parts = urlsplit(origin) if origin != "null" else None
    host = (request.host or "").lower()
    if parts and parts.scheme in ("http", "https") and host and parts.netloc == host:
        return
    raise ApiError(403, "origin", "请在本站页面上使用智能助手", "requests from other sites are not accepted")


def conversation_of(request) -> str:
    """Rasa's sender id for the request's conversation id, which this server must have issued."""
    token = request.headers.get(CONVERSATION_HEADER)
    if not token:
        raise ApiError(400, "conversation", "缺少会话编号，请刷新页面后重试",
                       f"missing {CONVERSATION_HEADER} header (get one from POST /api/session)")
    sender = request.app.ctx.conversations.verify(token)
    if sender is None:
        raise ApiError(403, "conversation", "会话编号无效或已过期，请刷新页面后重试",
                       "conversation id was not issued by this server")
    return sender


@bp.post("/api/session")
@limited("session")
async def new_conversation(request):
    check_origin(request)
    return json_response({"conversation_id": request.app.ctx.conversations.issue(), "header": CONVERSATION_HEADER},
                         status=201, headers=NO_STORE)


@bp.post("/api/chat")
@limited(CHAT, "您发送得太快了，请稍等一会儿再发")
async def chat(request):
    settings = request.app.ctx.settings
    check_origin(request)
    require_json(request)
    sender = conversation_of(request)
    body = json_body(request)
    unknown_keys = set(body) - {"message", "message_id"}
    if unknown_keys:
        key = sorted(unknown_keys)[0]
        raise ApiError(400, key, f"未知的字段：{key}", f"unknown field '{key}'")
    message = body.get("message")
    if not isinstance(message, str) or not message.strip():
        raise ApiError(400, "message", "请输入您想咨询的问题", "'message' must be a non-empty string")
    message = _CONTROL.sub(" ", message)
    if not message.strip():
        raise ApiError(400, "message", "请输入您想咨询的问题", "'message' has no text")
    if len(message) > settings.max_message_chars:
        raise ApiError(400, "message", f"消息太长了（最多{settings.max_message_chars}个字），请精简后再发送",
                       f"'message' is longer than {settings.max_message_chars} characters")
    payload = {"sender": sender, "message": mask_personal_data(message)}
    message_id = body.get("message_id")
    if message_id is not None:
        if not is_message_id(message_id):
            raise ApiError(400, "message_id", "消息编号无效，请刷新页面后重试",
                           "'message_id' must be 8-64 letters, digits or - _ . :")
        payload["message_id"] = message_id
    try:
        replies = await _send_to_rasa(request.app.ctx.http, settings, payload)
    except RasaUnavailable as exc:
        log.warning("chat: Rasa did not take a message: %s", exc)
        raise ApiError(503, None, "智能助手暂时无法连接，您的消息已保留，稍后会自动重新发送",
                       "the assistant is unavailable; send the message again later", retry=True) from None
    if not replies:  # delivered, but nothing came back: never leave the citizen without an answer
        replies = [apology(settings)]
    return json_response({"messages": merge_custom([_clean(r) for r in replies if isinstance(r, dict)])},
                         ensure_ascii=False, headers=NO_STORE)


async def _send_to_rasa(http, settings, payload: dict) -> list:
    try:
        async with http.post(f"{settings.rasa_url}/webhooks/rest/webhook", json=payload) as resp:
            if resp.status != 200:
                raise RasaUnavailable(f"HTTP {resp.status}")
            replies = await resp.json(content_type=None)
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
        raise RasaUnavailable(type(exc).__name__) from exc
    if not isinstance(replies, list):
        raise RasaUnavailable("the answer is not a list of messages")
    return replies


def _clean(reply: dict) -> dict:
    out = {"text": clean_text(reply["text"]) if isinstance(reply.get("text"), str) else ""}
    if isinstance(reply.get("buttons"), list):
        out["buttons"] = [{"title": b.get("title", ""), "payload": b.get("payload", "")}
                          for b in reply["buttons"] if isinstance(b, dict)]
        if not out["buttons"]:
            del out["buttons"]
    if isinstance(reply.get("custom"), dict):
        out["custom"] = reply["custom"]
    return out


def merge_custom(messages: list[dict]) -> list[dict]:
    """Rasa sends a message's custom data (its clauses) as a separate message:
    put it back on the message it belongs to."""
    out: list[dict] = []
    for msg in messages:
        if not msg.get("text") and not msg.get("buttons") and msg.get("custom") is not None and out:
            out[-1]["custom"] = {**out[-1].get("custom", {}), **msg["custom"]}
        elif msg.get("text") or msg.get("buttons"):
            out.append(msg)
    return out


@bp.get("/api/history")
@limited("history")
async def history(request):
    settings = request.app.ctx.settings
    sender = conversation_of(request)
    url = f"{settings.rasa_url}/conversations/{sender}/tracker"
    params = {"include_events": "AFTER_RESTART"}
    if settings.rasa_token:
        params["token"] = settings.rasa_token
    try:
        async with request.app.ctx.http.get(url, params=params) as resp:
            if resp.status != 200:
                raise RasaUnavailable(f"HTTP {resp.status}")
            tracker = await resp.json(content_type=None)
    except (RasaUnavailable, aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
        log.warning("history: Rasa did not answer: %s", exc)
        raise ApiError(503, None, "暂时无法读取历史对话", "conversation history is unavailable", retry=True) from None
    events = tracker.get("events") if isinstance(tracker, dict) else None
    return json_response({"messages": history_messages(events if isinstance(events, list) else [])},
                         ensure_ascii=False, headers=NO_STORE)


def history_messages(events: list[dict]) -> list[dict]:
    """User and bot messages of a tracker, oldest first, as the widget shows them."""
    out: list[dict] = []
    for e in events:
        if not isinstance(e, dict):
            continue
        text = clean_text(e["text"]) if isinstance(e.get("text"), str) else ""
        if e.get("event") == "user" and text:
            out.append({"from": "user", "text": text, "ts": e.get("timestamp")})
        elif e.get("event") == "bot":
            data = e.get("data") if isinstance(e.get("data"), dict) else {}
            msg = {"from": "bot", "text": text, "ts": e.get("timestamp")}
            if data.get("buttons"):
                msg["buttons"] = data["buttons"]
            if isinstance(data.get("custom"), dict):
                msg["custom"] = data["custom"]
            out.append(msg)
    return [m for m in merge_custom(out)]


async def _probe(http, url: str) -> dict:
    started = time.monotonic()
    try:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
            ok = resp.status == 200
    except (aiohttp.ClientError, asyncio.TimeoutError):
        ok = False
    return {"ok": ok, "ms": round((time.monotonic() - started) * 1000, 1)}


@bp.get("/ready")
async def ready(request):
    settings = request.app.ctx.settings
    rasa, actions = await asyncio.gather(_probe(request.app.ctx.http, f"{settings.rasa_url}/"),
                                         _probe(request.app.ctx.http, f"{settings.action_server_url}/health"))
    report = {"web": {"ok": True}, "rasa": rasa, "action_server": actions}
    all_ok = rasa["ok"] and actions["ok"]
    return json_response({"ready": all_ok, **report}, status=200 if all_ok else 503)
