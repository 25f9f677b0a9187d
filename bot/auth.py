"""Staff sign-in for the web app: sessions, CSRF, lock-out, role checks, audit.

Sessions are rows in the staff database (never process memory), so several
web workers share them. The cookie carries a random token; the database keeps
only its SHA-256. Every state-changing request must echo the session's CSRF
token (form field `csrf_token` or header `X-CSRF-Token`). After 5 failed
logins in 15 minutes for one account name (existing or not) or one client,
logins are refused for that name or client with one message that never says
whether the account exists.
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import quote

import sqlalchemy as sa
from sanic.response import redirect

from .users import (ROLES, StaffStore, audit_log, login_attempts, role_at_least, staff_sessions, staff_users,
                    utcnow)

SESSION_COOKIE = "desk_session"
LOGIN_CSRF_COOKIE = "desk_login_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
MAX_FAILURES = 5
FAILURE_WINDOW = dt.timedelta(minutes=15)
TOUCH_EVERY = dt.timedelta(seconds=60)   # last_seen is written at most once a minute per session
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

WRONG_LOGIN = "账号或密码不正确。"
LOCKED_LOGIN = f"登录失败次数过多，请{FAILURE_WINDOW.seconds // 60}分钟后再试。"
SESSION_EXPIRED = "登录已超时，请重新登录。"

__all__ = ["ROLES", "StaffSession", "SessionStore", "LoginGuard", "require_role", "safe_next",
           "audit_log"]


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StaffSession:
    token_hash: str
    user_id: int
    name: str
    role: str
    csrf_token: str
    last_seen: dt.datetime


class SessionStore:
    """Sessions in the staff database, ended after `idle` without a request."""

    def __init__(self, store: StaffStore, idle: dt.timedelta, now: Callable[[], dt.datetime] = utcnow):
        self.store, self.idle, self.now = store, idle, now

    def create(self, user: dict[str, Any], ip: str | None) -> tuple[str, str]:
        """A new session for this account: (cookie token, CSRF token)."""
        self.store.ensure_schema()
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self.now()
        with self.store.engine.begin() as conn:
            conn.execute(staff_sessions.insert().values(token_hash=_hash(token), user_id=user["id"], csrf_token=csrf,
                                                        created_at=now, last_seen=now, ip=(ip or "")[:64] or None))
            # Expired sessions of anyone are swept here rather than by a timer.
            conn.execute(staff_sessions.delete().where(staff_sessions.c.last_seen < now - self.idle))
        return token, csrf

    def lookup(self, token: str | None) -> tuple[StaffSession | None, bool]:
        """(session, expired): the live session for a cookie token, touching it; expired ones are ended."""
        if not token:
            return None, False
        self.store.ensure_schema()
        query = (sa.select(staff_sessions, staff_users.c.name, staff_users.c.role, staff_users.c.disabled)
                 .join(staff_users, staff_users.c.id == staff_sessions.c.user_id)
                 .where(staff_sessions.c.token_hash == _hash(token)))
        with self.store.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None, False
        now = self.now()
        if row.disabled or now - row.last_seen > self.idle:
            self.end(token)
            return None, not row.disabled
        if now - row.last_seen >= TOUCH_EVERY:
            with self.store.engine.begin() as conn:
                conn.execute(staff_sessions.update().where(staff_sessions.c.token_hash == row.token_hash)
                             .values(last_seen=now))
        return StaffSession(row.token_hash, row.user_id, row.name, row.role, row.csrf_token, now), False

    def end(self, token: str) -> None:
        self.store.ensure_schema()
        with self.store.engine.begin() as conn:
            conn.execute(staff_sessions.delete().where(staff_sessions.c.token_hash == _hash(token)))


class LoginGuard:
    """Counts failed logins per account name and per client; refuses a locked one before checking anything."""

    def __init__(self, store: StaffStore, now: Callable[[], dt.datetime] = utcnow):
        self.store, self.now = store, now

    @staticmethod
    def account_key(name: str) -> str:
        return (name or "").strip().lower()[:64]

    def _failures_since_success(self, conn, column, value, since) -> int:
        last_ok = conn.execute(sa.select(sa.func.max(login_attempts.c.at))
                               .where(column == value, login_attempts.c.ok.is_(True))).scalar()
        start = max(since, last_ok) if last_ok else since
        return conn.execute(sa.select(sa.func.count()).select_from(login_attempts)
                            .where(column == value, login_attempts.c.ok.is_(False),
                                   login_attempts.c.at >= start)).scalar() or 0

    def locked(self, name: str, ip: str) -> bool:
        self.store.ensure_schema()
        since = self.now() - FAILURE_WINDOW
        with self.store.engine.connect() as conn:
            by_account = self._failures_since_success(conn, login_attempts.c.account, self.account_key(name), since)
            # Per client, a success does not reset the count: one's own account must not unlock guessing at others.
            by_client = conn.execute(sa.select(sa.func.count()).select_from(login_attempts)
                                     .where(login_attempts.c.ip == ip[:64], login_attempts.c.ok.is_(False),
                                            login_attempts.c.at >= since)).scalar() or 0
        return by_account >= MAX_FAILURES or by_client >= MAX_FAILURES

    def record(self, name: str, ip: str, ok: bool) -> None:
        self.store.ensure_schema()
        now = self.now()
        with self.store.engine.begin() as conn:
            conn.execute(login_attempts.insert().values(at=now, account=self.account_key(name), ip=ip[:64], ok=ok))
            conn.execute(login_attempts.delete().where(login_attempts.c.at < now - dt.timedelta(days=1)))


# -- request helpers -------------------------------------------------------------
def safe_next(target: str | None, default: str = "/desk") -> str:
    """Only a path on this site: never another host (//evil.example) or a scheme."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    if any(ch in target for ch in "\r\n\t") or target.startswith("/login"):
        return default
    return target


def wants_json(request) -> bool:
    return "/api/" in request.path


def cookie_secure(request) -> bool:
    mode = request.app.ctx.settings.session_cookie_secure.lower()
    if mode in ("always", "1", "true", "yes"):
        return True
    if mode in ("never", "0", "false", "no"):
        return False
    return request.scheme in ("https", "wss")


def set_cookie(response, request, name: str, value: str, path: str = "/") -> None:
    response.cookies[name] = value
    cookie = response.cookies[name]
    cookie["path"] = path
    cookie["httponly"] = True
    cookie["samesite"] = "Strict"
    if cookie_secure(request):
        cookie["secure"] = True


def clear_cookie(response, request, name: str, path: str = "/") -> None:
    set_cookie(response, request, name, "", path)
    response.cookies[name]["max-age"] = 0


def submitted_csrf(request) -> str:
    token = request.headers.get(CSRF_HEADER, "")
    if not token and request.content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        token = request.form.get(CSRF_FIELD, "") or ""
    return token


def csrf_ok(expected: str, given: str) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(expected.encode(), given.encode())


def current_session(request) -> tuple[StaffSession | None, bool]:
    if not hasattr(request.ctx, "staff_session"):
        request.ctx.staff_session, request.ctx.session_expired = request.app.ctx.sessions.lookup(
            request.cookies.get(SESSION_COOKIE))
    return request.ctx.staff_session, request.ctx.session_expired


def require_role(role: str):
    """Route decorator: anonymous -> login page (pages) or 401 (APIs); a lower role -> 403;
    a state-changing request without the session's CSRF token -> 403."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")

    def decorator(handler):
        @functools.wraps(handler)
        async def wrapper(request, *args, **kwargs):
            refuse = request.app.ctx.refuse   # the web app renders refusals: a page or a JSON error
            session, expired = current_session(request)
            if session is None:
                if wants_json(request):
                    return refuse(request, 401, SESSION_EXPIRED if expired else "请先登录。")
                target = request.path + (f"?{request.query_string}" if request.query_string else "")
                location = f"/login?next={quote(target, safe='')}" + ("&expired=1" if expired else "")
                return redirect(location)
            if not role_at_least(session.role, role):
                return refuse(request, 403, "您的账号没有访问此页面的权限。")
            if request.method in UNSAFE_METHODS and not csrf_ok(session.csrf_token, submitted_csrf(request)):
                return refuse(request, 403, "页面已过期或请求来源不明，请刷新页面后重试。")
            request.ctx.staff = session
            return await handler(request, *args, **kwargs)

        wrapper.required_role = role
        return wrapper

    return decorator


def set_staff_headers(response) -> None:
    """Staff pages (desk, review, accounts) are never cached, framed or sent with a referrer."""
    response.headers["cache-control"] = "no-store"
    response.headers["x-frame-options"] = "DENY"
    response.headers["x-content-type-options"] = "nosniff"
    response.headers["referrer-policy"] = "no-referrer"
    if response.content_type and response.content_type.startswith("text/html"):
        response.headers["content-security-policy"] = (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
