"""A message sent again (its answer was lost on the way back, or came too late)
is answered again and stored once: the client names each message (message_id)
and Rasa answers a message it already has from the conversation."""
import json
import threading
import uuid

import pytest
import requests

pytestmark = pytest.mark.e2e


def user_events(stack, sender):
    return [e for e in stack.tracker(sender)["events"] if e["event"] == "user"]


def test_the_same_message_sent_twice_is_answered_twice_and_stored_once(stack):
    me = "e2e-" + uuid.uuid4().hex
    stack.say(me, "我是本地户口，生了老三")
    first = stack.say(me, "育儿补贴能领吗", message_id="m-" + "1" * 12)
    events_after_first = len(stack.tracker(me)["events"])
    again = stack.say(me, "育儿补贴能领吗", message_id="m-" + "1" * 12)
    assert again == first and any("育儿补贴" in m.get("text", "") for m in first)
    assert len(stack.tracker(me)["events"]) == events_after_first   # nothing stored for the copy
    assert [e["text"] for e in user_events(stack, me)] == ["我是本地户口，生了老三", "育儿补贴能领吗"]
    # A new id is a new message, even with the same words.
    stack.say(me, "育儿补贴能领吗", message_id="m-" + "2" * 12)
    assert [e["message_id"] for e in user_events(stack, me)][-2:] == ["m-" + "1" * 12, "m-" + "2" * 12]


def test_copies_sent_at_the_same_moment_are_handled_once(stack):
    """The copies queue on the conversation's lock: the first is handled, the others
    find it there and get its answer."""
    me = "e2e-" + uuid.uuid4().hex
    answers, start = [], threading.Barrier(4)

    def send():
        start.wait()
        answers.append(stack.say(me, "产假有多少天", message_id="m-" + "3" * 12))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 4 and all(a == answers[0] for a in answers)
    assert "产假" in " ".join(m.get("text", "") for m in answers[0])
    assert [e["text"] for e in user_events(stack, me)] == ["产假有多少天"]


def test_the_web_app_passes_the_id_on(stack):
    issued = requests.post(f"{stack.web_url}/api/session", timeout=30).json()
    headers, sender = {issued["header"]: issued["conversation_id"]}, issued["conversation_id"].split(".")[0]
    body = {"message": "男方护理假几天", "message_id": "1764500000000-" + uuid.uuid4().hex[:8]}
    first = requests.post(f"{stack.web_url}/api/chat", json=body, headers=headers, timeout=30)
    again = requests.post(f"{stack.web_url}/api/chat", json=body, headers=headers, timeout=30)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and "25天" in json.dumps(first.json(), ensure_ascii=False)
    assert [e["message_id"] for e in user_events(stack, sender)] == [body["message_id"]]


def test_the_widget_resends_a_message_whose_answer_was_lost_and_shows_it_once(browser, stack):
    """The first request reaches the assistant, but the widget is told 503 (as when the
    web app gave up waiting): the widget keeps the message and sends it again, with the
    same id. The conversation holds the message once; the page shows one answer."""
    context = browser.new_context(viewport={"width": 375, "height": 667}, locale="zh-CN")
    try:
        page = context.new_page()
        sent = []

        def lose_the_first_answer(route):
            sent.append(json.loads(route.request.post_data))
            if len(sent) == 1:
                route.fetch()   # delivered: the assistant handles and stores it
                route.fulfill(status=503, content_type="application/json", body=json.dumps(
                    {"error": {"status": 503, "field": None, "message_zh": "智能助手暂时无法连接",
                               "message_en": "unavailable"}, "retry": True}))
            else:
                route.continue_()

        page.route("**/api/chat", lose_the_first_answer)
        page.goto(stack.web_url + "/")
        page.get_by_role("button", name="我知道了").click()
        page.wait_for_selector(".row.bot")
        page.get_by_label("输入您的问题").fill("育儿假有几天")
        page.get_by_role("button", name="发送").click()
        page.wait_for_selector("#banner:not([hidden])")
        page.locator(".row.bot", has_text="10天育儿假").wait_for(timeout=30_000)
        page.wait_for_selector(".row.user.pending", state="detached", timeout=30_000)
        assert len(sent) == 2 and sent[0] == sent[1] and sent[0]["message_id"]
        assert page.locator(".row.bot", has_text="10天育儿假").count() == 1
        assert page.locator(".row.user", has_text="育儿假有几天").count() == 1
        conversation = next(i["value"] for o in context.storage_state()["origins"] for i in o["localStorage"]
                            if i["name"] == "ordos.conversation")
        stored = user_events(stack, conversation.split(".")[0])
        assert [(e["text"], e["message_id"]) for e in stored] == [("育儿假有几天", sent[0]["message_id"])]
    finally:
        context.close()
