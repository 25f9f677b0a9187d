"""The chat page, widget script and static files as served."""
import pytest

from bot.web import create_app


@pytest.fixture(scope="module")
def app():
    return create_app({"retention_days": 14})


def test_chat_page_has_a_strict_csp_and_the_notice(app):
    _, resp = app.test_client.get("/")
    assert resp.status == 200
    csp = resp.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "object-src 'none'" in csp
    assert "保存期限为14天" in resp.text
    assert 'role="log"' in resp.text and 'aria-live="polite"' in resp.text
    assert resp.headers["x-content-type-options"] == "nosniff"


def test_page_font_stack_names_phone_fonts(app):
    _, resp = app.test_client.get("/static/chat.css")
    assert resp.status == 200
    for font in ("PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC"):
        assert font in resp.text


def test_chat_script_renders_text_only(app):
    _, resp = app.test_client.get("/static/chat.js")
    assert "innerHTML" not in resp.text and "eval(" not in resp.text
    assert "textContent" in resp.text


@pytest.mark.parametrize("path", ["/static/../bot/config.py", "/static/missing.js", "/static/index.html.bak"])
def test_only_known_static_files_are_served(app, path):
    _, resp = app.test_client.get(path)
    assert resp.status == 404


def test_widget_script_is_embeddable(app):
    _, resp = app.test_client.get("/widget.js")
    assert resp.status == 200
    assert resp.headers["access-control-allow-origin"] == "*"
    assert "iframe" in resp.text


def test_welcome_offers_topic_buttons(app):
    _, resp = app.test_client.get("/api/welcome")
    assert len(resp.json["buttons"]) >= 8
    assert all(not b["payload"].startswith("/") for b in resp.json["buttons"])


def test_clause_index_lists_every_clause(app):
    _, resp = app.test_client.get("/api/clauses")
    ids = [c["id"] for c in resp.json["clauses"]]
    assert len(ids) == 29 and "2.4.1" in ids
