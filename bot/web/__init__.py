"""The project's Sanic web app: JSON API now; widget, desk and review pages extend it.

App-wide here: security headers on every response (pages, APIs, errors), and
every error as a JSON body; an unexpected one is logged and answered with 500.
"""
from __future__ import annotations

import itertools
import logging
import math
from typing import Any

from sanic import Sanic
from sanic.exceptions import SanicException
from sanic.response import json as json_response

from ..config import Settings, SettingsError, load_settings
from ..knowledge import get_knowledge, load_knowledge
from ..search import get_index

log = logging.getLogger(__name__)

_app_numbers = itertools.count(1)

__all__ = ["ApiError", "SettingsError", "create_app", "error_body"]


class ApiError(SanicException):
    """An error answer with a Chinese and an English message naming the field.

    `retry=True` (or a `retry_after` in seconds) tells the client the same
    request may succeed later, so it keeps what it was sending.
    """

    def __init__(self, status: int, field: str | None, message_zh: str, message_en: str, *,
                 retry: bool = False, retry_after: float | None = None):
        super().__init__(message_en, status_code=status)
        self.field, self.message_zh, self.message_en = field, message_zh, message_en
        self.retry = retry or retry_after is not None
        self.retry_after = retry_after


_STATUS_ZH = {400: "请求有误", 403: "拒绝访问", 404: "未找到", 405: "不支持该请求方法", 408: "请求超时",
              413: "请求内容过大", 415: "请求格式不受支持", 429: "请求过于频繁，请稍后再试",
              500: "服务器内部错误", 503: "服务暂不可用"}


def error_body(status: int, field: str | None, zh: str, en: str, retry: bool | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": {"status": status, "field": field, "message_zh": zh, "message_en": en}}
    if retry is not None:
        body["retry"] = retry
    return body


def page_csp(embed_origins: tuple[str, ...]) -> str:
    """CSP of the chat page: only its own files; framed by itself and the listed host sites."""
    ancestors = " ".join(("'self'", *embed_origins))
    return ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            f"font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors {ancestors}")


# Data (JSON, scripts) is never a document to render or frame.
DATA_CSP = "default-src 'none'; frame-ancestors 'none'"


def create_app(config: dict[str, Any] | None = None) -> Sanic:
    """Build the app. `config` overrides settings (used by tests)."""
    settings = load_settings()
    if config:
        settings = Settings(**{**settings.__dict__, **config})
    app = Sanic(f"ordos_fertility_{next(_app_numbers)}")
    app.config.REQUEST_MAX_SIZE = settings.max_body_bytes
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.ctx.settings = settings
    # Bad settings stop the start here, with a message naming the setting.
    app.ctx.embed_origins = settings.embed_origin_list()
    app.ctx.trusted_proxies = settings.trusted_proxy_networks()
    app.ctx.kb = (load_knowledge(settings.knowledge_dir) if config and "knowledge_dir" in config
                  else get_knowledge(str(settings.knowledge_dir)))
    app.ctx.search = get_index(app.ctx.kb)  # built once per knowledge base (about a second)

    from .api import bp as api_bp
    from .chat import bp as chat_bp
    from .conversations import ConversationIds
    from .limits import make_limiters

    app.ctx.conversations = ConversationIds(settings.secret())
    app.ctx.limiters = make_limiters(settings)
    app.blueprint(api_bp)
    app.blueprint(chat_bp)
    from .pages import bp as pages_bp

    app.blueprint(pages_bp)
    from .desk import setup as setup_desk   # staff login, the hotline desk, accounts

    setup_desk(app)
    from .review import setup as setup_review   # the policy team's review workspace at /review

    setup_review(app)

    @app.after_server_start
    async def _start_retention(app, _loop):
        import asyncio

        from ..retention import purge
        from ..review import get_review_store
        from .background import alone

        def purge_alone():   # every worker (and replica, on PostgreSQL) schedules it; one at a time does it
            with alone(settings.var_dir, "retention", get_review_store(settings).engine) as mine:
                if mine:
                    purge(settings)

        async def every_six_hours():
            while True:
                try:
                    await asyncio.get_running_loop().run_in_executor(None, purge_alone)
                except Exception:  # noqa: BLE001 - one failed purge must not end the schedule
                    log.exception("retention purge failed; next try in 6 hours")
                await asyncio.sleep(6 * 3600)

        app.ctx.retention_task = asyncio.get_running_loop().create_task(every_six_hours())

    @app.before_server_stop
    async def _stop_retention(app, _loop):
        task = getattr(app.ctx, "retention_task", None)
        if task:
            task.cancel()

    @app.on_response
    async def _security_headers(request, response):
        headers = response.headers
        headers.setdefault("x-content-type-options", "nosniff")
        headers.setdefault("referrer-policy", "no-referrer")
        if "content-security-policy" not in headers:
            html = (response.content_type or "").startswith("text/html")
            headers["content-security-policy"] = page_csp(app.ctx.embed_origins) if html else DATA_CSP

    @app.exception(ApiError)
    async def _api_error(request, exc: ApiError):
        headers = {}
        if exc.retry_after is not None:
            headers["retry-after"] = str(max(1, math.ceil(exc.retry_after)))
        return json_response(error_body(exc.status_code, exc.field, exc.message_zh, exc.message_en,
                                        retry=True if exc.retry else None),
                             status=exc.status_code, headers=headers)

    @app.exception(SanicException)
    async def _sanic_error(request, exc: SanicException):
        status = getattr(exc, "status_code", 500) or 500
        if status >= 500:
            log.error("error %s on %s: %s", status, _where(request), exc)
        zh = _STATUS_ZH.get(status, "请求失败")
        if status == 413:
            zh = (f"请求内容过大（上限 {settings.max_body_bytes // 1024} KB）" if "header" not in str(exc).lower()
                  else "请求头或网址过长")
        return json_response(error_body(status, None, zh, str(exc) or zh), status=status)

    @app.exception(Exception)
    async def _unexpected(request, exc: Exception):
        log.error("unhandled error on %s", _where(request), exc_info=exc)
        return json_response(error_body(500, None, "服务器内部错误，请稍后再试", "internal server error"),
                             status=500)

    return app


def _where(request) -> str:
    try:
        return f"{request.method} {request.path}"
    except Exception:  # noqa: BLE001 - an error before the request was parsed
        return "(no request)"
