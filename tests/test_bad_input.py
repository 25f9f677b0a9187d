"""Bad input against every public endpoint of the web app.

Each bad request gets a clear 4xx with a JSON error in Chinese, or a helpful
reply, never a 500; and the next normal request to the same endpoint still
works. The web app runs as it does in production (python -m bot.web) and Rasa
is a local stub (tests/rasa_stub.py), so the chat path runs whole.
"""
from __future__ import annotations

import json
from urllib.parse import quote

import httpx
import pytest
from rasa_stub import RasaStub
from web_server import web_app

from bot.web.conversations import HEADER

BAD_TEXTS = {
    "empty": "",
    "whitespace": " \t\n\u3000 ",
    "ten_thousand_chars": "长" * 10_000,
    "emoji_only": "😀🎉👍🏽",
    "nul": "\x00",
    "control_chars": "\x01\x07\x08\x1b[31m\x7f",
    "control_chars_only": "\x01\x02\x1b\x7f\x0b",
    "nul_inside_text": "育儿假\x00几天",
    "lone_surrogates": "\ud800育儿假\udfff",
    "html_script": "<script>alert(1)</script><img src=x onerror=alert(1)>",
    "sql_like": "' OR 1=1; DROP TABLE events; --",
    "leading_slash": "/restart",
    "slash_intent_with_entities": '/inform{"child_order": 3}',
    "bidi_and_zero_width": "\u202e\u200b育儿假\u2066\ufeff",
    "format_strings": "%s%n{0}${{7*7}}{{7*7}}",
    "path_traversal": "../../etc/passwd",
    "just_over_the_limit": "a" * 501,
}


def has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def url_text(text: str) -> str:
    """Percent-encoded as a browser would send it (a lone surrogate becomes bytes that are not UTF-8)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


@pytest.fixture(scope="module")
def rasa():
    stub = RasaStub().start()
    yield stub
    stub.stop()


@pytest.fixture(scope="module")
def app(rasa, tmp_path_factory):
    """An HTTP client of the running web app."""
    with web_app(tmp_path_factory.mktemp("var"), RASA_URL=rasa.url, ACTION_SERVER_URL=rasa.url,
                 SECRET_KEY="b" * 40, RATE_LIMIT_PER_MINUTE="100000", API_RATE_LIMIT_PER_MINUTE="100000") as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            yield client


@pytest.fixture(scope="module")
def conversation(app):
    return app.post("/api/session").json()["conversation_id"]


# Each endpoint: how a text reaches it, and a normal request that must still work afterwards.
def chat_with(app, conversation, text):
    return app.post("/api/chat", json={"message": text}, headers={HEADER: conversation})


def eligibility_with(app, text):
    return app.post("/api/eligibility", json={"facts": {"applicant_role": text}, "benefits": [text]})


ENDPOINTS = {
    "chat": lambda app, conv, text: chat_with(app, conv, text),
    "session": lambda app, conv, text: app.post("/api/session", json={"note": text}),
    "history": lambda app, conv, text: app.get(
        f"/api/history?sender={url_text(text)}", headers={HEADER: url_text(text)[:200] or "x"}),
    "search": lambda app, conv, text: app.get(f"/api/search?q={url_text(text)}"),
    "eligibility": lambda app, conv, text: eligibility_with(app, text),
    "eligibility_fact_name": lambda app, conv, text: app.post(
        "/api/eligibility", json={"facts": {text: True}}),
    "departments": lambda app, conv, text: app.get(f"/api/departments?q={url_text(text)}"),
    "clause": lambda app, conv, text: app.get(f"/api/clauses/{url_text(text)}"),
    "clauses": lambda app, conv, text: app.get(f"/api/clauses?q={url_text(text)}"),
    "welcome": lambda app, conv, text: app.get(f"/api/welcome?q={url_text(text)}"),
    "widget": lambda app, conv, text: app.get(f"/widget.js?v={url_text(text)}"),
    "page": lambda app, conv, text: app.get(f"/?embed={url_text(text)}"),
    "ready": lambda app, conv, text: app.get(f"/ready?x={url_text(text)}"),
}

NORMAL = {
    "chat": lambda app, conv: chat_with(app, conv, "育儿假有几天"),
    "session": lambda app, conv: app.post("/api/session"),
    "history": lambda app, conv: app.get("/api/history", headers={HEADER: conv}),
    "search": lambda app, conv: app.get("/api/search", params={"q": "产假多少天"}),
    "eligibility": lambda app, conv: app.post(
        "/api/eligibility", json={"facts": {"applicant_role": "mother"}, "benefits": ["maternity_leave"]}),
    "departments": lambda app, conv: app.get("/api/departments"),
    "clause": lambda app, conv: app.get("/api/clauses/2.4.1"),
    "clauses": lambda app, conv: app.get("/api/clauses"),
    "welcome": lambda app, conv: app.get("/api/welcome"),
    "widget": lambda app, conv: app.get("/widget.js"),
    "page": lambda app, conv: app.get("/"),
    "ready": lambda app, conv: app.get("/ready"),
}
NORMAL["eligibility_fact_name"] = NORMAL["eligibility"]


def assert_clear(resp) -> None:
    """A helpful reply, or a 4xx whose JSON error says in Chinese what was wrong."""
    assert resp.status_code < 500, resp.text[:300]
    if resp.status_code >= 400:
        assert resp.headers["content-type"].startswith("application/json"), resp.text[:300]
        error = resp.json()["error"]
        assert error["status"] == resp.status_code
        assert has_chinese(error["message_zh"]) and error["message_en"]
    assert resp.headers["x-content-type-options"] == "nosniff"


def assert_still_works(app, conversation, endpoint) -> None:
    resp = NORMAL[endpoint](app, conversation)
    assert resp.status_code in (200, 201), resp.text[:300]


@pytest.mark.parametrize("name", BAD_TEXTS)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_bad_text_gets_a_clear_answer(app, conversation, endpoint, name):
    resp = ENDPOINTS[endpoint](app, conversation, BAD_TEXTS[name])
    assert_clear(resp)
    assert_still_works(app, conversation, endpoint)


@pytest.mark.parametrize("name", ["emoji_only", "html_script", "sql_like", "leading_slash", "lone_surrogates",
                                  "bidi_and_zero_width", "format_strings", "nul_inside_text"])
def test_chat_answers_odd_but_real_messages(app, conversation, rasa, name):
    resp = chat_with(app, conversation, BAD_TEXTS[name])
    assert resp.status_code == 200 and resp.json()["messages"][0]["text"].startswith("收到：")
    forwarded = rasa.received[-1]["message"]
    assert "\x00" not in forwarded
    assert not any("\ud800" <= ch <= "\udfff" for ch in forwarded)  # nothing the NLU cannot encode


@pytest.mark.parametrize("name, field", [("empty", "message"), ("whitespace", "message"), ("nul", "message"),
                                         ("control_chars_only", "message"), ("ten_thousand_chars", "message"),
                                         ("just_over_the_limit", "message")])
def test_chat_refuses_messages_with_nothing_to_say_or_too_long(app, conversation, name, field):
    resp = chat_with(app, conversation, BAD_TEXTS[name])
    assert resp.status_code == 400 and resp.json()["error"]["field"] == field
    assert "retry" not in resp.json()


DEEP = "[" * 20_000 + "]" * 20_000
WRONG_BODIES = {
    "empty": b"",
    "null": b"null",
    "array": b"[]",
    "string": b'"\xe8\x82\xb2\xe5\x84\xbf\xe5\x81\x87"',
    "number": b"123",
    "truncated": b'{"message": "\xe8\x82\xb2',
    "not_json": b"message=hello",
    "invalid_utf8": b'{"message": "\xff\xfe"}',
    "invalid_utf8_start": b"\xff\xfe\x00{}",
    "utf16": '{"message": "育儿假"}'.encode("utf-16"),
    "bom": b"\xef\xbb\xbf" + '{"message": "育儿假"}'.encode(),
    "message_list": b'{"message": ["a"]}',
    "message_object": b'{"message": {"a": 1}}',
    "message_null": b'{"message": null}',
    "message_number": b'{"message": 1e400}',
    "facts_list": b'{"facts": {"applicant_role": []}}',
    "facts_object": b'{"facts": {"applicant_role": {}}}',
    "facts_string": b'{"facts": "hukou_ordos"}',
    "benefits_object": b'{"facts": {}, "benefits": {"a": 1}}',
    "nan": b'{"message": NaN, "facts": {"child_order": NaN}}',
    "deep": ('{"message": ' + DEEP + ', "facts": ' + DEEP + "}").encode()[:60_000],
    "deep_closed": ('{"facts": ' + "[" * 15_000 + "]" * 15_000 + "}").encode(),
    "nested_nine": ('{"facts": {"a": ' + '{"b": ' * 8 + "1" + "}" * 8 + "}}").encode(),
    "huge_number": b'{"facts": {"child_order": ' + b"9" * 5000 + b"}}",
    "huge_int_string": b'{"facts": {"child_order": "' + b"9" * 5000 + b'"}}',
    "unknown_fields": b'{"sender": "x", "message": "hi", "extra": 1}',
    "duplicate_keys": b'{"message": "a", "message": ""}',
}
POST_ENDPOINTS = {"chat": "/api/chat", "eligibility": "/api/eligibility", "session": "/api/session"}


@pytest.mark.parametrize("body", WRONG_BODIES)
@pytest.mark.parametrize("endpoint", POST_ENDPOINTS)
def test_json_of_the_wrong_type_or_depth(app, conversation, endpoint, body):
    resp = app.post(POST_ENDPOINTS[endpoint], content=WRONG_BODIES[body],
                    headers={"content-type": "application/json", HEADER: conversation})
    assert_clear(resp)
    if endpoint != "session":  # a new conversation needs no body; the others need the right one
        assert resp.status_code in (200, 400), resp.text[:300]
    assert_still_works(app, conversation, endpoint)


@pytest.mark.parametrize("content_type", ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/jsonp", "text/json",
                                          "application/xml", "", None])
@pytest.mark.parametrize("endpoint", ["chat", "eligibility"])
def test_wrong_content_types_are_415(app, conversation, endpoint, content_type):
    headers = {HEADER: conversation}
    if content_type is not None:
        headers["content-type"] = content_type
    resp = app.post(POST_ENDPOINTS[endpoint], content=b'{"message": "hi", "facts": {}}', headers=headers)
    assert_clear(resp)
    assert resp.status_code == 415
    assert_still_works(app, conversation, endpoint)


@pytest.mark.parametrize("endpoint", POST_ENDPOINTS)
def test_oversized_body_is_413(app, conversation, endpoint):
    body = json.dumps({"message": "长" * 100, "pad": "x" * 100_000}).encode()
    resp = app.post(POST_ENDPOINTS[endpoint], content=body,
                    headers={"content-type": "application/json", HEADER: conversation})
    assert_clear(resp)
    assert resp.status_code == 413 and "过大" in resp.json()["error"]["message_zh"]
    assert_still_works(app, conversation, endpoint)


@pytest.mark.parametrize("headers", [
    {"x-padding": "a" * 20_000},
    {f"x-h{i}": "b" * 200 for i in range(100)},
    {"cookie": "c=" + "d" * 20_000},
], ids=["one_huge_header", "many_headers", "huge_cookie"])
@pytest.mark.parametrize("endpoint", ["search", "departments", "page"])
def test_oversized_headers_are_4xx(app, conversation, endpoint, headers):
    path = {"search": "/api/search?q=产假", "departments": "/api/departments", "page": "/"}[endpoint]
    resp = app.get(path, headers=headers)
    assert_clear(resp)
    assert 400 <= resp.status_code < 500
    assert_still_works(app, conversation, endpoint)


@pytest.mark.parametrize("endpoint", ["search", "departments", "clauses", "page", "widget"])
def test_oversized_url_is_4xx(app, conversation, endpoint):
    path = {"search": "/api/search", "departments": "/api/departments", "clauses": "/api/clauses",
            "page": "/", "widget": "/widget.js"}[endpoint]
    resp = app.get(f"{path}?q={'长' * 10_000}")
    assert_clear(resp)
    assert_still_works(app, conversation, endpoint)


@pytest.mark.parametrize("value", [b"\xff\xfe\xfd", "育儿假".encode(), b"a" * 5000, b"../../etc/passwd"])
@pytest.mark.parametrize("endpoint", ["chat", "history"])
def test_conversation_header_with_bytes_that_are_not_an_id(app, conversation, endpoint, value):
    if endpoint == "chat":
        resp = app.post("/api/chat", json={"message": "你好"}, headers={HEADER: value})
    else:
        resp = app.get("/api/history", headers={HEADER: value})
    assert_clear(resp)
    assert resp.status_code == 403 and resp.json()["error"]["field"] == "conversation"
    assert_still_works(app, conversation, endpoint)


@pytest.mark.parametrize("method, path", [("get", "/api/chat"), ("get", "/api/session"), ("put", "/api/eligibility"),
                                          ("post", "/api/search"), ("delete", "/api/history"), ("post", "/")])
def test_wrong_method_is_405(app, method, path):
    resp = app.request(method, path)
    assert_clear(resp)
    assert resp.status_code == 405


def test_rasa_down_then_back_a_retried_message_is_delivered(app, conversation, rasa):
    rasa.mode = RasaStub.FAIL
    try:
        resp = chat_with(app, conversation, "育儿假有几天")
    finally:
        rasa.mode = RasaStub.ANSWER
    assert resp.status_code == 503 and resp.json()["retry"] is True
    assert has_chinese(resp.json()["error"]["message_zh"])
    resp = chat_with(app, conversation, "育儿假有几天")  # what the widget does next
    assert resp.status_code == 200 and resp.json()["messages"][0]["text"] == "收到：育儿假有几天"
