"""The JSON API through the real Sanic app (app.test_client)."""
import json

import pytest

from bot.web import create_app


@pytest.fixture(scope="module")
def app():
    return create_app({"api_rate_limit_per_minute": 10_000})


def post(app, body, raw=None):
    data = raw if raw is not None else json.dumps(body)
    _, resp = app.test_client.post("/api/eligibility", content=data, headers={"content-type": "application/json"})
    return resp


def test_eligibility_returns_every_benefit_with_reasons(app):
    resp = post(app, {"facts": {"hukou_ordos": True, "mother_hukou_ordos": True, "child_order": 2,
                                "born_under_policy": True, "delivered_at_midwifery_institution": True}})
    assert resp.status == 200
    results = {r["benefit"]: r for r in resp.json["results"]}
    assert set(results) == set(app.ctx.kb.benefits)
    delivery = results["delivery_subsidy"]
    assert delivery["status"] == "eligible"
    assert delivery["clauses"] == ["2.2.2"]
    assert delivery["departments"]["lead"] == ["市发展和改革委员会"]
    assert "市卫生健康委员会" in delivery["departments"]["responsible"]
    assert all(r["citation"] == "《实施方案》二（二）2" for r in delivery["reasons"])
    assert results["same_school_enrolment"]["status"] == "unknown"
    assert results["same_school_enrolment"]["missing"] == ["zoning_changed", "sibling_school_choice",
                                                           "sibling_currently_enrolled"]


def test_eligibility_uses_today_from_facts(app):
    facts = {"hukou_ordos": True, "child_order": 2, "birth_date": "2024-01-10", "enrolled_in_childcare": True}
    before = post(app, {"facts": {**facts, "today": "2030-01-09"}, "benefits": ["childcare_tuition_subsidy"]})
    after = post(app, {"facts": {**facts, "today": "2030-01-10"}, "benefits": ["childcare_tuition_subsidy"]})
    assert [r["status"] for r in before.json["results"]] == ["eligible"]
    assert [r["status"] for r in after.json["results"]] == ["ineligible"]


@pytest.mark.parametrize("body, raw, status, field", [
    (None, "not json", 400, "body"),
    (None, "[1, 2]", 400, "body"),
    ({}, None, 400, "facts"),
    ({"facts": []}, None, 400, "facts"),
    ({"facts": {"nonsense": 1}}, None, 400, "nonsense"),
    ({"facts": {"child_order": "二"}}, None, 400, "child_order"),
    ({"facts": {"hukou_ordos": 3}}, None, 400, "hukou_ordos"),
    ({"facts": {"birth_date": "昨天"}}, None, 400, "birth_date"),
    ({"facts": {"today": "2026-13-01"}}, None, 400, "today"),
    ({"facts": {}, "benefits": ["free_money"]}, None, 400, "benefits"),
    ({"facts": {}, "extra": 1}, None, 400, "extra"),
])
def test_bad_input_gets_4xx_naming_the_field(app, body, raw, status, field):
    resp = post(app, body, raw)
    assert resp.status == status
    err = resp.json["error"]
    assert err["field"] == field
    assert err["message_zh"] and err["message_en"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in err["message_zh"])


def test_huge_body_is_refused_in_both_languages(app):
    resp = post(app, None, json.dumps({"facts": {"hukou_ordos": True}, "pad": "x" * 100_000}))
    assert resp.status == 413
    assert "过大" in resp.json["error"]["message_zh"]
    assert resp.json["error"]["message_en"]


def test_search_ranks_answers_and_clauses_with_highlights(app):
    _, resp = app.test_client.get("/api/search", params={"q": "產假多少天"})
    assert resp.status == 200
    top = resp.json["answers"][0]
    assert top["id"] == "maternity_leave"
    assert "<mark>产假</mark>" in top["highlighted"]
    assert resp.json["clauses"][0]["id"] == "2.4.1"
    assert resp.json["clauses"][0]["citation"] == "《实施方案》二（四）1"


def test_search_escapes_html_in_query_and_results(app):
    _, resp = app.test_client.get("/api/search", params={"q": "<script>alert(1)</script>育儿假"})
    assert resp.status == 200
    assert resp.json["answers"][0]["id"] == "parental_leave"
    assert "<script>" not in json.dumps(resp.json["answers"])


@pytest.mark.parametrize("params, field", [({}, "q"), ({"q": "  "}, "q"), ({"q": "假" * 201}, "q"),
                                           ({"q": "产假", "limit": "x"}, "limit"), ({"q": "产假", "limit": "99"}, "limit")])
def test_search_bad_input(app, params, field):
    _, resp = app.test_client.get("/api/search", params=params)
    assert resp.status == 400
    assert resp.json["error"]["field"] == field


def test_departments_list_what_each_handles(app):
    _, resp = app.test_client.get("/api/departments")
    assert resp.status == 200
    depts = {d["name"]: d for d in resp.json["departments"]}
    health = depts["市卫生健康委员会"]
    assert "卫健委" in health["aliases"]
    assert [c["clause"] for c in health["leads"]] == ["2.2.3", "2.5.3"]
    assert health["contact"]["phone"] is None


def test_clause_by_id(app):
    _, resp = app.test_client.get("/api/clauses/2.4.1")
    assert resp.status == 200
    assert resp.json["label"] == "二（四）1"
    assert "25天护理假" in resp.json["text"]
    assert resp.json["lead"] == ["市财政局"]
    _, resp = app.test_client.get("/api/clauses/9.9")
    assert resp.status == 404
    assert resp.json["error"]["message_zh"]


@pytest.mark.parametrize("q", ["的", "。", "?", "？", "😀", "\x00", "吗呢啊", "!!!"])
def test_search_with_nothing_to_look_up_answers_empty(app, q):
    _, resp = app.test_client.get("/api/search", params={"q": q})
    assert resp.status == 200
    assert resp.json["answers"] == [] and resp.json["clauses"] == [] and resp.json["departments"] == []


@pytest.mark.parametrize("raw_query", ["q=%00", "q=%FF%FE", "q=%ED%A0%80", "q=%F0%9F%98", "q=%C3%28%E7%9A%84"])
def test_search_with_invalid_utf8_or_nul_in_the_url(app, raw_query):
    _, resp = app.test_client.get("/api/search?" + raw_query)
    assert resp.status == 200
    assert resp.json["departments"] == []


@pytest.mark.parametrize("facts, field", [
    ({"applicant_role": []}, "applicant_role"),
    ({"applicant_role": {}}, "applicant_role"),
    ({"applicant_role": ["mother"]}, "applicant_role"),
    ({"hukou_ordos": [True]}, "hukou_ordos"),
    ({"child_order": {"n": 2}}, "child_order"),
    ({"birth_date": ["2024-01-01"]}, "birth_date"),
])
def test_a_fact_of_the_wrong_json_type_is_400(app, facts, field):
    resp = post(app, {"facts": facts})
    assert resp.status == 400
    assert resp.json["error"]["field"] == field
    assert "单个值" in resp.json["error"]["message_zh"]


@pytest.mark.parametrize("raw", [
    '{"facts": ' + "[" * 20_000 + "]" * 20_000 + "}",              # would overflow the parser's stack
    '{"facts": {"a": ' + '{"b": ' * 8 + "1" + "}" * 8 + "}}",      # deeper than any body we take
    '{"facts": {"child_order": NaN}}',
    '{"facts": {"child_order": Infinity}}',
], ids=["twenty_thousand_deep", "ten_deep", "nan", "infinity"])
def test_deep_or_non_standard_json_is_400(app, raw):
    resp = post(app, None, raw)
    assert resp.status == 400
    assert resp.json["error"]["field"] == "body"


def test_each_benefit_is_answered_once_however_often_it_is_listed(app):
    resp = post(app, {"facts": {}, "benefits": ["delivery_subsidy", "maternity_leave"] * 1200})
    assert resp.status == 200
    assert [r["benefit"] for r in resp.json["results"]] == ["delivery_subsidy", "maternity_leave"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_eligibility_takes_json_only(app, content_type):
    headers = {"content-type": content_type} if content_type else {}
    _, resp = app.test_client.post("/api/eligibility", content='{"facts": {}}', headers=headers)
    assert resp.status == 415
    assert resp.json["error"]["field"] == "content-type"
