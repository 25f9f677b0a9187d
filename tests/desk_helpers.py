"""Shared by the staff-page tests: an app on temporary databases, accounts of each role, signed-in clients."""
from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from bot.auth import SESSION_COOKIE

PASSWORD = "correct horse battery"
ACCOUNTS = {"staff": "sam", "policy": "pat", "admin": "ada"}


@dataclass
class Agent:
    """A signed-in client: its cookie and CSRF token."""
    app: object
    name: str
    token: str
    csrf: str

    @property
    def cookies(self) -> dict:
        return {SESSION_COOKIE: self.token}

    def get(self, path, **kwargs):
        _, resp = self.app.test_client.get(path, cookies=self.cookies, allow_redirects=False, **kwargs)
        return resp

    def post(self, path, json=None, csrf=True, **kwargs):
        headers = {"x-csrf-token": self.csrf} if csrf else {}
        _, resp = self.app.test_client.post(path, json=json, cookies=self.cookies, headers=headers,
                                            allow_redirects=False, **kwargs)
        return resp


def make_app(tmp_path, **overrides):
    from bot.web import create_app

    config = {"var_dir": tmp_path, "review_db_url": f"sqlite:///{tmp_path / 'review.db'}",
              "staff_db_url": f"sqlite:///{tmp_path / 'staff.db'}", "rasa_url": "http://127.0.0.1:9", **overrides}
    app = create_app(config)
    for role, name in ACCOUNTS.items():
        app.ctx.staff.add_user(name, role, PASSWORD)
    return app


def sign_in(app, role: str) -> Agent:
    """A session made directly (logging in through the form is tested on its own)."""
    user = app.ctx.staff.get_user(ACCOUNTS[role])
    token, csrf = app.ctx.sessions.create(user, "127.0.0.1")
    return Agent(app, user["name"], token, csrf)


def login_form(app):
    """GET /login: (its CSRF token, the cookie that carries it)."""
    _, resp = app.test_client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', resp.text).group(1)
    return token, resp


def post_login(app, name, password, next_path="/desk", csrf=None):
    token, _ = login_form(app)
    data = {"name": name, "password": password, "csrf_token": token if csrf is None else csrf, "next": next_path}
    _, resp = app.test_client.post("/login", data=data, cookies={"desk_login_csrf": token}, allow_redirects=False)
    return resp


@pytest.fixture(scope="module")
def staff_app(tmp_path_factory):
    return make_app(tmp_path_factory.mktemp("staff"))
