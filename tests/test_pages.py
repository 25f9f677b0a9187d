"""The chat page, widget script and static files as served; headers and errors app-wide."""
import logging

import pytest

from bot.config import SettingsError
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


def test_only_this_site_may_frame_the_chat_by_default(app):
    _, resp = app.test_client.get("/")
    csp = resp.headers["content-security-policy"]
    assert csp.endswith("frame-ancestors 'self'")
    assert "*" not in csp


def test_listed_host_sites_may_frame_the_chat():
    app = create_app({"embed_origins": "https://www.ordos.gov.cn, https://WJW.ordos.gov.cn:8443"})
    _, resp = app.test_client.get("/?embed=1")
    assert resp.headers["content-security-policy"].endswith(
        "frame-ancestors 'self' https://www.ordos.gov.cn https://wjw.ordos.gov.cn:8443")


@pytest.mark.parametrize("setting, value", [
    ("embed_origins", "*"),
    ("embed_origins", "https://*.ordos.gov.cn"),
    ("embed_origins", "https://www.ordos.gov.cn/page"),
    ("embed_origins", "www.ordos.gov.cn"),
    ("embed_origins", "javascript:alert(1)"),
    ("embed_origins", "https://a.gov.cn;script-src"),
    ("embed_origins", "https://a.gov.cn 'unsafe-inline'"),
    ("embed_origins", "https://user@a.gov.cn"),
    ("trusted_proxies", "proxy.local"),
    ("secret_key", "too-short"),
])
def test_a_bad_setting_stops_the_start_with_a_clear_message(setting, value):
    with pytest.raises(SettingsError) as err:
        create_app({setting: value})
    assert setting.upper() in str(err.value)


@pytest.mark.parametrize("method, path", [
    ("get", "/"), ("get", "/static/chat.js"), ("get", "/widget.js"), ("get", "/api/welcome"),
    ("get", "/api/departments"), ("get", "/api/clauses"), ("get", "/api/clauses/2.4.1"),
    ("get", "/api/search?q=产假"), ("get", "/ready"), ("post", "/api/session"),
    ("get", "/api/clauses/9.9"), ("get", "/nowhere"), ("post", "/api/chat"), ("get", "/api/history"),
    ("post", "/api/eligibility"),
])
def test_every_response_has_the_security_headers(app, method, path):
    _, resp = getattr(app.test_client, method)(path)
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["referrer-policy"] == "no-referrer"
    csp = resp.headers["content-security-policy"]
    assert "frame-ancestors" in csp and "*" not in csp


def test_an_unexpected_error_is_a_logged_json_500():
    app = create_app()
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("bot.web")
    logger.addHandler(handler)

    async def broken(request):
        raise RuntimeError("a bug")

    app.add_route(broken, "/broken")
    try:
        _, resp = app.test_client.get("/broken")
    finally:
        logger.removeHandler(handler)
    assert resp.status == 500
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json["error"]["status"] == 500 and resp.json["error"]["message_zh"]
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert any(r.exc_info and "a bug" in str(r.exc_info[1]) and "/broken" in r.getMessage() for r in records)


def test_page_font_stack_names_phone_fonts(app):
    _, resp = app.test_client.get("/static/chat.css")
    assert resp.status == 200
    for font in ("PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC"):
        assert font in resp.text


def test_chat_script_renders_text_only(app):
    _, resp = app.test_client.get("/static/chat.js")
    assert "innerHTML" not in resp.text and "eval(" not in resp.text
    assert "textContent" in resp.text


def test_chat_script_sends_the_conversation_id_in_a_header_never_a_url(app):
    _, resp = app.test_client.get("/static/chat.js")
    assert 'ID_HEADER = "X-Conversation-Id"' in resp.text
    assert "?sender=" not in resp.text and "sender:" not in resp.text


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


def test_the_server_refuses_to_start_on_a_bad_setting_and_says_why(tmp_path):
    import os
    import subprocess
    import sys

    from bot.config import ROOT

    env = {**os.environ, "EMBED_ORIGINS": "https://www.ordos.gov.cn *", "VAR_DIR": str(tmp_path)}
    run = subprocess.run([sys.executable, "-m", "bot.web"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode != 0
    assert "EMBED_ORIGINS: '*'" in run.stderr and "Traceback" not in run.stderr
