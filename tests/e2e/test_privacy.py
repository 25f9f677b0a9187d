"""End to end: what Rasa stores (the message, its parse data, its metadata) holds no
personal number in clear, however the citizen wrote it."""
import json
import sqlite3
import uuid

import pytest
import requests

pytestmark = pytest.mark.e2e


def strings(value):
    """Every key and string value in a stored event. Numbers are left out: a timestamp
    such as 1796060439.1622243 holds '6222' without holding a card number."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def stored(stack, sender):
    db = sqlite3.connect(stack.tmp / "tracker.db")
    try:
        rows = [r[0] for r in db.execute("select data from events where sender_id = ?", (sender,))]
    finally:
        db.close()
    return "\n".join(text for row in rows for text in strings(json.loads(row)))


def test_personal_data_written_any_way_is_never_stored_in_clear(stack):
    me = "e2e-" + uuid.uuid4().hex
    stack.say(me, "我电话１３８１２３４５６７８，身份证150602 19900101 1234，卡号6222 0212 3456 7890 128，"
                  "邮箱zhang.san@example.com，座机(0477)8123456，育儿假几天")
    resp = requests.post(f"{stack.rasa_url}/webhooks/rest/webhook", timeout=30,
                         json={"sender": me, "message": "产假呢", "metadata": {"phone": "13812345678"}})
    resp.raise_for_status()
    rows = stored(stack, me)
    assert rows
    for clear in ["13812345678", "150602", "19900101", "6222", "zhang.san", "0477)8123456"]:
        assert clear not in rows, clear
    user = [e for e in stack.tracker(me)["events"] if e["event"] == "user"]
    # The NLU turns full-width digits into ASCII: parse_data.text is masked after that.
    assert "138****5678" in user[0]["text"] and "138****5678" in user[0]["parse_data"]["text"]
    assert user[-1]["metadata"]["phone"] == "138****5678"


def test_a_lone_surrogate_gets_an_answer(stack):
    me = "e2e-" + uuid.uuid4().hex
    resp = requests.post(f"{stack.rasa_url}/webhooks/rest/webhook", timeout=30,
                         data='{"sender": "%s", "message": "育儿假\\ud800几天"}' % me,
                         headers={"content-type": "application/json"})
    assert resp.status_code == 200
    # The NLU raised on it: the citizen got the apology instead of the answer.
    assert "10天育儿假" in "\n".join(r.get("text", "") for r in resp.json())
