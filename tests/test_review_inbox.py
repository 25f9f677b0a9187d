"""The gap inbox through the real app: each filter, sorting, keyset paging, an item with
the conversation around it (read from a tracker store seeded as Rasa writes it), the
CSV export, masking, stored XSS, checks abandoned midway and the retention purge."""
import csv
import datetime as dt
import io
import re

import pytest
import sqlalchemy as sa

from bot.config import Settings
from bot.retention import purge
from bot.review import review_tags
from bot.reviewing import work
from bot.reviewing.conversations import scan_abandoned_checks
from desk_helpers import sign_in
from review_helpers import T0, Conversation, day, record, review_app

FALLBACK_RANKING = [{"name": "nlu_fallback", "confidence": 0.45}, {"name": "ask_delivery_subsidy", "confidence": 0.31},
                    {"name": "ask_prenatal_check_subsidy", "confidence": 0.22},
                    {"name": "ask_maternity_leave", "confidence": 0.05}]
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def ids_in(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-id="(\d+)"', html)]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    app = review_app(tmp_path_factory.mktemp("review-inbox"))
    tracker = app.ctx.test_tracker
    ids = {}
    # A citizen whose question the assistant could not place, in a real conversation.
    conv = Conversation(tracker, "citizen-a", T0 - dt.timedelta(minutes=5))
    conv.user("你好", "greet").bot("您好！请问您想了解哪方面的政策？", "greet")
    conv.user("产假有几天", "ask_maternity_leave").bot("产假……依据：《实施方案》二（四）1", "answer")
    conv.user("生孩子的钱啥时候到账", "nlu_fallback").bot("抱歉，我没有完全理解……", "fallback")
    ids["fallback"] = record(app, "unanswered", "citizen-a", "生孩子的钱啥时候到账", conv.at,
                             intent="ask_delivery_subsidy", confidence=0.31, detail={"ranking": FALLBACK_RANKING})
    conv.user("谢谢", "thank").bot("不客气！", "other")
    conv.user("再见", "goodbye").bot("再见！", "other")
    # Other kinds, on other days.
    ids["unhelpful"] = record(app, "unhelpful", "citizen-b", "产假多少天", T0 - dt.timedelta(days=1),
                              answer_id="maternity_leave")
    ids["helpful"] = record(app, "helpful", "citizen-b", "产假多少天", T0 - dt.timedelta(days=1, minutes=1),
                            answer_id="maternity_leave")
    ids["out_of_scope"] = record(app, "out_of_scope", "citizen-c", "今天天气怎么样", T0 - dt.timedelta(days=2),
                                 intent="out_of_scope", confidence=0.9)
    ids["low"] = record(app, "low_confidence", "citizen-d", "育兒補貼怎麼領", T0 - dt.timedelta(days=3),
                        intent="ask_childrearing_subsidy", confidence=0.55)
    ids["handoff"] = record(app, "handoff", "citizen-e", "护理假", T0 - dt.timedelta(days=4), intent="human_handoff",
                            answer_id="paternity_leave")
    ids["desk"] = record(app, "desk_no_result", "desk:sam", "生育津贴在哪领", T0 - dt.timedelta(days=5),
                         detail={"by": "sam"})
    ids["idcard"] = record(app, "unanswered", "citizen-f", "我的身份证号是150602199003071234，能领吗",
                           T0 - dt.timedelta(days=6), intent="ask_childrearing_subsidy", confidence=0.2)
    ids["xss"] = record(app, "unanswered", "citizen-g", XSS, T0 - dt.timedelta(days=7), intent="ask_delivery_subsidy",
                        confidence=0.1)
    # The Beijing day boundary: 15:59:59 UTC is 23:59:59 in Beijing, 16:00 UTC the next day.
    boundary = dt.datetime.combine(T0.date() - dt.timedelta(days=10), dt.time(15, 59, 59))
    ids["late"] = record(app, "unanswered", "citizen-h", "晚上的问题", boundary)
    ids["next_day"] = record(app, "unanswered", "citizen-h", "第二天的问题", boundary + dt.timedelta(seconds=1))
    app.ctx.ids = ids
    return app


@pytest.fixture(scope="module")
def policy(app):
    return sign_in(app, "policy")


def test_inbox_shows_every_gap_kind_but_not_praise(policy, app):
    resp = policy.get("/review")
    assert resp.status == 200
    shown = set(ids_in(resp.text))
    ids = app.ctx.ids
    assert shown == set(ids.values()) - {ids["helpful"]}
    for label in ("未能回答", "没帮助", "超出范围", "低置信度", "转人工", "坐席查无结果"):
        assert label in resp.text
    assert f"共 {len(shown)} 条" in resp.text


@pytest.mark.parametrize("query, expected", [
    ("kind=unhelpful", ["unhelpful"]),
    ("kind=unhelpful&kind=handoff", ["unhelpful", "handoff"]),
    ("from={d5}&to={d3}", ["desk", "low", "handoff"]),
    ("from={d10}&to={d10}", ["late"]),
    ("from={d9}&to={d9}", ["next_day"]),
    ("conf_min=0.3&conf_max=0.6", ["fallback", "low"]),
    ("conf_max=0.25", ["idcard", "xss"]),
    ("intent=ask_delivery_subsidy", ["fallback", "xss"]),
    ("intent=ask_maternity_leave", ["unhelpful"]),            # the answer given, for feedback items
    ("department=市人力资源和社会保障局", ["unhelpful", "handoff"]),
    ("department=市卫生健康委员会", ["fallback", "xss"]),
    ("department=市财政局", ["low", "idcard"]),
    ("department=__none__", ["out_of_scope", "desk", "late", "next_day"]),
    ("q=到账", ["fallback"]),
    ("q=育儿补贴", ["low"]),                                 # asked in traditional characters, searched in simplified
    ("q=產假", ["unhelpful"]),                               # and the other way round
    ("q=%25", []),                                            # LIKE wildcards are plain characters
    ("kind=helpful&status=any", ["helpful"]),
])
def test_each_filter_selects_exactly_its_items(policy, app, query, expected):
    resp = policy.get("/review?" + query.format(**{f"d{n}": day(n) for n in range(12)}))
    assert resp.status == 200, resp.text[:500]
    assert sorted(ids_in(resp.text)) == sorted(app.ctx.ids[k] for k in expected)


@pytest.mark.parametrize("query, field", [("from=2026-13-01", "日期"), ("conf_min=2", "置信度"), ("kind=nonsense", "原因"),
                                          ("department=某局", "部门"), ("sort=random", "排序"), ("size=7", "每页")])
def test_a_bad_filter_is_named_not_a_crash(policy, query, field):
    resp = policy.get("/review?" + query)
    assert resp.status == 400
    assert field in resp.text and "已忽略筛选条件" in resp.text


def test_sorting_by_time_and_by_confidence(policy, app):
    newest = ids_in(policy.get("/review").text)
    oldest = ids_in(policy.get("/review?sort=old").text)
    assert oldest == list(reversed(newest))
    by_conf = ids_in(policy.get("/review?sort=conf_asc").text)
    ids = app.ctx.ids
    assert by_conf == [ids["xss"], ids["idcard"], ids["fallback"], ids["low"], ids["out_of_scope"]]
    assert ids_in(policy.get("/review?sort=conf_desc").text) == list(reversed(by_conf))


def test_keyset_pages_cover_everything_once_and_go_back(tmp_path):
    app = review_app(tmp_path)
    store = app.ctx.review
    for i in range(65):   # several items share a second: the id breaks the tie
        store.record_at(T0 - dt.timedelta(seconds=i // 3), "unanswered", f"s{i}", f"问题{i}", confidence=(i % 7) / 10)
    policy = sign_in(app, "policy")
    for sort in ("new", "old", "conf_asc", "conf_desc"):
        seen, pages, url = [], [], f"/review?size=20&sort={sort}"
        while url:
            html = policy.get(url).text
            pages.append((url, ids_in(html)))
            seen += pages[-1][1]
            found = re.search(r'href="(/review\?[^"]*after=[^"]+)"', html)
            url = found.group(1).replace("&amp;", "&") if found else None
        assert len(seen) == 65 and len(set(seen)) == 65, sort
        assert [len(p) for _, p in pages] == [20, 20, 20, 5]
        back = re.search(r'href="(/review\?[^"]*before=[^"]+)"', policy.get(pages[2][0]).text).group(1)
        assert ids_in(policy.get(back.replace("&amp;", "&")).text) == pages[1][1], sort


def test_item_shows_guess_alternatives_department_and_the_conversation_around_it(policy, app):
    resp = policy.get(f"/review/items/{app.ctx.ids['fallback']}")
    assert resp.status == 200
    text = resp.text
    assert "分娩补贴（ask_delivery_subsidy，置信度 0.31）" in text       # the real best guess
    assert "孕检套餐补贴" in text and "0.22" in text and "nlu_fallback" not in text   # the next entries
    assert "市卫生健康委员会" in text
    assert "抱歉，我没有完全理解" in text                                   # the answer given, from the tracker
    conversation = re.search(r'<ol class="conversation">(.*?)</ol>', text, re.S).group(1)
    assert conversation.index("你好") < conversation.index("生孩子的钱啥时候到账") < conversation.index("再见")
    anchor = re.search(r'<li class="msg user anchor"[^>]*>(.*?)</li>', conversation, re.S).group(1)
    assert "生孩子的钱啥时候到账" in anchor
    assert "（rest）" in text   # the channel the tracker stored


def test_item_context_is_a_window_and_the_whole_conversation_on_request(tmp_path):
    app = review_app(tmp_path)
    conv = Conversation(app.ctx.test_tracker, "long-talk", T0 - dt.timedelta(hours=1))
    for i in range(12):
        conv.user(f"第{i}个问题", "ask_maternity_leave").bot(f"第{i}个答复")
    item = record(app, "unanswered", "long-talk", "第5个问题", T0 - dt.timedelta(hours=1) + dt.timedelta(seconds=6 * 20.5))
    policy = sign_in(app, "policy")
    window = policy.get(f"/review/items/{item}").text
    shown = re.findall(r"<p>(第\d+个(?:问题|答复))</p>", window)
    assert "第5个问题" in shown and len(shown) == 11
    assert "之前还有" in window and "之后还有" in window
    whole = policy.get(f"/review/items/{item}?whole=1").text
    assert len(re.findall(r"<p>第\d+个(?:问题|答复)</p>", whole)) == 24


def test_another_senders_conversation_is_never_shown(tmp_path):
    app = review_app(tmp_path)
    Conversation(app.ctx.test_tracker, "someone-else", T0 - dt.timedelta(seconds=30)).user("别人的问题")
    item = record(app, "unanswered", "not-in-tracker", "我的问题", T0)
    resp = sign_in(app, "policy").get(f"/review/items/{item}")
    assert "找不到对应的对话" in resp.text and "别人的问题" not in resp.text


def test_desk_items_have_no_conversation_and_say_so(policy, app):
    resp = policy.get(f"/review/items/{app.ctx.ids['desk']}")
    assert "坐席记录，没有市民对话" in resp.text and "坐席" in resp.text


def test_an_id_card_number_is_masked_in_the_store_and_on_every_page(policy, app):
    item = app.ctx.ids["idcard"]
    stored = next(r for r in app.ctx.review.items(limit=100) if r["id"] == item)["question"]
    assert "150602199003071234" not in stored and "*" in stored
    for path in (f"/review/items/{item}", "/review", f"/review/groups?from={day(11)}",
                 "/review/export.csv?status=any"):
        body = policy.get(path).text
        assert "199003071234" not in body and "150602199003071234" not in body, path


@pytest.mark.parametrize("path", ["/review", "/review/items/{xss}", "/review/groups?from={d11}",
                                  "/review/dashboard?from={d11}&to={d0}"])
def test_stored_markup_stays_text(policy, app, path):
    body = policy.get(path.format(xss=app.ctx.ids["xss"], d11=day(11), d0=day(0))).text
    assert "<script>alert" not in body and "<img src=x" not in body
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in body or "&lt;script&gt;alert" in body


def test_csv_of_the_filtered_inbox(policy, app):
    resp = policy.get("/review/export.csv?kind=unanswered&kind=unhelpful&status=any")
    assert resp.status == 200 and resp.headers["content-type"].startswith("text/csv")
    assert "attachment" in resp.headers["content-disposition"]
    assert resp.body.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(resp.body.decode("utf-8-sig"))))
    assert rows[0][:4] == ["编号", "时间（北京时间）", "原因", "问题（已遮盖）"]
    got = {int(r[0]) for r in rows[1:]}
    ids = app.ctx.ids
    assert got == {ids[k] for k in ("fallback", "unhelpful", "idcard", "xss", "late", "next_day")}
    fallback = next(r for r in rows[1:] if int(r[0]) == ids["fallback"])
    assert fallback[1].startswith(day(0) + " 1")   # the afternoon in Beijing
    assert fallback[4] == "ask_delivery_subsidy" and "ask_prenatal_check_subsidy 0.22" in fallback[6]
    assert fallback[8] == "市卫生健康委员会"
    audit = app.ctx.staff.audit_entries(5, action="review_export_csv")
    assert audit and audit[0]["actor"] == "pat"


def test_csv_cells_never_start_a_formula(tmp_path):
    app = review_app(tmp_path)
    app.ctx.review.record("unanswered", "s", "=HYPERLINK(\"http://evil.example\",\"点我\")")
    body = sign_in(app, "policy").get("/review/export.csv").body.decode("utf-8-sig")
    row = list(csv.reader(io.StringIO(body)))[1]
    assert row[3].startswith("'=HYPERLINK")


def test_checks_abandoned_midway_become_items_once(tmp_path):
    app = review_app(tmp_path)
    tracker, store, kb = app.ctx.test_tracker, app.ctx.review, app.ctx.kb
    left = Conversation(tracker, "left-midway", T0)
    left.user("我能领育儿补贴吗", "check_eligibility").slot("check_benefit", "childrearing_subsidy")
    left.slot("asked_fact", "hukou_ordos").bot("您家是鄂尔多斯市户籍吗？", "ask")
    finished = Conversation(tracker, "finished", T0)
    finished.user("我能领分娩补贴吗", "check_eligibility").slot("check_benefit", "delivery_subsidy")
    finished.user("是本地户口", "inform").slot("check_benefit", None).bot("符合条件", "verdict")
    restarted = Conversation(tracker, "restarted", T0)
    restarted.user("我能领育儿补贴吗", "check_eligibility").slot("check_benefit", "childrearing_subsidy").restart()
    still = Conversation(tracker, "still-talking", T0)
    still.user("我能领育儿补贴吗", "check_eligibility").slot("check_benefit", "childrearing_subsidy")
    still.at = T0 + dt.timedelta(minutes=50)
    still.user("等一下我查查", "other")
    now = (T0 + dt.timedelta(minutes=45)).replace(tzinfo=dt.timezone.utc).timestamp()
    reader = app.ctx.tracker
    assert scan_abandoned_checks(reader, store, kb, idle_minutes=30, now=now) == 1
    assert scan_abandoned_checks(reader, store, kb, idle_minutes=30, now=now + 60) == 0
    items = [i for i in store.items() if i["kind"] == "abandoned_check"]
    assert len(items) == 1
    assert items[0]["sender"] == store.hash_sender("left-midway")
    assert items[0]["question"] == "我能领育儿补贴吗" and items[0]["answer_id"] == "childrearing_subsidy"
    # The one still talking is looked at once it has been quiet long enough, and its check is still open.
    later = (T0 + dt.timedelta(minutes=90)).replace(tzinfo=dt.timezone.utc).timestamp()
    assert scan_abandoned_checks(reader, store, kb, idle_minutes=30, now=later) == 1
    page = sign_in(app, "policy").get("/review?kind=abandoned_check").text
    assert "核对中途放弃" in page and "二孩、三孩育儿补贴" in page and "鄂尔多斯市户籍" in page


def test_retention_purge_removes_old_items_and_their_tags(tmp_path):
    app = review_app(tmp_path)
    old = record(app, "unanswered", "s", "很久以前的问题", dt.datetime.utcnow() - dt.timedelta(days=40))
    new = record(app, "unanswered", "s", "最近的问题", dt.datetime.utcnow() - dt.timedelta(days=1))
    # Straight through bot.reviewing.work: a request would start the server, whose start runs the purge itself.
    work.apply(app.ctx.review.engine, app.ctx.kb, work.Actor("pat"), {"ids": [old, new], "action": "tag",
                                                                      "value": "跟进"}, app.ctx.staff.audit)
    result = purge(Settings(**{**app.ctx.settings.__dict__, "retention_days": 30}))
    assert result["review_items"] == 1 and not result["errors"]
    with app.ctx.review.engine.connect() as conn:
        assert [r[0] for r in conn.execute(sa.select(review_tags.c.item_id))] == [new]


def test_text_search_pages_cover_every_match_once_and_go_back(tmp_path):
    app = review_app(tmp_path)
    store = app.ctx.review
    for i in range(50):
        store.record_at(T0 - dt.timedelta(seconds=i // 4), "unanswered", f"s{i}",
                        f"{'公积金' if i % 2 else '产假'}问题{i}", confidence=(i % 5) / 10)
    policy = sign_in(app, "policy")
    for sort in ("new", "old", "conf_asc", "conf_desc"):
        everything = ids_in(policy.get(f"/review?q=公积金&sort={sort}&size=200").text)
        assert len(everything) == 25
        seen, pages, url = [], [], f"/review?q=公积金&size=20&sort={sort}"
        while url:
            html = policy.get(url).text
            assert "共 25 条" in html
            pages.append((url, ids_in(html)))
            seen += pages[-1][1]
            found = re.search(r'href="(/review\?[^"]*after=[^"]+)"', html)
            url = found.group(1).replace("&amp;", "&") if found else None
        assert seen == everything, sort          # the same order as one long page
        back = re.search(r'href="(/review\?[^"]*before=[^"]+)"', policy.get(pages[1][0]).text).group(1)
        assert ids_in(policy.get(back.replace("&amp;", "&")).text) == pages[0][1], sort
