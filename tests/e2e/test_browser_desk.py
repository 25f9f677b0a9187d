"""The hotline desk in a real browser (Debian chromium driven by Playwright),
against the real web app only: no Rasa is started, so the assistant panel must
show its "unavailable" state while search, cards and the checker all work."""
import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import requests

from bot.config import ROOT
from bot.knowledge import load_knowledge

pytestmark = pytest.mark.e2e

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts"
PORT = 18010
URL = f"http://127.0.0.1:{PORT}"
AGENT, PASSWORD = "desk-agent", "a long test password"
PYTHON = str(ROOT / ".venv" / "bin" / "python")


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """Only the web app, on temporary databases, with one staff account made by the CLI."""
    tmp = tmp_path_factory.mktemp("desk")
    env = {**os.environ, "VAR_DIR": str(tmp), "WEB_HOST": "127.0.0.1", "WEB_PORT": str(PORT),
           "REVIEW_DB_URL": f"sqlite:///{tmp / 'review.db'}", "STAFF_DB_URL": f"sqlite:///{tmp / 'staff.db'}",
           "RASA_URL": "http://127.0.0.1:9", "ACTION_SERVER_URL": "http://127.0.0.1:9"}
    made = subprocess.run([PYTHON, "-m", "bot.users", "add", AGENT, "--role", "staff"], input=PASSWORD + "\n",
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
        yield {"review_db": tmp / "review.db", "staff_db": tmp / "staff.db"}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)


def log_in(page):
    page.goto(URL + "/desk")
    assert "/login?next=" in page.url
    page.get_by_label("账号").fill(AGENT)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(URL + "/desk")


@pytest.fixture(scope="module")
def desk(browser, web):
    """One agent's shift: a signed-in page the tests below use in order."""
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=URL)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    log_in(page)
    yield page
    context.close()


def results_for(page, query):
    page.locator(f'#results[data-query="{query}"]').wait_for(state="attached", timeout=10000)
    return page.locator('#results [role="option"]')


def test_results_update_on_every_keystroke(desk):
    box = desk.get_by_role("combobox", name="查询")
    assert box.evaluate("el => el === document.activeElement")   # the box has focus on arrival
    seen = {}
    typed = ""
    for key in "yuerjia":
        box.press(key)
        typed += key
        options = results_for(desk, typed)
        seen[typed] = [o.inner_text().split("\n")[0] for o in options.all()[:3]]
    assert list(seen) == ["y", "yu", "yue", "yuer", "yuerj", "yuerji", "yuerjia"]
    assert seen["y"] == [] and seen["yu"] == []
    assert any("育儿" in t for t in seen["yuer"])
    assert "育儿假" in seen["yuerjia"][0]
    assert desk.locator("#results mark").first.inner_text() == "育儿假"
    assert desk.errors == []


def test_keyboard_moves_opens_copies_and_clears(desk):
    box = desk.get_by_role("combobox", name="查询")
    box.fill("")
    box.press_sequentially("pcj", delay=60)
    options = results_for(desk, "pcj")
    assert options.first.get_attribute("aria-selected") == "true"
    box.press("ArrowDown")
    assert options.nth(1).get_attribute("aria-selected") == "true"
    assert box.get_attribute("aria-activedescendant") == "opt-1"
    box.press("ArrowUp")
    assert options.first.get_attribute("aria-selected") == "true"
    box.press("Enter")
    card = desk.locator("#card")
    card.wait_for()
    assert desk.locator("#card-title").inner_text() == "男方护理假"
    assert "25天护理假" in desk.locator("#card-answer").inner_text()
    assert "《实施方案》二（四）1" in desk.locator("#card-clauses").inner_text()
    assert desk.locator("#card-departments").inner_text().strip()
    assert card.evaluate("el => el === document.activeElement")
    desk.keyboard.press("c")
    desk.get_by_text("已复制答复").wait_for()
    copied = desk.evaluate("navigator.clipboard.readText()")
    assert "25天护理假" in copied and "依据：《实施方案》二（四）1" in copied
    assert copied.rstrip().endswith("以官方发布的政策原文为准。")
    ARTIFACTS.mkdir(exist_ok=True)
    desk.screenshot(path=str(ARTIFACTS / "desk-card-1366x768.png"))
    desk.keyboard.press("Escape")
    assert box.input_value() == "" and box.evaluate("el => el === document.activeElement")
    assert desk.locator('#results [role="option"]').count() == 0
    desk.locator("#card-title").click()          # focus out of the box, then "/" brings it back
    desk.keyboard.press("/")
    assert box.evaluate("el => el === document.activeElement")


def test_assistant_panel_says_unavailable_without_rasa(desk):
    box = desk.get_by_role("combobox", name="查询")
    box.fill("陪产假有几天")
    unavailable = desk.locator('#parse [data-state="unavailable"]')
    unavailable.wait_for(timeout=10000)
    assert "暂不可用" in unavailable.inner_text()


def test_checker_reaches_a_verdict_and_names_the_next_question(desk):
    desk.get_by_label("核对哪项").select_option("childrearing_subsidy")
    kb = load_knowledge(ROOT / "knowledge")
    rule_order = [c.fact for c in kb.benefits["childrearing_subsidy"].conditions]
    fields = desk.locator("#facts .fact")
    assert [f.locator("legend, label").first.inner_text() for f in fields.all()] == [
        kb.facts[f].label for f in rule_order]
    desk.locator("#field-hukou_ordos").get_by_text("是", exact=True).click()
    desk.locator("#field-child_order").fill("2")
    desk.locator("#field-born_under_policy").get_by_text("是", exact=True).click()
    verdict = desk.locator('#verdict .verdict[data-benefit="childrearing_subsidy"]')
    desk.locator("#verdict .verdict.eligible").wait_for(timeout=10000)
    assert "符合条件" in verdict.inner_text() and "《实施方案》二（四）2" in verdict.inner_text()
    desk.locator("#field-born_under_policy").get_by_text("未知", exact=True).click()
    desk.locator("#verdict .verdict.unknown").wait_for(timeout=10000)
    text = verdict.inner_text()
    assert "还需确认" in text and "下一个要问：" in text
    ask = kb.question_for("childrearing_subsidy", "born_under_policy") if hasattr(kb, "question_for") \
        else kb.facts["born_under_policy"].ask
    assert desk.locator("#verdict .ask-text").inner_text() == ask
    desk.screenshot(path=str(ARTIFACTS / "desk-checker-unknown-1366x768.png"))


def test_flag_on_a_card_is_stored(desk, web):
    box = desk.get_by_role("combobox", name="查询")
    box.fill("")
    box.press_sequentially("保租房", delay=60)
    results_for(desk, "保租房")
    box.press("Enter")
    desk.locator("#card").wait_for()
    desk.get_by_label("反馈补充说明（可选）").fill("来电人说已停办")
    desk.locator("#card").get_by_role("button", name="已过时").click()
    desk.get_by_text("已记录“已过时”").wait_for()
    rows = sqlite3.connect(web["review_db"]).execute(
        "select kind, question, answer_id, detail from review_items where kind = 'desk_flag'").fetchall()
    kind, question, answer_id, detail = rows[-1]
    assert (question, answer_id) == ("保租房", "rental_housing")
    assert json.loads(detail)["by"] == AGENT and json.loads(detail)["note"] == "来电人说已停办"


def test_a_search_that_finds_nothing_is_recorded(desk, web):
    box = desk.get_by_role("combobox", name="查询")
    box.fill("火星移民签证")
    assert results_for(desk, "火星移民签证").count() == 0
    assert "没有找到" in desk.locator("#search-status").inner_text()
    deadline = time.monotonic() + 15   # the page reports it once the agent stops typing
    while time.monotonic() < deadline:
        rows = sqlite3.connect(web["review_db"]).execute(
            "select question, detail from review_items where kind = 'desk_no_result'").fetchall()
        if rows:
            break
        time.sleep(0.3)
    assert [(q, json.loads(d)["by"]) for q, d in rows] == [("火星移民签证", AGENT)]


def test_department_directory_filters(desk):
    desk.get_by_role("tab", name="部门目录").click()
    all_count = desk.locator("#directory > .dept").count()
    desk.get_by_label("筛选部门或事项").fill("公积金")
    shown = desk.locator("#directory > .dept:visible")
    assert 0 < shown.count() < all_count
    assert all("公积金" in t for t in shown.all_inner_texts())   # in a related answer's title at least
    desk.get_by_role("tab", name="资格核对").click()


def test_no_serious_or_critical_accessibility_violations(browser, web):
    if not AXE.exists():
        pytest.fail("axe-core is missing: run `npm ci`")
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN", bypass_csp=True)
    page = context.new_page()
    try:
        page.goto(URL + "/login")
        page.screenshot(path=str(ARTIFACTS / "desk-login-1366x768.png"))
        bad = axe_problems(page)
        log_in(page)
        page.get_by_role("combobox", name="查询").press_sequentially("fmbt", delay=50)
        results_for(page, "fmbt")
        page.keyboard.press("Enter")
        page.locator("#card").wait_for()
        page.locator("#verdict .verdict").first.wait_for()
        bad += axe_problems(page)
        page.get_by_role("tab", name="部门目录").click()
        bad += axe_problems(page)
    finally:
        context.close()
    assert bad == []


def axe_problems(page):
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa']}})")
    return [(page.url, v["id"], v["impact"], [n["target"] for n in v["nodes"]]) for v in result["violations"]
            if v["impact"] in ("serious", "critical")]


def test_logout(desk):
    desk.get_by_role("button", name="退出").click()
    desk.wait_for_url(URL + "/login?bye=1")
    assert "您已退出" in desk.content()
    desk.goto(URL + "/desk")
    assert "/login?next=" in desk.url
