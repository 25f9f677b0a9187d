"""Access to every staff path: anonymous, wrong role, missing CSRF token, lock-out, expired session.

The routes are read from the desk blueprint itself, so a route added later is
covered by the same checks (and must carry a require_role decorator)."""
import datetime as dt
import re
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from bot.auth import (LOCKED_LOGIN, MAX_FAILURES, SESSION_EXPIRED, WRONG_LOGIN, LoginGuard, SessionStore,
                      cookie_secure, safe_next)
from bot.users import ROLES, StaffStore, login_attempts, role_at_least, staff_sessions
from bot.web.desk import bp as desk_bp
from desk_helpers import ACCOUNTS, PASSWORD, login_form, post_login, sign_in, staff_app  # noqa: F401

PUBLIC = {"/login"}
SAMPLE = {"<name:str>": "nobody", "<action:str>": "disable"}   # no such account: nothing changes


def staff_routes():
    routes = []
    for route in desk_bp._future_routes:
        path = route.uri
        if path in PUBLIC:
            continue
        for key, value in SAMPLE.items():
            path = path.replace(key, value)
        for method in sorted(route.methods):
            routes.append(pytest.param(method, path, route.handler, id=f"{method} {path}"))
    return routes


STAFF_ROUTES = staff_routes()
UNSAFE = [p for p in STAFF_ROUTES if p.values[0] == "POST"]


def request(app, method, path, cookies=None, headers=None):
    call = app.test_client.get if method == "GET" else app.test_client.post
    kwargs = {"cookies": cookies or {}, "headers": headers or {}, "allow_redirects": False}
    if method == "POST":
        kwargs["json"] = {}
    _, resp = call(path, **kwargs)
    return resp


def is_api(path):
    return "/api/" in path


def test_every_staff_route_is_guarded():
    assert len(STAFF_ROUTES) >= 9
    for param in STAFF_ROUTES:
        method, path, handler = param.values
        assert getattr(handler, "required_role", None) in ROLES, f"{method} {path} has no require_role"


@pytest.mark.parametrize("method, path, handler", STAFF_ROUTES)
def test_anonymous_gets_login_page_or_401(staff_app, method, path, handler):
    resp = request(staff_app, method, path)
    if is_api(path):
        assert resp.status == 401
        assert resp.json["error"]["message_zh"] == "请先登录。"
    else:
        assert resp.status == 302
        assert resp.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("method, path, handler", STAFF_ROUTES)
def test_role_is_checked(staff_app, method, path, handler, role):
    agent = sign_in(staff_app, role)
    resp = request(staff_app, method, path, cookies=agent.cookies, headers={"x-csrf-token": agent.csrf})
    if role_at_least(role, handler.required_role):
        assert resp.status not in (401, 403), resp.text
    else:
        assert resp.status == 403
        if is_api(path):
            assert resp.json["error"]["status"] == 403
        else:
            assert "没有访问此页面的权限" in resp.text


@pytest.mark.parametrize("method, path, handler", UNSAFE)
@pytest.mark.parametrize("csrf", [None, "", "forged-token"])
def test_state_change_without_the_session_csrf_token_is_refused(staff_app, method, path, handler, csrf):
    agent = sign_in(staff_app, "admin")
    headers = {} if csrf is None else {"x-csrf-token": csrf}
    resp = request(staff_app, method, path, cookies=agent.cookies, headers=headers)
    assert resp.status == 403
    assert "刷新页面后重试" in resp.text
    assert staff_app.ctx.sessions.lookup(agent.token)[0] is not None   # the session itself is untouched


def test_csrf_token_is_accepted_as_a_form_field(staff_app):
    agent = sign_in(staff_app, "staff")
    _, resp = staff_app.test_client.post("/logout", data={"csrf_token": agent.csrf}, cookies=agent.cookies,
                                         allow_redirects=False)
    assert resp.status == 302 and resp.headers["location"] == "/login?bye=1"


def _age_session(app, agent, hours):
    with app.ctx.staff.engine.begin() as conn:
        conn.execute(staff_sessions.update().values(last_seen=dt.datetime.utcnow() - dt.timedelta(hours=hours))
                     .where(staff_sessions.c.user_id == app.ctx.staff.get_user(agent.name)["id"]))


@pytest.mark.parametrize("method, path, handler", STAFF_ROUTES)
def test_expired_session_goes_back_to_login(staff_app, method, path, handler):
    agent = sign_in(staff_app, "admin")
    _age_session(staff_app, agent, staff_app.ctx.settings.session_idle_hours + 0.1)
    resp = request(staff_app, method, path, cookies=agent.cookies, headers={"x-csrf-token": agent.csrf})
    if is_api(path):
        assert resp.status == 401 and resp.json["error"]["message_zh"] == SESSION_EXPIRED
    else:
        assert resp.status == 302 and resp.headers["location"].endswith("&expired=1")
    assert staff_app.ctx.sessions.lookup(agent.token) == (None, False)   # ended, not just refused


def test_a_session_used_within_the_shift_stays(staff_app):
    agent = sign_in(staff_app, "staff")
    _age_session(staff_app, agent, staff_app.ctx.settings.session_idle_hours - 0.5)
    assert agent.get("/desk").status == 200
    assert agent.get("/desk").status == 200   # the first request moved last_seen forward


# -- login, lock-out, logout ------------------------------------------------------------
@pytest.fixture
def fresh_attempts(staff_app):
    with staff_app.ctx.staff.engine.begin() as conn:
        conn.execute(login_attempts.delete())
    yield
    with staff_app.ctx.staff.engine.begin() as conn:
        conn.execute(login_attempts.delete())


def test_login_sets_a_strict_httponly_session_cookie(staff_app, fresh_attempts):
    resp = post_login(staff_app, "sam", PASSWORD, next_path="/desk?from=login")
    assert resp.status == 302 and resp.headers["location"] == "/desk?from=login"
    cookie = next(c for c in resp.headers.get_list("set-cookie") if c.startswith("desk_session="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie   # plain HTTP in the test; see test_secure_cookie_over_https
    token = re.match(r"desk_session=([^;]+)", cookie).group(1)
    _, desk = staff_app.test_client.get("/desk", cookies={"desk_session": token})
    assert desk.status == 200 and "sam（坐席）" in desk.text
    assert "frame-ancestors 'none'" in desk.headers["content-security-policy"]
    assert desk.headers["cache-control"] == "no-store"


def test_secure_cookie_over_https():
    def req(scheme, mode):
        return SimpleNamespace(scheme=scheme, app=SimpleNamespace(ctx=SimpleNamespace(
            settings=SimpleNamespace(session_cookie_secure=mode))))
    assert cookie_secure(req("https", "auto")) and not cookie_secure(req("http", "auto"))
    assert cookie_secure(req("http", "always")) and not cookie_secure(req("https", "never"))


def test_login_form_without_its_csrf_token_is_refused(staff_app, fresh_attempts):
    resp = post_login(staff_app, "sam", PASSWORD, csrf="")
    assert resp.status == 403 and "desk_session=" not in str(resp.headers.get_list("set-cookie"))


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil", "/login?next=/desk"])
def test_login_never_sends_anyone_off_site(staff_app, fresh_attempts, target):
    resp = post_login(staff_app, "sam", PASSWORD, next_path=target)
    assert resp.headers["location"] == "/desk"


def test_wrong_password_and_unknown_account_read_the_same(staff_app, fresh_attempts):
    wrong = post_login(staff_app, "sam", "not the password")
    unknown = post_login(staff_app, "nobody", "not the password")
    assert wrong.status == unknown.status == 401
    assert WRONG_LOGIN in wrong.text and WRONG_LOGIN in unknown.text


def test_lock_out_after_five_failures_even_with_the_right_password(staff_app, fresh_attempts):
    for _ in range(MAX_FAILURES):
        assert post_login(staff_app, "sam", "not the password").status == 401
    locked = post_login(staff_app, "sam", PASSWORD)
    assert locked.status == 429 and LOCKED_LOGIN in locked.text
    assert "desk_session=" not in str(locked.headers.get_list("set-cookie"))
    actions = [e["action"] for e in staff_app.ctx.staff.audit_entries(limit=6)]
    assert actions == ["login_locked"] + ["login_failed"] * MAX_FAILURES


def test_lock_out_of_an_unknown_account_reads_like_any_other(staff_app, fresh_attempts):
    for _ in range(MAX_FAILURES):
        post_login(staff_app, "ghost", "not the password")
    locked = post_login(staff_app, "ghost", "not the password")
    assert locked.status == 429 and LOCKED_LOGIN in locked.text


def test_logout_ends_the_session(staff_app, fresh_attempts):
    agent = sign_in(staff_app, "staff")
    resp = agent.post("/logout")
    assert resp.status == 302 and resp.headers["location"] == "/login?bye=1"
    assert any(c.startswith("desk_session=;") or c.startswith('desk_session="";')
               for c in resp.headers.get_list("set-cookie"))
    assert agent.get("/desk").status == 302
    assert staff_app.ctx.staff.audit_entries(limit=1)[0]["action"] == "logout"


def test_disabled_account_loses_its_live_session(staff_app):
    agent = sign_in(staff_app, "policy")
    staff_app.ctx.staff.set_disabled("pat", True)
    try:
        assert agent.get("/desk/api/search?q=产假").status == 401
    finally:
        staff_app.ctx.staff.set_disabled("pat", False)


# -- the guards on their own, with a clock we move ------------------------------------------
class Clock:
    def __init__(self):
        self.now = dt.datetime(2025, 1, 6, 9, 0, 0)

    def __call__(self):
        return self.now


@pytest.fixture
def guard_parts(tmp_path):
    store = StaffStore(f"sqlite:///{tmp_path / 'g.db'}")
    clock = Clock()
    return store, clock, LoginGuard(store, now=clock)


def test_lock_counts_per_account_and_per_client(guard_parts):
    _, clock, guard = guard_parts
    for i in range(MAX_FAILURES - 1):
        guard.record("sam", "10.0.0.1", ok=False)
    assert not guard.locked("sam", "10.0.0.2")
    guard.record("sam", "10.0.0.3", ok=False)
    assert guard.locked("sam", "10.0.0.9")          # per account, from any client
    assert not guard.locked("pat", "10.0.0.9")
    for name in ("a1", "a2", "a3", "a4", "a5"):     # one client guessing at five names
        guard.record(name, "10.0.0.7", ok=False)
    assert guard.locked("pat", "10.0.0.7")
    clock.now += dt.timedelta(minutes=15, seconds=1)
    assert not guard.locked("sam", "10.0.0.9") and not guard.locked("pat", "10.0.0.7")


def test_success_resets_the_account_count_but_not_the_client_count(guard_parts):
    _, clock, guard = guard_parts
    for _ in range(MAX_FAILURES - 1):
        guard.record("sam", "10.0.0.1", ok=False)
    clock.now += dt.timedelta(seconds=1)
    guard.record("sam", "10.0.0.1", ok=True)
    clock.now += dt.timedelta(seconds=1)
    guard.record("sam", "10.0.0.2", ok=False)
    assert not guard.locked("sam", "10.0.0.2")
    guard.record("other", "10.0.0.1", ok=False)
    assert guard.locked("anyone", "10.0.0.1")


def test_session_idle_expiry_and_touch(guard_parts):
    store, clock, _ = guard_parts
    user = store.add_user("sam", "staff", PASSWORD)
    sessions = SessionStore(store, dt.timedelta(hours=8), now=clock)
    token, csrf = sessions.create(user, "10.0.0.1")
    clock.now += dt.timedelta(hours=7, minutes=59)
    session, expired = sessions.lookup(token)
    assert session.name == "sam" and session.csrf_token == csrf and not expired
    clock.now += dt.timedelta(hours=7, minutes=59)   # still within 8 h of the last request
    assert sessions.lookup(token)[0] is not None
    clock.now += dt.timedelta(hours=8, seconds=1)
    assert sessions.lookup(token) == (None, True)
    assert sessions.lookup(token) == (None, False)   # gone from the table
    assert sessions.lookup("made-up") == (None, False)


def test_the_database_keeps_only_a_hash_of_the_session_token(guard_parts):
    store, clock, _ = guard_parts
    user = store.add_user("sam", "staff", PASSWORD)
    token, _ = SessionStore(store, dt.timedelta(hours=8), now=clock).create(user, None)
    with store.engine.connect() as conn:
        stored = conn.execute(sa.select(staff_sessions.c.token_hash)).scalar()
    assert stored != token and len(stored) == 64


@pytest.mark.parametrize("target, expected", [
    ("/desk?q=1", "/desk?q=1"), ("/admin/accounts", "/admin/accounts"), (None, "/desk"), ("", "/desk"),
    ("//evil.example", "/desk"), ("https://evil.example", "/desk"), ("/\\evil.example", "/desk"),
    ("/desk\r\nSet-Cookie: x=1", "/desk"),
])
def test_safe_next(target, expected):
    assert safe_next(target) == expected


def test_every_account_role_is_listed():
    assert set(ACCOUNTS) == set(ROLES)
