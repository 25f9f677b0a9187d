"""The policy team's review workspace in a real browser (Debian chromium driven by
Playwright), against the real web app only, on databases this test seeds: a policy
account, review items and a tracker store written as Rasa writes it. No Rasa runs."""
import datetime as dt
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from bot.config import ROOT

pytestmark = pytest.mark.e2e

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts"
PORT = 18020
URL = f"http://127.0.0.1:{PORT}"
LEAD, PASSWORD = "policy-lead", "a long test password"
SALT = "review-browser-test-salt"
PYTHON = str(ROOT / ".venv" / "bin" / "python")
ITEM_PAGE = re.compile(r".*/review/items/\d+(\?.*)?$")
GROUP_PAGE = re.compile(r".*/review/groups/\d+(\?.*)?$")
PATERNITY = ["我老婆生孩子我能休几天护理假呀", "老婆生孩子老公能休几天护理假", "媳妇生孩子我能休几天护理假",
             "老婆生娃我能休几天护理假啊", "我老婆生孩子我能请几天护理假"]
RENTAL = ["公租房怎么申请", "公租房如何申请", "怎么申请公租房"]
XSS = '<img src=x onerror="window.__xss=1">生育津贴<script>window.__xss=2</script>'


def seed(tmp: Path) -> dict:
    """Review items (recent, inside the retention period) and the conversations behind some of them."""
    from bot.review import ReviewStore
    from bot.reviewing.conversations import events

    store = ReviewStore(f"sqlite:///{tmp / 'review.db'}", salt=SALT)
    tracker = sa.create_engine(f"sqlite:///{tmp / 'tracker.db'}", future=True)
    events.metadata.create_all(tracker)
    now = dt.datetime.utcnow().replace(microsecond=0)

    def talk(sender, at, text, intent, reply, kind):
        ts = at.replace(tzinfo=dt.timezone.utc).timestamp()
        with tracker.begin() as conn:
            conn.execute(events.insert(), [
                {"sender_id": sender, "type_name": "user", "timestamp": ts - 1, "intent_name": intent,
                 "data": json.dumps({"event": "user", "text": text, "input_channel": "rest"}, ensure_ascii=False)},
                {"sender_id": sender, "type_name": "bot", "timestamp": ts - 0.5, "intent_name": None,
                 "data": json.dumps({"event": "bot", "text": reply, "data": {"custom": {"kind": kind}}},
                                    ensure_ascii=False)}])

    ranking = [{"name": "nlu_fallback", "confidence": 0.45}, {"name": "ask_paternity_leave", "confidence": 0.4},
               {"name": "ask_maternity_leave", "confidence": 0.2}]
    for i, text in enumerate(PATERNITY):
        at = now - dt.timedelta(hours=3 * i + 1)
        talk(f"p{i}", at, text, "nlu_fallback", "抱歉，我没有完全理解您的问题。", "fallback")
        store.record_at(at, "unanswered", f"p{i}", text, intent="ask_paternity_leave", confidence=0.4,
                        detail={"ranking": ranking})
    for i, text in enumerate(RENTAL):
        at = now - dt.timedelta(days=1, hours=i)
        talk(f"r{i}", at, text, "out_of_scope", "抱歉，这个问题不在方案范围内。", "out_of_scope")
        store.record_at(at, "out_of_scope", f"r{i}", text, intent="out_of_scope", confidence=0.8)
    store.record_at(now - dt.timedelta(days=2), "unanswered", "x", XSS, intent="ask_delivery_subsidy", confidence=0.2)
    for day in range(7):   # a week of questions and feedback for the dashboard
        at = now - dt.timedelta(days=day, hours=2)
        for k in range(3 + day):
            talk(f"d{day}-{k}", at - dt.timedelta(minutes=k), "产假有几天", "ask_maternity_leave", "产假……", "answer")
        store.record_at(at, "helpful", f"d{day}", "产假有几天", answer_id="maternity_leave")
        if day % 2:
            store.record_at(at, "unhelpful", f"d{day}", "育儿补贴怎么领", answer_id="childrearing_subsidy")
    tracker.dispose()
    return {"review": store}


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """Only the web app, on the seeded databases, with one policy account made by the CLI."""
    tmp = tmp_path_factory.mktemp("review-browser")
    seeded = seed(tmp)
    env = {**os.environ, "VAR_DIR": str(tmp), "WEB_HOST": "127.0.0.1", "WEB_PORT": str(PORT),
           "REVIEW_DB_URL": f"sqlite:///{tmp / 'review.db'}", "STAFF_DB_URL": f"sqlite:///{tmp / 'staff.db'}",
           "TRACKER_DB_URL": f"sqlite:///{tmp / 'tracker.db'}", "TRACKER_DB_DIALECT": "sqlite",
           "REVIEW_SALT": SALT, "RASA_URL": "http://127.0.0.1:9", "ACTION_SERVER_URL": "http://127.0.0.1:9"}
    made = subprocess.run([PYTHON, "-m", "bot.users", "add", LEAD, "--role", "policy"], input=PASSWORD + "\n",
                          text=True, capture_output=True, cwd=ROOT, env=env, timeout=120)
    assert made.returncode == 0, made.stderr
    log = (tmp / "web.log").open("w")
    proc = subprocess.Popen([PYTHON, "-m", "bot.web"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (tmp / "web.log").read_text()
            try:
                if requests.get(URL + "/login", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "web app did not start"
            time.sleep(0.3)
        yield {**seeded, "tmp": tmp}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)


def log_in(page, path="/review"):
    page.goto(URL + path)
    assert "/login?next=" in page.url
    page.get_by_label("账号").fill(LEAD)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(URL + path)


@pytest.fixture(scope="module")
def lead(browser, web):
    """One policy lead's session: a signed-in page the tests below use in order."""
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN", accept_downloads=True)
    page = context.new_page()
    page.errors, page.dialogs = [], []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    log_in(page)
    yield page
    context.close()


def rows(page):
    return page.locator("#items tbody tr.item-row")


def test_filter_the_inbox(lead):
    assert rows(lead).count() == len(PATERNITY) + len(RENTAL) + 1 + 3   # the gaps; 有帮助 is not one
    ARTIFACTS.mkdir(exist_ok=True)
    lead.screenshot(path=str(ARTIFACTS / "review-inbox-1366x768.png"))
    lead.get_by_label("问题文字").fill("公租房")
    lead.get_by_label("问题文字").press("Enter")
    lead.wait_for_url("**q=*")
    assert rows(lead).count() == len(RENTAL)
    assert all("公租房" in t for t in rows(lead).locator("td.question").all_inner_texts())
    lead.goto(URL + "/review")
    lead.get_by_label("超出范围").check()
    lead.get_by_role("button", name="筛选", exact=True).click()
    lead.wait_for_url("**kind=out_of_scope*")
    assert rows(lead).count() == len(RENTAL)
    assert lead.errors == []


def test_open_a_group_and_assign_an_intent_by_keyboard(lead, web):
    lead.goto(URL + "/review/groups")
    first = lead.locator("#groups tr.group-row").first
    assert "我老婆生孩子" in first.inner_text() or "护理假" in first.inner_text()
    lead.keyboard.press("j")                       # lands on the first (biggest) group
    assert first.evaluate("el => el === document.activeElement")
    lead.keyboard.press("Enter")
    lead.wait_for_url(GROUP_PAGE)
    assert rows(lead).count() == len(PATERNITY)
    lead.keyboard.press("a")
    dialog = lead.get_by_role("dialog", name="归入已有意图")
    dialog.wait_for()
    assert "作用于 5 条" in dialog.inner_text()
    lead.keyboard.type("ask_paternity_leave")
    lead.keyboard.press("Enter")
    dialog.wait_for(state="hidden")
    lead.locator("#review-status", has_text="已将 5 条归入意图").wait_for()
    assert rows(lead).locator(".status-label").all_inner_texts() == ["已归入意图"] * 5
    assert all("男方护理假" in t for t in rows(lead).locator(".assigned").all_inner_texts())
    lead.screenshot(path=str(ARTIFACTS / "review-group-1366x768.png"))
    stored = [i for i in web["review"].items(limit=100) if i["question"] in PATERNITY]
    assert {(i["status"], i["assigned_intent"]) for i in stored} == {("accepted", "ask_paternity_leave")}
    assert lead.errors == []


def test_an_item_shows_the_conversation_around_it(lead):
    lead.goto(URL + "/review?kind=out_of_scope")
    rows(lead).first.locator("td.question a").click()
    lead.wait_for_url(ITEM_PAGE)
    conversation = lead.locator("ol.conversation")
    assert "抱歉，这个问题不在方案范围内。" in conversation.inner_text()
    assert "公租房" in lead.locator("li.msg.anchor").inner_text()


def test_export_the_accepted_examples(lead):
    lead.goto(URL + "/review/export")
    assert "可以导出（5 句）" in lead.content()
    with lead.expect_download() as info:
        lead.get_by_role("button", name="下载 review_export.yml").click()
    text = Path(info.value.path()).read_text(encoding="utf-8")
    assert text.startswith("# Generated by the review workspace export")
    assert "- intent: ask_paternity_leave" in text
    assert all(f"    - {q}" in text for q in PATERNITY)


def test_dashboard_renders_its_charts(lead):
    lead.goto(URL + "/review/dashboard")
    daily = lead.locator("svg#chart-daily")
    daily.wait_for()
    assert daily.locator("rect.chart-bar").count() == 7
    assert daily.locator("polyline.rate").count() == 1              # the unanswered rate
    for chart in ("chart-topics", "chart-groups", "chart-unhelpful", "chart-departments"):
        assert lead.locator(f"svg#{chart} rect.chart-bar").count() >= 1, chart
    assert "产假" in lead.locator("svg#chart-topics").inner_html()
    assert "二孩、三孩育儿补贴" in lead.locator("svg#chart-unhelpful").inner_html()
    box = daily.bounding_box()
    assert box["width"] > 300 and box["height"] > 100
    ARTIFACTS.mkdir(exist_ok=True)
    lead.screenshot(path=str(ARTIFACTS / "review-dashboard-1366x768.png"), full_page=True)
    assert lead.errors == []


def test_stored_markup_renders_as_text(lead):
    lead.goto(URL + "/review?q=" + "生育津贴")
    cell = rows(lead).first.locator("td.question")
    assert cell.inner_text() == XSS
    cell.locator("a").click()
    lead.wait_for_url(ITEM_PAGE)
    assert XSS in lead.locator("blockquote").inner_text()
    assert lead.evaluate("window.__xss") is None
    assert lead.locator("img[src='x']").count() == 0
    assert lead.dialogs == []


def test_no_serious_or_critical_accessibility_violations(browser, web):
    if not AXE.exists():
        pytest.fail("axe-core is missing: run `npm ci`")
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN", bypass_csp=True)
    page = context.new_page()
    try:
        log_in(page)
        bad = axe_problems(page)
        for path in ("/review/groups", "/review/dashboard", "/review/export", "/review/topics"):
            page.goto(URL + path)
            bad += axe_problems(page)
        page.goto(URL + "/review/groups")
        page.locator("#groups tr.group-row a.rep").first.click()
        page.wait_for_url(GROUP_PAGE)
        bad += axe_problems(page)
        page.keyboard.press("n")            # the new-topic dialog, open
        page.get_by_role("dialog", name="标为新主题").wait_for()
        bad += axe_problems(page)
        page.keyboard.press("Escape")
        page.locator("#items td.question a").first.click()
        page.wait_for_url(ITEM_PAGE)
        bad += axe_problems(page)
    finally:
        context.close()
    assert bad == []


def axe_problems(page):
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa']}})")
    return [(page.url, v["id"], v["impact"], [(n["target"], n.get("failureSummary")) for n in v["nodes"]]) for v in result["violations"]
            if v["impact"] in ("serious", "critical")]
