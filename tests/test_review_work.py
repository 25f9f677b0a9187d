"""Work on items through the JSON API the keyboard drives: statuses, assigning an intent,
new topics that must cite a clause, tags and notes; each change on the item with who
and when, and in the audit log."""
import json

import pytest

from desk_helpers import sign_in
from review_helpers import review_app


@pytest.fixture
def app(tmp_path):
    app = review_app(tmp_path)
    for i, text in enumerate(["生育津贴怎么领", "生育津贴在哪里领", "公租房怎么申请"]):
        app.ctx.review.record("unanswered", f"s{i}", text, intent="ask_delivery_subsidy", confidence=0.3)
    return app


@pytest.fixture
def policy(app):
    return sign_in(app, "policy")


def item(app, item_id):
    return next(i for i in app.ctx.review.items() if i["id"] == item_id)


def last_audit(app, action):
    entries = app.ctx.staff.audit_entries(10, action=action)
    assert entries, f"no audit entry {action}"
    return entries[0]


@pytest.mark.parametrize("status, label", [("done", "已处理"), ("ignored", "忽略"), ("pending", "待定"), ("new", "待处理")])
def test_status_changes_say_who_and_when_and_are_audited(app, policy, status, label):
    resp = policy.post("/review/api/items", json={"ids": [1, 2], "action": "status", "value": status})
    assert resp.status == 200 and resp.json["status_label"] == label and resp.json["count"] == 2
    for i in (1, 2):
        assert item(app, i)["status"] == status
        assert item(app, i)["updated_by"] == "pat" and item(app, i)["updated_at"] is not None
    assert item(app, 3)["status"] == "new" or status == "new"
    entry = last_audit(app, "review_status")
    assert entry["actor"] == "pat" and entry["target"] == "items:2" and entry["at"] is not None
    assert json.loads(entry["detail"]) == {"ids": [1, 2], "count": 2, "status": status}


def test_assign_to_an_existing_intent_only(app, policy):
    bad = policy.post("/review/api/items", json={"ids": [1], "action": "assign", "value": "ask_nothing_like_it"})
    assert bad.status == 400 and bad.json["error"]["field"] == "value"
    assert item(app, 1)["status"] == "new"
    fallback = policy.post("/review/api/items", json={"ids": [1], "action": "assign", "value": "nlu_fallback"})
    assert fallback.status == 400
    ok = policy.post("/review/api/items", json={"ids": [1], "action": "assign", "value": "ask_maternity_leave"})
    assert ok.status == 200
    assert item(app, 1)["assigned_intent"] == "ask_maternity_leave" and item(app, 1)["status"] == "accepted"
    assert json.loads(last_audit(app, "review_assign")["detail"])["intent"] == "ask_maternity_leave"
    page = policy.get("/review?status=accepted").text
    assert "→ 产假" in page


def test_a_new_topic_needs_a_draft_that_cites_a_real_clause(app, policy):
    body = {"ids": [1, 2], "action": "topic", "value": {"title": "生育津贴", "draft_answer": "生育津贴……", "clauses": []}}
    resp = policy.post("/review/api/items", json=body)
    assert resp.status == 400 and resp.json["error"]["field"] == "clauses"
    body["value"]["clauses"] = ["9.9.9"]
    assert policy.post("/review/api/items", json=body).status == 400
    body["value"]["draft_answer"] = " "
    body["value"]["clauses"] = ["2.4.1"]
    assert policy.post("/review/api/items", json=body).json["error"]["field"] == "draft_answer"
    body["value"]["draft_answer"] = "方案未规定生育津贴的领取方式，请咨询医保部门。"
    resp = policy.post("/review/api/items", json=body)
    assert resp.status == 200 and resp.json["status"] == "new_topic"
    topic_id = resp.json["topic_id"]
    assert item(app, 1)["topic_id"] == topic_id and item(app, 2)["status"] == "new_topic"
    topics = policy.get("/review/topics").text
    assert "生育津贴" in topics and "《实施方案》二（四）1" in topics
    shown = policy.get("/review/items/1").text
    assert "方案未规定生育津贴的领取方式" in shown and "依据：《实施方案》二（四）1" in shown
    # A later item joins the same topic by its id.
    again = policy.post("/review/api/items", json={"ids": [3], "action": "topic", "value": topic_id})
    assert again.status == 200 and item(app, 3)["topic_id"] == topic_id
    assert policy.post("/review/api/items", json={"ids": [3], "action": "topic", "value": 999}).status == 400


def test_tags_are_added_filtered_and_removed(app, policy):
    assert policy.post("/review/api/items", json={"ids": [1, 3], "action": "tag", "value": "津贴"}).status == 200
    assert policy.post("/review/api/items", json={"ids": [1], "action": "tag", "value": "津贴"}).status == 200  # twice: once
    page = policy.get("/review?tag=津贴").text
    assert 'data-id="1"' in page and 'data-id="3"' in page and 'data-id="2"' not in page
    assert policy.post("/review/api/items", json={"ids": [1], "action": "untag", "value": "津贴"}).status == 200
    page = policy.get("/review?tag=津贴").text
    assert 'data-id="1"' not in page and 'data-id="3"' in page
    for bad in ("", "有 空格", "x" * 21, "<b>"):
        assert policy.post("/review/api/items", json={"ids": [1], "action": "tag", "value": bad}).status == 400


def test_notes_are_masked_and_audited(app, policy):
    note = "来电人说身份证号150602199003071234，电话13812345678"
    assert policy.post("/review/api/items", json={"ids": [2], "action": "note", "value": note}).status == 200
    stored = item(app, 2)["note"]
    assert "150602199003071234" not in stored and "13812345678" not in stored and "来电人说" in stored
    assert "13812345678" not in last_audit(app, "review_note")["detail"]


@pytest.mark.parametrize("body, field", [
    ({"ids": [], "action": "status", "value": "done"}, "ids"),
    ({"ids": ["1"], "action": "status", "value": "done"}, "ids"),
    ({"ids": [True], "action": "status", "value": "done"}, "ids"),
    ({"ids": list(range(1, 5003)), "action": "status", "value": "done"}, "ids"),
    ({"ids": [1], "action": "explode", "value": "x"}, "action"),
    ({"ids": [1], "action": "status", "value": "accepted"}, "value"),
    ({"ids": [404], "action": "status", "value": "done"}, "ids"),
])
def test_bad_requests_change_nothing(app, policy, body, field):
    resp = policy.post("/review/api/items", json=body)
    assert resp.status == 400 and resp.json["error"]["field"] == field
    assert {i["status"] for i in app.ctx.review.items()} == {"new"}


def test_a_body_that_is_not_an_object_is_refused(policy):
    resp = policy.post("/review/api/items", json=[1, 2])
    assert resp.status == 400
