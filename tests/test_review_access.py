"""Every review path refuses anonymous clients, the `staff` role and state changes without
the session's CSRF token; the `policy` role (and admin) get in."""
import pytest

from desk_helpers import sign_in
from review_helpers import review_app

GET_PATHS = ["/review", "/review/items/1", "/review/groups", "/review/groups/1", "/review/dashboard",
             "/review/export", "/review/export.csv", "/review/topics"]
POST_PATHS = ["/review/api/items", "/review/api/groups/recheck", "/review/api/export/validate",
              "/review/export/nlu.yml"]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    app = review_app(tmp_path_factory.mktemp("review-access"))
    app.ctx.review.record("unanswered", "someone", "生育津贴怎么领")
    return app


def test_the_lists_above_are_every_review_route(app):
    routes = set()
    for route in app.router.routes:
        path = "/" + route.path.strip("/")
        if path.startswith("/review"):
            for method in route.methods:
                routes.add((method, path.replace("<item_id:int>", "1").replace("<key:int>", "1")))
    assert routes == {("GET", p) for p in GET_PATHS} | {("POST", p) for p in POST_PATHS}


@pytest.mark.parametrize("path", GET_PATHS)
def test_anonymous_get_is_sent_to_the_login(app, path):
    _, resp = app.test_client.get(path, allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize("path", POST_PATHS)
def test_anonymous_post_is_refused(app, path):
    _, resp = app.test_client.post(path, json={"ids": [1], "action": "status", "value": "done"},
                                   allow_redirects=False)
    if "/api/" in path:
        assert resp.status == 401 and resp.json["error"]["status"] == 401
    else:
        assert resp.status == 302 and resp.headers["location"].startswith("/login?next=")
    assert app.ctx.review.items()[0]["status"] == "new"


@pytest.mark.parametrize("path", GET_PATHS)
def test_staff_role_may_not_read(app, path):
    resp = sign_in(app, "staff").get(path)
    assert resp.status == 403
    assert "生育津贴" not in resp.text


@pytest.mark.parametrize("path", POST_PATHS)
def test_staff_role_may_not_change(app, path):
    resp = sign_in(app, "staff").post(path, json={"ids": [1], "action": "status", "value": "done"})
    assert resp.status == 403
    assert app.ctx.review.items()[0]["status"] == "new"


@pytest.mark.parametrize("path", POST_PATHS)
def test_policy_without_csrf_is_refused(app, path):
    resp = sign_in(app, "policy").post(path, json={"ids": [1], "action": "status", "value": "done"}, csrf=False)
    assert resp.status == 403
    assert app.ctx.review.items()[0]["status"] == "new"


@pytest.mark.parametrize("path", POST_PATHS)
def test_policy_with_a_wrong_csrf_is_refused(app, path):
    agent = sign_in(app, "policy")
    agent.csrf = "not-the-token"
    assert agent.post(path, json={"ids": [1], "action": "status", "value": "done"}).status == 403


@pytest.mark.parametrize("role", ["policy", "admin"])
@pytest.mark.parametrize("path", [p for p in GET_PATHS if p != "/review/groups/1"])
def test_policy_and_admin_get_in(app, role, path):
    resp = sign_in(app, role).get(path)
    assert resp.status == 200, resp.text[:300]


def test_review_pages_are_not_cached_or_framed(app):
    resp = sign_in(app, "policy").get("/review")
    assert resp.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in resp.headers["content-security-policy"]
    assert "script-src 'self'" in resp.headers["content-security-policy"]
