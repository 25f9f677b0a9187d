"""The chat page's outbox and conversation id in a real browser (Debian chromium via Playwright),
against the real web app with Rasa stubbed: no trained model needed.

A message leaves the outbox only when the server has answered it; while the
assistant is down or asks us to slow down it waits and is sent again; one the
server refuses is shown with the reason and given back; the conversation id
comes from the server and travels in a header, never in a URL.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from rasa_stub import RasaStub
from web_server import web_app

pytestmark = pytest.mark.e2e



@pytest.fixture(scope="module")
def rasa():
    stub = RasaStub().start()
    yield stub
    stub.stop()


@pytest.fixture(scope="module")
def web(rasa, tmp_path_factory):
    with web_app(tmp_path_factory.mktemp("web"), RASA_URL=rasa.url, ACTION_SERVER_URL=rasa.url,
                 RATE_LIMIT_PER_MINUTE="1000", API_RATE_LIMIT_PER_MINUTE="1000") as url:
        yield url


@pytest.fixture
def context(browser, web, rasa):
    rasa.mode = RasaStub.ANSWER
    ctx = browser.new_context(viewport={"width": 375, "height": 667}, locale="zh-CN",
                              storage_state=_storage(web, {"ordos.notice": "1"}))
    ctx.requests = []
    ctx.on("request", lambda r: ctx.requests.append(r))
    yield ctx
    ctx.close()
    rasa.mode = RasaStub.ANSWER


def _storage(origin: str, items: dict) -> dict:
    return {"cookies": [], "origins": [{"origin": origin, "localStorage": [{"name": k, "value": v}
                                                                         for k, v in items.items()]}]}


def stored(ctx, web) -> dict:
    """The page's localStorage, read without running script in the page (its CSP forbids eval)."""
    for origin in ctx.storage_state()["origins"]:
        if origin["origin"] == web:
            return {i["name"]: i["value"] for i in origin["localStorage"]}
    return {}


def open_chat(ctx, web):
    page = ctx.new_page()
    page.goto(web + "/")
    page.wait_for_selector(".row.bot")
    return page


def send(page, text):
    page.get_by_label("输入您的问题").fill(text)
    page.get_by_role("button", name="发送").click()


def test_message_waits_while_the_assistant_is_down_and_is_delivered_after(context, web, rasa):
    page = open_chat(context, web)
    rasa.mode = RasaStub.FAIL
    send(page, "育儿假有几天")
    page.wait_for_selector("#banner:not([hidden])")
    assert "已保留" in page.locator("#banner").inner_text() and "不会丢失" in page.locator("#banner").inner_text()
    assert page.locator(".row.user.pending").count() == 1
    outbox = json.loads(stored(context, web)["ordos.outbox"])
    assert [item["text"] for item in outbox] == ["育儿假有几天"]

    rasa.mode = RasaStub.ANSWER
    page.wait_for_selector("text=收到：育儿假有几天", timeout=30_000)
    page.wait_for_selector("#banner", state="hidden")
    assert page.locator(".row.user.pending").count() == 0
    assert json.loads(stored(context, web)["ordos.outbox"]) == []
    conversation = stored(context, web)["ordos.conversation"]
    # Every attempt named the message with its outbox id: Rasa handles a resent copy once.
    assert rasa.received[-1] == {"sender": conversation.split(".")[0], "message": "育儿假有几天",
                                 "message_id": outbox[0]["id"]}


def test_message_waits_through_a_reload(context, web, rasa):
    page = open_chat(context, web)
    rasa.mode = RasaStub.FAIL
    send(page, "产假有多少天")
    page.wait_for_selector("#banner:not([hidden])")
    rasa.mode = RasaStub.ANSWER
    page.reload()
    page.wait_for_selector("text=收到：产假有多少天", timeout=30_000)
    assert page.locator(".row.user", has_text="产假有多少天").count() == 1


def test_the_conversation_id_comes_from_the_server_and_travels_in_a_header(context, web, rasa):
    page = open_chat(context, web)
    send(page, "暖心家园是什么")
    page.wait_for_selector("text=收到：暖心家园是什么")
    conversation = stored(context, web)["ordos.conversation"]
    value = conversation.split(".")[0]
    page.reload()
    page.wait_for_selector(".row.bot >> text=收到：暖心家园是什么")
    assert page.locator(".row.user", has_text="暖心家园是什么").count() == 1
    history = [r for r in context.requests if r.url.endswith("/api/history")]
    assert history and history[-1].headers["x-conversation-id"] == conversation
    assert not [r.url for r in context.requests if value in r.url]
    chats = [r for r in context.requests if r.url.endswith("/api/chat")]
    body = json.loads(chats[-1].post_data)
    assert body["message"] == "暖心家园是什么" and set(body) == {"message", "message_id"}


def test_a_message_the_server_refuses_is_shown_with_the_reason_and_given_back(context, web):
    page = open_chat(context, web)
    calls = []

    def refuse(route):
        calls.append(route.request)
        route.fulfill(status=400, content_type="application/json", body=json.dumps(
            {"error": {"status": 400, "field": "message", "message_zh": "消息太长了（最多500个字），请精简后再发送",
                       "message_en": "too long"}}))

    page.route("**/api/chat", refuse)
    send(page, "一条会被拒绝的消息")
    failed = page.locator(".row.user.failed")
    failed.wait_for()
    assert "未发送：消息太长了" in failed.inner_text()
    assert page.get_by_label("输入您的问题").input_value() == "一条会被拒绝的消息"
    assert json.loads(stored(context, web)["ordos.outbox"]) == []  # nothing left to send again
    assert stored(context, web)["ordos.draft"] == "一条会被拒绝的消息"  # and the text survives a reload
    assert len(calls) == 1


def test_too_fast_keeps_the_message_and_sends_it_after_the_pause(context, web):
    page = open_chat(context, web)
    calls = []

    def slow_down_once(route):
        calls.append(route.request)
        if len(calls) == 1:
            route.fulfill(status=429, content_type="application/json", headers={"retry-after": "1"}, body=json.dumps(
                {"error": {"status": 429, "field": None, "message_zh": "您发送得太快了", "message_en": "slow down"},
                 "retry": True}))
        else:
            route.continue_()

    page.route("**/api/chat", slow_down_once)
    send(page, "分娩补贴给多少")
    page.wait_for_selector("#banner:not([hidden])")
    assert "太快" in page.locator("#banner").inner_text()
    page.wait_for_selector("text=收到：分娩补贴给多少", timeout=30_000)
    assert len(calls) == 2


def test_a_conversation_the_server_no_longer_knows_is_replaced_and_the_message_sent(browser, web, rasa):
    forged = "0" * 32 + "." + "A" * 43
    ctx = browser.new_context(storage_state=_storage(web, {"ordos.notice": "1", "ordos.conversation": forged,
                                                           "ordos.sender": "f" * 32}))
    try:
        page = ctx.new_page()
        page.route("**/api/history", lambda route: route.fulfill(status=200, content_type="application/json",
                                                                 body='{"messages": []}'))
        page.goto(web + "/")
        page.wait_for_selector(".row.bot")
        send(page, "育儿假有几天")
        page.wait_for_selector("text=收到：育儿假有几天", timeout=30_000)
        conversation = stored(ctx, web)["ordos.conversation"]
        assert conversation != forged and rasa.received[-1]["sender"] == conversation.split(".")[0]
        assert "ordos.sender" not in stored(ctx, web)
    finally:
        ctx.close()


def test_links_lead_only_to_this_site(context, web):
    page = open_chat(context, web)
    text = ("[站内](/static/chat.css) [a](/\\evil.example) [b](//evil.example) [c](/\\/evil.example) "
            "[d](/%5Cevil.example)")
    page.route("**/api/chat", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps({"messages": [{"text": text}]})))
    send(page, "链接")
    page.wait_for_selector(".row.bot >> text=站内")
    hrefs = [a.get_attribute("href") for a in page.locator("#log a").all()]
    assert hrefs == ["/static/chat.css", "/%5Cevil.example"]
    assert "[a](/\\evil.example)" in page.locator("#log").inner_text()


def test_a_new_conversation_refused_for_now_keeps_the_message(context, web):
    page = open_chat(context, web)
    calls = []

    def slow_down_once(route):
        calls.append(route.request)
        if len(calls) == 1:
            route.fulfill(status=429, content_type="application/json", headers={"retry-after": "1"}, body=json.dumps(
                {"error": {"status": 429, "field": None, "message_zh": "您的操作太频繁了", "message_en": "slow down"},
                 "retry": True}))
        else:
            route.continue_()

    page.route("**/api/session", slow_down_once)
    send(page, "产假有多少天")
    page.wait_for_selector("#banner:not([hidden])")
    assert "太快" in page.locator("#banner").inner_text()
    page.wait_for_selector("text=收到：产假有多少天", timeout=30_000)
    assert len(calls) == 2
