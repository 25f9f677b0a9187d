"""The project's Sanic web app: JSON API now; widget, desk and review pages extend it."""
from __future__ import annotations

import itertools
from typing import Any

from sanic import Sanic
from sanic.exceptions import SanicException
from sanic.response import json as json_response

from ..config import Settings, load_settings
from ..knowledge import get_knowledge, load_knowledge
from ..search import SearchIndex

_app_numbers = itertools.count(1)


class ApiError(SanicException):
    """A 4xx with a Chinese and an English message naming the field."""

    def __init__(self, status: int, field: str, message_zh: str, message_en: str):
        super().__init__(message_en, status_code=status)
        self.field, self.message_zh, self.message_en = field, message_zh, message_en


_STATUS_ZH = {400: "请求有误", 404: "未找到", 405: "不支持该请求方法", 413: "请求内容过大", 429: "请求过于频繁，请稍后再试",
              500: "服务器内部错误", 503: "服务暂不可用"}


def error_body(status: int, field: str | None, zh: str, en: str) -> dict[str, Any]:
    return {"error": {"status": status, "field": field, "message_zh": zh, "message_en": en}}


def create_app(config: dict[str, Any] | None = None) -> Sanic:
    """Build the app. `config` overrides settings (used by tests)."""
    settings = load_settings()
    if config:
        settings = Settings(**{**settings.__dict__, **config})
    app = Sanic(f"ordos_fertility_{next(_app_numbers)}")
    app.config.REQUEST_MAX_SIZE = settings.max_body_bytes
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.ctx.settings = settings
    app.ctx.kb = (load_knowledge(settings.knowledge_dir) if config and "knowledge_dir" in config
                  else get_knowledge(str(settings.knowledge_dir)))
    app.ctx.search = SearchIndex(app.ctx.kb)

    from .api import bp as api_bp
    from .chat import RateLimiter
    from .chat import bp as chat_bp

    app.ctx.rate_limiter = RateLimiter(settings.rate_limit_per_minute, 60.0)
    app.blueprint(api_bp)
    app.blueprint(chat_bp)
    from .pages import bp as pages_bp

    app.blueprint(pages_bp)
    from .desk import setup as setup_desk   # staff login, the hotline desk, accounts

    setup_desk(app)

    @app.after_server_start
    async def _start_retention(app, _loop):
        import asyncio

        from ..retention import purge

        async def every_six_hours():
            while True:
                await asyncio.get_running_loop().run_in_executor(None, purge, settings)
                await asyncio.sleep(6 * 3600)

        app.ctx.retention_task = asyncio.get_running_loop().create_task(every_six_hours())

    @app.before_server_stop
    async def _stop_retention(app, _loop):
        task = getattr(app.ctx, "retention_task", None)
        if task:
            task.cancel()

    @app.exception(ApiError)
    async def _api_error(request, exc: ApiError):
        return json_response(error_body(exc.status_code, exc.field, exc.message_zh, exc.message_en),
                             status=exc.status_code)

    @app.exception(SanicException)
    async def _sanic_error(request, exc: SanicException):
        status = getattr(exc, "status_code", 500) or 500
        zh = _STATUS_ZH.get(status, "请求失败")
        if status == 413:
            zh = f"请求内容过大（上限 {settings.max_body_bytes // 1024} KB）"
        return json_response(error_body(status, None, zh, str(exc) or zh), status=status)

    @app.exception(Exception)
    async def _unexpected(request, exc: Exception):
        app.logger.exception("unhandled error on %s", request.path)
        return json_response(error_body(500, None, "服务器内部错误，请稍后再试", "internal server error"), status=500)

    return app
