"""The chat proxy's own checks: conversation ids, origin and content type, rate limits,
and what the widget is told when Rasa is down (a closed local port) or slow (a stub)."""
import pytest
from rasa_stub import RasaStub

from bot.web import create_app
from bot.web.conversations import HEADER, ID_FORMAT, ConversationIds
from bot.web.limits import MemoryRateLimiter
from bot.web.chat import history_messages, merge_custom

SECRET = "k" * 40
CLOSED = "http://127.0.0.1:9"


def make_app(tmp_path, **config):
    return create_app({"rasa_url": CLOSED, "action_server_url": CLOSED, "rate_limit_per_minute": 3,
                       "secret_key": SECRET, "var_dir": tmp_path, **config})


@pytest.fixture
def app(tmp_path):
    return make_app(tmp_path)


@pytest.fixture(scope="module")
def rasa():
    stub = RasaStub(slow_s=2.0).start()
    yield stub
    stub.stop()


def new_id(app, **kwargs) -> str:
    _, resp = app.test_client.post("/api/session", **kwargs)
    assert resp.status == 201
    return resp.json["conversation_id"]


def chat(app, body, conversation=None, headers=None):
    headers = {**({HEADER: conversation} if conversation else {}), **(headers or {})}
    _, resp = app.test_client.post("/api/chat", json=body, headers=headers)
    return resp


# -- Rasa unreachable or slow: 503 with retry, never a 200 that looks delivered ----------------

def test_rasa_down_answers_503_with_retry_in_chinese(app):
    resp = chat(app, {"message": "育儿假几天"}, new_id(app))
    assert resp.status == 503
    assert resp.json["retry"] is True
    assert "保留" in resp.json["error"]["message_zh"] and "重新发送" in resp.json["error"]["message_zh"]
    assert resp.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("mode", [RasaStub.FAIL, RasaStub.SLOW])
def test_rasa_failing_or_slow_answers_503_with_retry(tmp_path, rasa, mode):
    app = make_app(tmp_path, rasa_url=rasa.url, rasa_timeout_s=0.5)
    rasa.mode = mode
    try:
        resp = chat(app, {"message": "育儿假几天"}, new_id(app))
    finally:
        rasa.mode = RasaStub.ANSWER
    assert resp.status == 503 and resp.json["retry"] is True


def test_rasa_answering_nothing_still_gets_the_apology(tmp_path, rasa):
    app = make_app(tmp_path, rasa_url=rasa.url)
    rasa.mode = RasaStub.EMPTY
    try:
        resp = chat(app, {"message": "育儿假几天"}, new_id(app))
    finally:
        rasa.mode = RasaStub.ANSWER
    assert resp.status == 200
    (msg,) = resp.json["messages"]
    assert "抱歉" in msg["text"] and "12345" in msg["text"]


def test_reply_carries_its_clauses_and_is_never_cached(tmp_path, rasa):
    app = make_app(tmp_path, rasa_url=rasa.url)
    resp = chat(app, {"message": "育儿假几天"}, new_id(app))
    assert resp.status == 200
    assert resp.json["messages"] == [{"text": "收到：育儿假几天", "buttons": [{"title": "有帮助", "payload": "有帮助"}],
                                      "custom": {"clauses": ["2.4.1"]}}]
    assert resp.headers["cache-control"] == "no-store"


# -- conversation ids: issued and signed by the server, sent in a header ------------------------

def test_session_issues_a_signed_id_rasa_sees_only_its_value(tmp_path, rasa):
    app = make_app(tmp_path, rasa_url=rasa.url)
    _, resp = app.test_client.post("/api/session")
    assert resp.status == 201 and resp.headers["cache-control"] == "no-store"
    token = resp.json["conversation_id"]
    assert ID_FORMAT.match(token) and resp.json["header"] == HEADER
    assert chat(app, {"message": "产假几天"}, token).status == 200
    assert rasa.received[-1]["sender"] == token.split(".")[0]


def test_the_widgets_message_id_goes_on_to_rasa(tmp_path, rasa):
    app = make_app(tmp_path, rasa_url=rasa.url)
    token = new_id(app)
    assert chat(app, {"message": "产假几天", "message_id": "1764500000000-9f3a6c"}, token).status == 200
    assert rasa.received[-1] == {"sender": token.split(".")[0], "message": "产假几天",
                                 "message_id": "1764500000000-9f3a6c"}
    assert chat(app, {"message": "产假几天"}, token).status == 200
    assert "message_id" not in rasa.received[-1]


@pytest.mark.parametrize("message_id", ["", "short", "x" * 65, "<script>12345", 123456789, None])
def test_an_unusable_message_id_is_refused_in_chinese(tmp_path, rasa, message_id):
    app = make_app(tmp_path, rasa_url=rasa.url)
    sent = len(rasa.received)
    body = {"message": "产假几天", "message_id": message_id}
    resp = chat(app, body, new_id(app))
    if message_id is None:  # JSON null: no id, as when the field is left out
        assert resp.status == 200
        return
    assert resp.status == 400 and resp.json["error"]["field"] == "message_id"
    assert "消息编号" in resp.json["error"]["message_zh"]
    assert len(rasa.received) == sent


def test_ids_differ_per_session(app):
    assert new_id(app) != new_id(app)


def test_history_reads_the_conversation_by_header_and_is_never_cached(tmp_path, rasa):
    app = make_app(tmp_path, rasa_url=rasa.url, rasa_token="tok")
    token = new_id(app)
    chat(app, {"message": "暖心家园是什么"}, token)
    _, resp = app.test_client.get("/api/history", headers={HEADER: token})
    assert resp.status == 200
    assert resp.headers["cache-control"] == "no-store"
    assert [m["text"] for m in resp.json["messages"]] == ["暖心家园是什么", "收到：暖心家园是什么"]
    assert rasa.tracker_requests[-1] == {"sender": token.split(".")[0],
                                         "query": {"include_events": "AFTER_RESTART", "token": "tok"}}


def test_history_with_rasa_down_is_503_with_retry(app):
    _, resp = app.test_client.get("/api/history", headers={HEADER: new_id(app)})
    assert resp.status == 503 and resp.json["retry"] is True


FORGED = "0" * 32 + "." + "A" * 43


@pytest.mark.parametrize("path", ["/api/chat", "/api/history"])
@pytest.mark.parametrize("token, status", [
    (None, 400),                               # no id at all
    ("s" * 24, 403),                           # a client-chosen id, as the widget used to make
    ("0123456789abcdef" * 2, 403),
    (FORGED, 403),                             # right shape, wrong signature
])
def test_only_ids_the_server_issued_are_accepted(app, path, token, status):
    headers = {HEADER: token} if token else {}
    if path == "/api/chat":
        _, resp = app.test_client.post(path, json={"message": "你好"}, headers=headers)
    else:
        _, resp = app.test_client.get(path, headers=headers)
    assert resp.status == status
    assert resp.json["error"]["field"] == "conversation"
    assert "刷新" in resp.json["error"]["message_zh"]


def test_id_signed_with_another_key_is_refused(tmp_path, app):
    other = ConversationIds(b"another key entirely, 32 chars long").issue()
    assert ConversationIds(SECRET.encode()).verify(other) is None
    resp = chat(app, {"message": "你好"}, other)
    assert resp.status == 403


def test_id_followed_by_a_newline_is_refused():
    ids = ConversationIds(SECRET.encode())
    token = ids.issue()
    assert ids.verify(token) == token.split(".")[0]
    assert ids.verify(token + "\n") is None
    assert not ID_FORMAT.match(token + "\n")


def test_sender_in_the_body_or_query_string_is_not_a_conversation(app):
    resp = chat(app, {"sender": "s" * 24, "message": "你好"})
    assert resp.status == 400 and resp.json["error"]["field"] == "conversation"
    resp = chat(app, {"sender": "s" * 24, "message": "你好"}, new_id(app))
    assert resp.status == 400 and resp.json["error"]["field"] == "sender"
    _, resp = app.test_client.get("/api/history", params={"sender": "s" * 24})
    assert resp.status == 400 and resp.json["error"]["field"] == "conversation"


def test_default_key_is_made_once_private_and_shared(tmp_path):
    first = make_app(tmp_path, secret_key="")
    key = tmp_path / "secret_key"
    assert key.exists() and (key.stat().st_mode & 0o777) == 0o600
    second = make_app(tmp_path, secret_key="")  # another worker, same var/
    assert second.ctx.conversations.verify(new_id(first)) is not None


# -- what the message must be -----------------------------------------------------------------

@pytest.mark.parametrize("body, field", [
    ({"message": ""}, "message"),
    ({"message": "   "}, "message"),
    ({"message": "\x00\x01"}, "message"),
    ({"message": 42}, "message"),
    ({"message": "长" * 501}, "message"),
    ({}, "message"),
])
def test_bad_messages_are_refused_in_chinese(app, body, field):
    resp = chat(app, body, new_id(app))
    assert resp.status == 400
    assert resp.json["error"]["field"] == field
    assert resp.json["error"]["message_zh"]
    assert "retry" not in resp.json


# -- cross-site requests ----------------------------------------------------------------------

@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                          None])
def test_chat_requires_json(app, content_type):
    headers = {HEADER: new_id(app)}
    if content_type:
        headers["content-type"] = content_type
    _, resp = app.test_client.post("/api/chat", content='{"message": "你好"}', headers=headers)
    assert resp.status == 415
    assert resp.json["error"]["field"] == "content-type"


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://127.0.0.1.evil.example"])
def test_chat_from_another_site_is_refused(app, origin):
    resp = chat(app, {"message": "你好"}, new_id(app), headers={"origin": origin})
    assert resp.status == 403
    assert resp.json["error"]["field"] == "origin"


@pytest.mark.parametrize("origin, host", [
    ("https://www.ordos.gov.cn", None),                 # a listed host site
    ("https://chat.ordos.gov.cn", "chat.ordos.gov.cn"),   # this site
    ("http://127.0.0.1:8000", "127.0.0.1:8000"),
])
def test_chat_from_this_site_or_a_listed_host_site_passes(tmp_path, origin, host):
    app = make_app(tmp_path, embed_origins="https://www.ordos.gov.cn")
    headers = {"origin": origin, **({"host": host} if host else {})}
    resp = chat(app, {"message": "你好"}, new_id(app, headers=headers), headers=headers)
    assert resp.status == 503  # past the origin check; Rasa is down


def test_new_conversation_from_another_site_is_refused(app):
    _, resp = app.test_client.post("/api/session", headers={"origin": "https://evil.example"})
    assert resp.status == 403


# -- rate limits ------------------------------------------------------------------------------

def test_per_client_rate_limit(app):
    token = new_id(app)
    statuses = [chat(app, {"message": "你好"}, token).status for _ in range(4)]
    assert statuses == [503, 503, 503, 429]
    resp = chat(app, {"message": "你好"}, token)
    assert "太快" in resp.json["error"]["message_zh"]
    assert resp.json["retry"] is True and int(resp.headers["retry-after"]) >= 1


def test_new_conversation_ids_do_not_raise_the_limit(app):
    statuses = [chat(app, {"message": "你好"}, new_id(app)).status for _ in range(4)]
    assert statuses == [503, 503, 503, 429]


def test_forwarded_for_counts_only_behind_a_trusted_proxy(tmp_path):
    direct = make_app(tmp_path)
    token = new_id(direct)
    statuses = [chat(direct, {"message": "你好"}, token, headers={"x-forwarded-for": f"203.0.113.{i}"}).status
                for i in range(4)]
    assert statuses[-1] == 429  # not behind a trusted proxy: the header is ignored

    proxied = make_app(tmp_path, trusted_proxies="127.0.0.1")
    token = new_id(proxied)
    statuses = [chat(proxied, {"message": "你好"}, token, headers={"x-forwarded-for": f"203.0.113.{i}"}).status
                for i in range(4)]
    assert statuses == [503] * 4  # four clients behind the proxy
    # A client cannot pick a new address by prepending one: the hop our proxy appended counts.
    statuses = [chat(proxied, {"message": "你好"}, token,
                     headers={"x-forwarded-for": f"198.51.100.{i}, 203.0.113.9"}).status for i in range(4)]
    assert statuses == [503, 503, 503, 429]


@pytest.mark.parametrize("path, method", [("/api/search?q=产假", "get"), ("/api/departments", "get"),
                                          ("/api/clauses/2.4.1", "get"), ("/api/clauses", "get"),
                                          ("/api/welcome", "get"), ("/api/session", "post"),
                                          ("/api/history", "get"), ("/api/eligibility", "post")])
def test_every_public_endpoint_is_limited(tmp_path, path, method):
    app = make_app(tmp_path, api_rate_limit_per_minute=2)
    kwargs = {}
    if path == "/api/eligibility":
        kwargs = {"json": {"facts": {}}}
    statuses = []
    for _ in range(3):
        if path == "/api/history":
            kwargs = {"headers": {HEADER: ConversationIds(SECRET.encode()).issue()}}
        _, resp = getattr(app.test_client, method)(path, **kwargs)
        statuses.append(resp.status)
    assert statuses[-1] == 429 and 429 not in statuses[:2]


def test_rate_limiter_window_slides():
    limiter = MemoryRateLimiter(2, 60)
    assert limiter.allow("a", 0) and limiter.allow("a", 1) and not limiter.allow("a", 2)
    assert limiter.allow("a", 61.5)
    assert limiter.allow("b", 2)


def test_rate_limiter_says_how_long_to_wait():
    limiter = MemoryRateLimiter(3, 60)
    assert [limiter.wait_s("a", 0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.wait_s("a", 0) == pytest.approx(20.0)
    assert limiter.wait_s("a", 20) == 0.0


def test_rate_limiter_table_is_bounded_and_forgets_the_least_recent():
    limiter = MemoryRateLimiter(1, 60, max_clients=3)
    for key in "abcde":
        assert limiter.allow(key, 0)
    assert len(limiter) == 3
    assert not limiter.allow("e", 1)   # still remembered
    assert limiter.allow("a", 1)       # forgotten: a fresh allowance


# -- shaping Rasa's answers -------------------------------------------------------------------

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
    messages = [{"text": "育儿假……", "buttons": [{"title": "a", "payload": "a"}]}, {"text": "", "custom": {"clauses": ["2.4.1"]}},
                {"text": "这个回答对您有帮助吗？"}]
    assert merge_custom(messages) == [
        {"text": "育儿假……", "buttons": [{"title": "a", "payload": "a"}], "custom": {"clauses": ["2.4.1"]}},
        {"text": "这个回答对您有帮助吗？"}]
