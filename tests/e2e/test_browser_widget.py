"""The citizen chat in a real browser (Debian chromium driven by Playwright),
against the real web app, Rasa and action server."""
from pathlib import Path

import pytest

from bot.config import ROOT

pytestmark = pytest.mark.e2e

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture
def page(browser, stack):
    context = browser.new_context(viewport={"width": 375, "height": 667}, locale="zh-CN", has_touch=True,
                                  is_mobile=True, device_scale_factor=2)
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.requests = []
    page.on("request", lambda request: page.requests.append(request))
    page.goto(stack.web_url + "/")
    page.get_by_role("button", name="我知道了").click()
    page.wait_for_selector(".row.bot")  # welcome message
    yield page
    context.close()


def wait_for_new_bot_message(page, before):
    # No wait_for_function: the page's CSP forbids eval, as it should.
    page.locator(".row.bot").nth(before).wait_for(timeout=20000)
    page.wait_for_selector("#typing", state="hidden", timeout=20000)


def ask(page, text):
    before = page.locator(".row.bot").count()
    page.get_by_label("输入您的问题").fill(text)
    page.get_by_role("button", name="发送").click()
    wait_for_new_bot_message(page, before)
    return page.locator(".row.bot").nth(before)


def test_answer_with_clause_link_that_opens_the_clause(page):
    answer = ask(page, "育儿假有几天")
    assert "10天育儿假" in answer.inner_text()
    answer.get_by_role("button", name="查看政策原文 二（四）1").click()
    sheet = page.get_by_role("dialog", name="《实施方案》二（四）1 完善生育保障制度")
    assert "25天护理假" in sheet.inner_text()
    sheet.get_by_role("button", name="关闭").click()
    assert page.locator("#sheet").is_hidden()


def test_quick_reply_is_tapped_once_and_stays_readable(page):
    ask(page, "分娩补贴给多少")
    # The answer's follow-ups sit above the feedback row (有帮助/没帮助).
    group = page.locator(".quick").nth(page.locator(".quick").count() - 2)
    button = group.locator("button").first
    label = button.inner_text()
    before = page.locator(".row.bot").count()
    button.click()
    wait_for_new_bot_message(page, before)
    assert button.is_disabled() and button.inner_text() == label
    assert page.locator(".row.user").last.inner_text().endswith(label)


def test_eligibility_dialogue_to_its_verdict_with_buttons(page):
    # The mother's registration and the child's order come from the question; the rest by buttons.
    ask(page, "我是孩子妈妈，鄂尔多斯户口，生了二胎，能领分娩补贴吗")
    for _ in range(2):
        before = page.locator(".row.bot").count()
        page.locator(".quick").last.get_by_role("button", name="是", exact=True).click()
        wait_for_new_bot_message(page, before)
    verdict = page.locator(".row.bot", has_text="【二孩、三孩分娩补贴】符合")
    verdict.wait_for(timeout=20000)
    assert "依据：《实施方案》二（二）2" in verdict.inner_text()
    assert "办理部门：市卫生健康委员会" in verdict.inner_text()


def stored(page, stack) -> dict:
    """The page's localStorage, read without running script in it (its CSP forbids eval)."""
    for origin in page.context.storage_state()["origins"]:
        if origin["origin"] == stack.web_url:
            return {i["name"]: i["value"] for i in origin["localStorage"]}
    return {}


def test_reload_restores_the_conversation(page, stack):
    ask(page, "暖心家园是什么")
    page.reload()
    page.wait_for_selector("text=暖心家园是什么")
    assert "每个旗区要建成1所" in page.locator("#log").inner_text()
    # The conversation id was issued by the web app and travels in a header, never in a URL.
    conversation = stored(page, stack)["ordos.conversation"]
    history = [r for r in page.requests if r.url.endswith("/api/history")]
    assert history and history[-1].headers["x-conversation-id"] == conversation
    assert not [r.url for r in page.requests if conversation.split(".")[0] in r.url]
    # Rasa knows the conversation by the id's value part.
    events = stack.tracker(conversation.split(".")[0])["events"]
    assert any(e.get("event") == "user" and e.get("text") == "暖心家园是什么" for e in events)


def test_script_and_javascript_links_are_shown_as_text(page):
    ask(page, "<img src=x onerror=alert(1)>")
    ask(page, "[x](javascript:alert(1))")
    ask(page, "[y](/\\evil.example) [z](//evil.example)")
    page.wait_for_timeout(500)
    log = page.locator("#log")
    assert "<img src=x onerror=alert(1)>" in log.inner_text()
    assert "[x](javascript:alert(1))" in log.inner_text()
    assert "[y](/\\evil.example)" in log.inner_text()
    assert page.locator("#log img").count() == 0
    assert page.locator("#log a[href^='javascript']").count() == 0
    assert page.locator("#log a[href*='evil']").count() == 0
    assert page.dialogs == []


def test_over_long_message_is_refused_with_a_note(page):
    page.get_by_label("输入您的问题").fill("长" * 501)
    assert page.get_by_role("button", name="发送").is_disabled()
    assert "超过500字上限" in page.locator("#limit").inner_text()


def test_message_sent_offline_is_delivered_later(page):
    page.context.set_offline(True)
    page.get_by_label("输入您的问题").fill("产假有多少天")
    page.get_by_role("button", name="发送").click()
    page.wait_for_selector("#banner:not([hidden])")
    assert "不会丢失" in page.locator("#banner").inner_text()
    page.context.set_offline(False)
    page.wait_for_selector("text=天数以《条例》规定为准", timeout=30000)
    assert page.locator("#banner").is_hidden()


def test_screenshots_mobile_and_desktop(page, browser, stack):
    ask(page, "生二孩有什么补贴")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat-mobile-375x667.png"))
    desktop = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    d = desktop.new_page()
    d.goto(stack.web_url + "/")
    d.get_by_role("button", name="我知道了").click()
    d.wait_for_selector(".row.bot")
    d.screenshot(path=str(ARTIFACTS / "chat-desktop-1280x800.png"))
    desktop.close()
    assert (ARTIFACTS / "chat-mobile-375x667.png").stat().st_size > 10_000


def host_site(tmp_path, stack, port):
    """A government page on another origin (another local port) that includes the one script tag."""
    import functools
    import http.server
    import threading

    (tmp_path / "index.html").write_text(
        f'<html lang="zh-CN"><body><h1>政务网站</h1><script src="{stack.web_url}/widget.js"></script></body></html>',
        encoding="utf-8")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_embeddable_widget_opens_the_chat(browser, stack, tmp_path):
    # 18001 is listed in EMBED_ORIGINS (tests/e2e/conftest.py).
    server = host_site(tmp_path, stack, 18001)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.goto("http://127.0.0.1:18001/")
        page.get_by_role("button", name="打开生育政策智能助手").click()
        frame = page.frame_locator("iframe[title='生育政策智能助手']")
        frame.get_by_role("button", name="我知道了").click()
        frame.locator(".row.bot").first.wait_for()
        assert "生育支持政策智能助手" in frame.locator("#log").inner_text()
        # The chat inside the host page works: its requests go to its own origin.
        before = frame.locator(".row.bot").count()
        frame.get_by_label("输入您的问题").fill("育儿假有几天")
        frame.get_by_role("button", name="发送").click()
        frame.locator(".row.bot").nth(before).wait_for(timeout=20000)
        frame.locator("text=10天育儿假").first.wait_for(timeout=20000)
    finally:
        context.close()
        server.shutdown()


def test_a_site_not_listed_cannot_frame_the_chat(browser, stack, tmp_path):
    server = host_site(tmp_path, stack, 18002)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.goto("http://127.0.0.1:18002/")
        with page.expect_response(lambda r: r.url.startswith(stack.web_url + "/?embed=1")) as framed:
            page.get_by_role("button", name="打开生育政策智能助手").click()
        assert framed.value.headers["content-security-policy"].endswith(
            "frame-ancestors 'self' http://127.0.0.1:18001")
        frame = page.locator("iframe[title='生育政策智能助手']").element_handle().content_frame()
        frame.wait_for_load_state("load")
        assert frame.url.startswith("chrome-error:")  # the browser refused to show it
        assert frame.locator("#log").count() == 0
    finally:
        context.close()
        server.shutdown()


def test_accessibility_has_no_serious_or_critical_violations(browser, stack):
    if not AXE.exists():
        pytest.fail("axe-core is missing: run `npm ci`")
    context = browser.new_context(viewport={"width": 375, "height": 667}, bypass_csp=True)
    page = context.new_page()
    page.goto(stack.web_url + "/")
    page.get_by_role("button", name="我知道了").click()
    page.wait_for_selector(".row.bot")
    page.get_by_label("输入您的问题").fill("育儿假有几天")
    page.keyboard.press("Enter")  # keyboard operable
    wait_for_new_bot_message(page, 1)
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa']}})")
    bad = [(v["id"], v["impact"], len(v["nodes"])) for v in result["violations"] if v["impact"] in ("serious", "critical")]
    context.close()
    assert bad == []
