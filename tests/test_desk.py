"""The hotline desk through the real app: page, search cards, what the assistant
would do, eligibility, flags and zero-result searches in the review store; and
each answer's 口播稿 held to the plan like the answer text."""
import dataclasses
import datetime as dt
import http.server
import json
import re
import threading
from urllib.parse import parse_qs, urlparse

import pytest

from bot.config import ROOT
from bot.knowledge import load_knowledge
from bot.web.desk import OFFICIAL_TEXT, PARSE_UNAVAILABLE
from desk_helpers import sign_in, staff_app  # noqa: F401
from test_knowledge_integrity import numbers_in

ANSWER_IDS = sorted(load_knowledge(ROOT / "knowledge").answers)
MAX_SCRIPT_CHARS = 80


@pytest.fixture(scope="module")
def agent(staff_app):
    return sign_in(staff_app, "staff")


# -- the page ------------------------------------------------------------------------------
def test_desk_page_carries_the_checker_in_rule_order_and_the_directory(agent, kb):
    resp = agent.get("/desk")
    assert resp.status == 200
    data = json.loads(re.search(r'<script type="application/json" id="checker-data">(.*?)</script>', resp.text,
                                re.S).group(1))
    by_id = {b["id"]: b for b in data["benefits"]}
    assert set(by_id) == set(kb.benefits)
    for benefit in kb.benefits.values():
        expected = []
        for cond in benefit.conditions:
            if getattr(cond, "timing", False):
                continue
            for fact in kb.facts[cond.fact].derived_from or (cond.fact,):
                if fact != "today" and fact not in expected:
                    expected.append(fact)
        assert by_id[benefit.id]["facts"] == expected, benefit.id
    assert set(data["order"]) == set(data["facts"])
    for name in kb.departments:
        assert name in resp.text
    assert 'src="/static/desk.js"' in resp.text and 'type="module"' in resp.text
    assert agent.csrf in resp.text


def test_static_files_load_without_a_build_step(staff_app):
    for name, kind in (("desk.js", "javascript"), ("desk.css", "text/css")):
        _, resp = staff_app.test_client.get(f"/static/{name}")
        assert resp.status == 200 and kind in resp.headers["content-type"]
    _, js = staff_app.test_client.get("/static/desk.js")
    assert js.text == (ROOT / "bot" / "web" / "static" / "desk.js").read_text(encoding="utf-8")   # served as written


# -- search cards ------------------------------------------------------------------------------
def test_search_returns_whole_cards_answers_then_clauses(agent, kb):
    resp = agent.get("/desk/api/search?q=pcj")
    assert resp.status == 200
    top = resp.json["answers"][0]
    answer = kb.answers["paternity_leave"]
    assert top["id"] == "paternity_leave" and top["text"] == answer.text
    assert top["script"] == getattr(answer, "script", "")
    assert "<mark>" in top["highlighted"]
    assert top["copy"] == f"{answer.text}\n依据：{top['citation']}\n{OFFICIAL_TEXT}"
    assert top["citation"] == "《实施方案》" + "、".join(kb.clauses[c].label for c in answer.clauses)
    assert [c["text"] for c in top["clauses"]] == [kb.clauses[c].text for c in answer.clauses]
    assert top["departments"]["lead"]
    clause = resp.json["clauses"][0]
    assert clause["text"] == kb.clauses[clause["id"]].text
    assert clause["copy"].endswith(OFFICIAL_TEXT) and clause["citation"] in clause["copy"]


def test_search_escapes_what_it_echoes(agent):
    resp = agent.get("/desk/api/search", params={"q": "<script>alert(1)</script>产假"})
    assert resp.status == 200
    for hit in resp.json["answers"] + resp.json["clauses"]:
        assert "<script>" not in hit["highlighted"]


@pytest.mark.parametrize("query, status", [("", 400), ("产" * 201, 400)])
def test_search_refuses_empty_and_over_long_queries(agent, query, status):
    assert agent.get("/desk/api/search", params={"q": query}).status == status


# -- what the assistant would do ------------------------------------------------------------------
def test_parse_when_rasa_is_down_says_unavailable(agent):
    resp = agent.get("/desk/api/parse", params={"q": "陪产假几天"})
    assert resp.status == 200
    assert resp.json == {"available": False, "message": PARSE_UNAVAILABLE}


class FakeRasa(http.server.BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        FakeRasa.seen.append((self.path, body))
        reply = {"text": body["text"], "intent": {"name": "ask_paternity_leave", "confidence": 0.62},
                 "intent_ranking": [{"name": "ask_paternity_leave", "confidence": 0.62},
                                    {"name": "ask_parental_leave", "confidence": 0.3},
                                    {"name": "inform", "confidence": 0.05},
                                    {"name": "greet", "confidence": 0.02},
                                    {"name": "deny", "confidence": 0.01}],
                 "entities": [{"entity": "benefit", "value": "paternity_leave"}]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_rasa(staff_app):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeRasa)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    before = staff_app.ctx.settings
    staff_app.ctx.settings = dataclasses.replace(before, rasa_url=f"http://127.0.0.1:{server.server_port}",
                                                 rasa_token="secret-token-123")
    FakeRasa.seen = []
    yield FakeRasa
    staff_app.ctx.settings = before
    server.shutdown()


def test_parse_shows_intent_confidence_and_alternatives_without_the_token(agent, fake_rasa):
    resp = agent.get("/desk/api/parse", params={"q": "陪产假几天 13912345678"})
    assert resp.status == 200
    data = resp.json
    assert data["available"] is True
    assert data["intent"] == {"name": "ask_paternity_leave", "label": "男方护理假", "confidence": 0.62}
    assert [a["name"] for a in data["alternatives"]] == ["ask_parental_leave", "inform", "greet"]
    assert data["alternatives"][1]["label"] == "提供信息"
    assert data["entities"] == [{"entity": "benefit", "value": "paternity_leave"}]
    path, body = fake_rasa.seen[0]
    assert urlparse(path).path == "/model/parse"
    assert parse_qs(urlparse(path).query)["token"] == ["secret-token-123"]
    assert "13912345678" not in body["text"]          # masked before it leaves the app
    assert "secret-token-123" not in resp.text


# -- eligibility ------------------------------------------------------------------------------------
def test_checker_reaches_a_verdict_with_reasons_and_clauses(agent):
    facts = {"hukou_ordos": True, "child_order": 2, "born_under_policy": True}
    resp = agent.post("/desk/api/eligibility", {"facts": facts, "benefits": ["childrearing_subsidy"]})
    assert resp.status == 200
    [result] = resp.json["results"]
    assert result["status"] == "eligible" and "next_question" not in result
    assert all(r["met"] is True and r["citation"].startswith("《实施方案》") for r in result["reasons"])
    assert result["citation"] == "《实施方案》二（四）2"


def test_checker_unknown_names_the_next_question(agent, kb):
    resp = agent.post("/desk/api/eligibility",
                      {"facts": {"hukou_ordos": True, "child_order": ""}, "benefits": ["childrearing_subsidy"]})
    [result] = resp.json["results"]
    assert result["status"] == "unknown"
    fact = result["missing"][0]
    ask = kb.question_for("childrearing_subsidy", fact) if hasattr(kb, "question_for") else kb.facts[fact].ask
    assert result["next_question"] == {"fact": fact, "label": kb.facts[fact].label, "ask": ask}


def test_checker_for_all_benefits_and_bad_facts(agent, kb):
    resp = agent.post("/desk/api/eligibility", {"facts": {"children_count": 3}})
    assert {r["benefit"] for r in resp.json["results"]} == set(kb.benefits)
    bad = agent.post("/desk/api/eligibility", {"facts": {"child_order": 99}})
    assert bad.status == 400 and bad.json["error"]["field"] == "child_order"
    assert agent.post("/desk/api/eligibility", {"facts": {}, "benefits": ["free_money"]}).status == 400


# -- flags and zero-result searches in the review store ---------------------------------------------------
def test_flag_on_a_card_is_stored_masked_with_who_flagged(agent, staff_app):
    resp = agent.post("/desk/api/flag", {"flag": "wrong", "target_kind": "answer", "target_id": "paternity_leave",
                                         "query": "pcj 来电 13912345678", "note": "天数有争议"})
    assert resp.status == 200 and resp.json["label"] == "答复有误"
    item = staff_app.ctx.review.items(kind="desk_flag")[0]
    assert item["answer_id"] == "paternity_leave"
    assert "13912345678" not in item["question"] and item["question"].startswith("pcj 来电 139")
    detail = json.loads(item["detail"])
    assert detail["flag"] == "wrong" and detail["label"] == "答复有误" and detail["by"] == "sam"
    assert staff_app.ctx.staff.audit_entries(limit=1, action="flag")[0]["actor"] == "sam"


@pytest.mark.parametrize("body, stored_as", [
    ({"flag": "outdated", "target_kind": "clause", "target_id": "2.4.1", "query": "产假"}, "clause:2.4.1"),
    ({"flag": "not_found", "query": "二孩能不能领奶粉钱"}, None),
])
def test_other_flags(agent, staff_app, body, stored_as):
    assert agent.post("/desk/api/flag", body).status == 200
    item = staff_app.ctx.review.items(kind="desk_flag")[0]
    assert item["answer_id"] == stored_as and item["question"] == body["query"]


@pytest.mark.parametrize("body", [
    {"flag": "rude", "target_kind": "answer", "target_id": "paternity_leave"},
    {"flag": "wrong", "target_kind": "answer", "target_id": "no_such_answer"},
    {"flag": "wrong"},
    {"flag": "wrong", "target_kind": "answer", "target_id": "paternity_leave", "note": "长" * 501},
])
def test_bad_flags_are_refused(agent, body):
    assert agent.post("/desk/api/flag", body).status == 400


def test_zero_result_search_is_recorded_once(agent, staff_app):
    query = "火星移民签证"
    assert agent.get("/desk/api/search", params={"q": query}).json["answers"] == []
    assert agent.post("/desk/api/no-result", {"query": query}).json == {"recorded": True}
    assert agent.post("/desk/api/no-result", {"query": query}).json["recorded"] is False
    items = [i for i in staff_app.ctx.review.items(kind="desk_no_result") if i["question"] == query]
    assert len(items) == 1 and json.loads(items[0]["detail"])["by"] == "sam"


def test_a_zero_result_search_recorded_by_another_worker_is_not_recorded_again(agent, staff_app):
    """Another worker or replica has its own memory: the review store says it is a repeat."""
    query = "金星移民签证"
    assert agent.post("/desk/api/no-result", {"query": query}).json == {"recorded": True}
    staff_app.ctx.desk_no_results.clear()          # as a process that has not seen it
    assert agent.post("/desk/api/no-result", {"query": query}).json == {"recorded": False,
                                                                       "reason": "already_recorded"}
    assert len([i for i in staff_app.ctx.review.items(kind="desk_no_result") if i["question"] == query]) == 1


def test_a_zero_result_search_an_hour_later_is_recorded_again(agent, staff_app):
    query = "土星移民签证"
    review = staff_app.ctx.review
    review.record_at(dt.datetime.utcnow() - dt.timedelta(minutes=61), "desk_no_result", "desk:sam", query)
    assert agent.post("/desk/api/no-result", {"query": query}).json == {"recorded": True}
    assert len([i for i in review.items(kind="desk_no_result") if i["question"] == query]) == 2


def test_a_search_with_answers_is_not_recorded_as_zero_result(agent, staff_app):
    assert agent.post("/desk/api/no-result", {"query": "产假"}).json == {"recorded": False, "reason": "has_results"}
    assert all(i["question"] != "产假" for i in staff_app.ctx.review.items(kind="desk_no_result"))


# -- 口播稿: short, spoken, only what the answer states -----------------------------------------------------
TITLE = re.compile(r"《[^》]+》")


@pytest.mark.parametrize("answer_id", ANSWER_IDS)
def test_every_answer_has_a_short_spoken_script(kb, answer_id):
    script = getattr(kb.answers[answer_id], "script", "")
    assert script, f"{answer_id} has no script"
    assert len(script) <= MAX_SCRIPT_CHARS, f"{answer_id}: script is {len(script)} characters"
    assert not re.search(r"[（）()【】；;\n]", script), f"{answer_id}: script is not in spoken style"
    assert script.endswith(("。", "？", "！")), answer_id


@pytest.mark.parametrize("answer_id", ANSWER_IDS)
def test_script_states_only_what_the_answer_states(kb, answer_id):
    answer = kb.answers[answer_id]
    script = getattr(answer, "script", "")
    cited = "".join(kb.clauses[c].text for c in answer.clauses)
    # The same number check as the answer text (tests/test_knowledge_integrity.py), and stricter:
    # every number must be in the answer itself, not only in its clauses.
    assert not numbers_in(script) - numbers_in(cited), f"{answer_id}: script states numbers the plan does not"
    assert not numbers_in(script) - numbers_in(answer.text), f"{answer_id}: script states numbers the answer does not"
    for title in TITLE.findall(script):
        assert title in answer.text, f"{answer_id}: script names {title}, the answer does not"
    for name in kb.departments:
        if name in script:
            assert name in answer.text or name in cited, f"{answer_id}: script names {name}"
