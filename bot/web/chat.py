"""Chat proxy and readiness: the widget talks to this app only (one origin).

POST /api/chat forwards a citizen's message to Rasa's REST channel after
checking it (length, rate, sender id) and masking personal numbers; if Rasa
is down or slow the citizen still gets an apology and the hotline.
GET /api/history returns the conversation for a sender (for reloads).
GET /ready reports the web app, Rasa and the action server.
"""
from __future__ import annotations

import asyncio
import re
import time
from collections import defaultdict, deque

import aiohttp
from sanic import Blueprint
from sanic.response import json as json_response

from ..render import busy_apology
from ..text import mask_personal_data
from . import ApiError
from .api import _json_body

bp = Blueprint("chat")

SENDER_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
RASA_TIMEOUT_S = 5.0


class RateLimiter:
    """Sliding window per client key: at most `limit` requests per `window_s`."""

    def __init__(self, limit: int, window_s: float):
        self.limit, self.window_s = limit, window_s
        self._hits: dict[str, deque] = defaultdict(deque)

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        hits = self._hits[key]
        while hits and now - hits[0] > self.window_s:
            hits.popleft()
        if len(hits) >= self.limit:
            return False
        hits.append(now)
        if len(self._hits) > 10_000:  # forget idle clients
            for k in [k for k, v in self._hits.items() if not v or now - v[-1] > self.window_s][:5000]:
                del self._hits[k]
        return True


def apology(settings) -> dict:
    return {"text": busy_apology(settings)}


@bp.before_server_start
async def _open_http(app, _loop):
    app.ctx.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=RASA_TIMEOUT_S))


@bp.after_server_stop
async def _close_http(app, _loop):
    await app.ctx.http.close()


def _client_key(request, sender: str) -> str:
    return f"{request.ip}|{sender}"


@bp.post("/api/chat")
async def chat(request):
    settings = request.app.ctx.settings
    body = _json_body(request)
    sender, message = body.get("sender"), body.get("message")
    if not isinstance(sender, str) or not SENDER_ID.match(sender):
        raise ApiError(400, "sender", "会话编号无效，请刷新页面后重试", "'sender' must be 16-64 letters, digits, - or _")
    if not isinstance(message, str) or not message.strip():
        raise ApiError(400, "message", "请输入您想咨询的问题", "'message' must be a non-empty string")
    if len(message) > settings.max_message_chars:
        raise ApiError(400, "message", f"消息太长了（最多{settings.max_message_chars}个字），请精简后再发送",
                       f"'message' is longer than {settings.max_message_chars} characters")
    if not request.app.ctx.rate_limiter.allow(_client_key(request, sender)):
        raise ApiError(429, "message", "您发送得太快了，请稍等一会儿再发", "too many messages, slow down")
    payload = {"sender": sender, "message": mask_personal_data(message)}
    try:
        async with request.app.ctx.http.post(f"{settings.rasa_url}/webhooks/rest/webhook", json=payload) as resp:
            replies = await resp.json(content_type=None) if resp.status == 200 else None
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        replies = None
    if not replies:
        replies = [apology(settings)]
    return json_response({"messages": merge_custom([_clean(r) for r in replies])}, ensure_ascii=False)


def _clean(reply: dict) -> dict:
    out = {"text": reply.get("text", "")}
    if reply.get("buttons"):
        out["buttons"] = [{"title": b.get("title", ""), "payload": b.get("payload", "")} for b in reply["buttons"]]
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
async def history(request):
    settings = request.app.ctx.settings
    sender = request.args.get("sender", "")
    if not SENDER_ID.match(sender):
        raise ApiError(400, "sender", "会话编号无效", "'sender' must be 16-64 letters, digits, - or _")
    url = f"{settings.rasa_url}/conversations/{sender}/tracker"
    params = {"include_events": "AFTER_RESTART"}
    if settings.rasa_token:
        params["token"] = settings.rasa_token
    try:
        async with request.app.ctx.http.get(url, params=params) as resp:
            tracker = await resp.json(content_type=None) if resp.status == 200 else {}
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        raise ApiError(503, "sender", "暂时无法读取历史对话", "conversation history is unavailable")
    return json_response({"messages": history_messages(tracker.get("events") or [])}, ensure_ascii=False)


def history_messages(events: list[dict]) -> list[dict]:
    """User and bot messages of a tracker, oldest first, as the widget shows them."""
    out: list[dict] = []
    for e in events:
        if e.get("event") == "user" and e.get("text"):
            out.append({"from": "user", "text": e["text"], "ts": e.get("timestamp")})
        elif e.get("event") == "bot":
            data = e.get("data") or {}
            msg = {"from": "bot", "text": e.get("text") or "", "ts": e.get("timestamp")}
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
