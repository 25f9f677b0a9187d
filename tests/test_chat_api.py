"""The chat proxy's own checks, with Rasa unreachable (a closed local port)."""
import pytest

from bot.web import create_app
from bot.web.chat import RateLimiter, history_messages

SENDER = "s" * 24


@pytest.fixture
def app():
    return create_app({"rasa_url": "http://127.0.0.1:9", "action_server_url": "http://127.0.0.1:9",
                       "rate_limit_per_minute": 3})


def chat(app, body):
    _, resp = app.test_client.post("/api/chat", json=body)
    return resp


def test_rasa_down_gives_apology_and_hotline(app):
    resp = chat(app, {"sender": SENDER, "message": "育儿假几天"})
    assert resp.status == 200
    (msg,) = resp.json["messages"]
    assert "抱歉" in msg["text"] and "12345" in msg["text"]


@pytest.mark.parametrize("body, field", [
    ({"sender": "short", "message": "hi"}, "sender"),
    ({"sender": "<script>alert(1)</script>aaaaaaaa", "message": "hi"}, "sender"),
    ({"sender": SENDER, "message": ""}, "message"),
    ({"sender": SENDER, "message": 42}, "message"),
    ({"sender": SENDER, "message": "长" * 501}, "message"),
])
def test_bad_messages_are_refused_in_chinese(app, body, field):
    resp = chat(app, body)
    assert resp.status == 400
    assert resp.json["error"]["field"] == field
    assert resp.json["error"]["message_zh"]


def test_per_client_rate_limit(app):
    statuses = [chat(app, {"sender": SENDER, "message": "你好"}).status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert "太快" in chat(app, {"sender": SENDER, "message": "你好"}).json["error"]["message_zh"]


def test_rate_limiter_window_slides():
    limiter = RateLimiter(2, 60)
    assert limiter.allow("a", 0) and limiter.allow("a", 1) and not limiter.allow("a", 2)
    assert limiter.allow("a", 61.5)
    assert limiter.allow("b", 2)


def test_ready_reports_each_service(app):
    _, resp = app.test_client.get("/ready")
    assert resp.status == 503
    assert resp.json["web"]["ok"] is True
    assert resp.json["rasa"]["ok"] is False and resp.json["action_server"]["ok"] is False


def test_history_keeps_user_and_bot_messages_in_order():
    events = [{"event": "action", "name": "action_listen"},
              {"event": "user", "text": "育儿假几天", "timestamp": 1},
              {"event": "bot", "text": "在子女3周岁前……", "timestamp": 2,
               "data": {"buttons": [{"title": "有帮助", "payload": "有帮助"}], "custom": {"clauses": ["2.4.1"]}}},
              {"event": "slot", "name": "x", "value": 1}]
    assert history_messages(events) == [
        {"from": "user", "text": "育儿假几天", "ts": 1},
        {"from": "bot", "text": "在子女3周岁前……", "ts": 2, "buttons": [{"title": "有帮助", "payload": "有帮助"}],
         "custom": {"clauses": ["2.4.1"]}}]


def test_custom_data_is_merged_into_its_message():
    from bot.web.chat import merge_custom

    messages = [{"text": "育儿假……", "buttons": [{"title": "a", "payload": "a"}]}, {"text": "", "custom": {"clauses": ["2.4.1"]}},
                {"text": "这个回答对您有帮助吗？"}]
    assert merge_custom(messages) == [
        {"text": "育儿假……", "buttons": [{"title": "a", "payload": "a"}], "custom": {"clauses": ["2.4.1"]}},
        {"text": "这个回答对您有帮助吗？"}]
