"""Grouping of similar questions: the normaliser, pair-counting F1 on a fixed set written
for this test (tests/data/review_grouping.yml), the groups pages, and re-checking a group
against the current model (a stand-in for Rasa's /model/parse): 已覆盖 when it answers."""
import datetime as dt
import re

import pytest
import yaml

from bot.config import ROOT
from bot.grouping import Normaliser, Question, group_questions, pair_f1
from bot.knowledge import load_knowledge
from desk_helpers import sign_in
from review_helpers import RASA_TOKEN, T0, ParseStub, day, record, review_app

F1_FLOOR = 0.8


@pytest.fixture(scope="module")
def normaliser():
    return Normaliser(load_knowledge(ROOT / "knowledge"))


def fixed_set():
    data = yaml.safe_load((ROOT / "tests" / "data" / "review_grouping.yml").read_text(encoding="utf-8"))
    questions, truth = [], {}
    for label, texts in data["groups"].items():
        for text in texts:
            questions.append(Question(len(questions) + 1, text))
            truth[len(questions)] = label
    for text in data["singletons"]:
        questions.append(Question(len(questions) + 1, text))
        truth[len(questions)] = f"alone-{len(questions)}"
    return questions, truth


@pytest.mark.parametrize("text, expected", [
    ("生育津貼怎麼領？", "生育津贴怎么领"),            # traditional -> simplified, punctuation dropped
    ("二胎补贴啥时候发", "2孩补贴什么时候发"),          # 二胎 -> 二孩 (synonyms.yml), numerals -> digits
    ("第三胎一次给三千块吗", "3孩1次给3000块"),          # 第三胎 -> 三孩, 三千 -> 3000, final particle dropped
    ("东胜区育儿补贴在哪里申请", "旗区育儿补贴哪里申请"),  # a banner name -> 旗区, 在哪里 -> 哪里
    ("达旗的育儿补贴去哪申请", "旗区的育儿补贴哪里申请"),  # an alias too
    ("请问如何申领", "怎么领"),                       # question words have one form
])
def test_normaliser(normaliser, text, expected):
    assert normaliser(text) == expected


def test_fixed_set_is_grouped_with_pair_f1_at_least_the_floor(normaliser):
    questions, truth = fixed_set()
    groups = group_questions(questions, normaliser)
    scores = pair_f1([g.ids for g in groups], truth)
    print(f"grouping on the fixed set: precision {scores['precision']:.3f} recall {scores['recall']:.3f} "
          f"F1 {scores['f1']:.3f} ({len(questions)} questions, {len(groups)} groups)")
    assert scores["f1"] >= F1_FLOOR, scores
    # Biggest first; each group has its representative among its members, and distinct examples.
    assert [g.count for g in groups] == sorted((g.count for g in groups), reverse=True)
    for g in groups:
        assert g.representative in g.members
        assert len(set(g.examples)) == len(g.examples) <= 5


def test_pair_f1_counts_pairs():
    assert pair_f1([[1, 2, 3], [4]], {1: "a", 2: "a", 3: "a", 4: "b"})["f1"] == 1.0
    split = pair_f1([[1, 2], [3], [4]], {1: "a", 2: "a", 3: "a", 4: "b"})
    assert split["precision"] == 1.0 and split["recall"] == pytest.approx(1 / 3)
    merged = pair_f1([[1, 2, 3, 4]], {1: "a", 2: "a", 3: "a", 4: "b"})
    assert merged["recall"] == 1.0 and merged["precision"] == pytest.approx(0.5)


def test_near_duplicates_never_chain_into_one_blob(normaliser):
    # Each text differs from the next by one character; single-link joining would make one group.
    texts = ["育儿补贴怎么申请", "育儿补贴怎么领取", "育儿补贴何时领取", "育儿补贴何时发放", "托育补贴何时发放",
             "托育补助何时发放", "托育补助何时到账"]
    groups = group_questions([Question(i + 1, t) for i, t in enumerate(texts)], normaliser)
    assert len(groups) > 1


def make_grouped_app(tmp_path, **overrides):
    app = review_app(tmp_path, **overrides)
    questions, truth = fixed_set()
    app.ctx.truth = {}
    for q in questions:
        at = T0 - dt.timedelta(hours=q.id)
        app.ctx.truth[record(app, "unanswered", f"c{q.id}", q.text, at, intent="ask_childrearing_subsidy",
                             confidence=0.3)] = truth[q.id]
    return app


@pytest.fixture
def grouped_app(tmp_path):
    return make_grouped_app(tmp_path)


def test_groups_page_lists_the_biggest_gap_first_with_trend_and_examples(grouped_app):
    policy = sign_in(grouped_app, "policy")
    page = policy.get(f"/review/groups?from={day(7)}")
    assert page.status == 200
    counts = [int(n) for n in re.findall(r'<td class="num">(\d+)</td>\s*<td>\s*<a', page.text)]
    assert counts == sorted(counts, reverse=True) and counts[0] >= 5
    assert 'class="spark"' in page.text and "未复核" in page.text
    rows = re.findall(r'data-key="(\d+)" data-ids="([\d,]+)"', page.text)
    truth = grouped_app.ctx.truth
    biggest = [int(i) for i in rows[0][1].split(",")]
    assert len({truth[i] for i in biggest}) == 1          # one known group, not a blend
    group = policy.get(f"/review/groups/{rows[0][0]}?from={day(7)}")
    assert group.status == 200
    assert sorted(int(i) for i in re.findall(r'<tr data-id="(\d+)"', group.text)) == sorted(biggest)
    assert policy.get(f"/review/groups/999999?from={day(7)}").status == 404


def test_recheck_marks_a_group_the_model_now_answers_as_covered(tmp_path):
    answers = {}
    stub = ParseStub(answers)
    try:
        grouped_app = make_grouped_app(tmp_path, rasa_url=stub.url)
        policy = sign_in(grouped_app, "policy")
        truth = grouped_app.ctx.truth
        rows = re.findall(r'data-key="(\d+)" data-ids="([\d,]+)"',
                          policy.get(f"/review/groups?from={day(7)}").text)
        public_rental = next([int(i) for i in ids.split(",")] for _, ids in rows
                             if truth[int(ids.split(",")[0])] == "public_rental")
        twins = next([int(i) for i in ids.split(",")] for _, ids in rows
                     if truth[int(ids.split(",")[0])] == "twins")
        texts = {i["id"]: i["question"] for i in grouped_app.ctx.review.items(limit=500)}
        answers.update({texts[i]: ("ask_rental_housing", 0.93) for i in public_rental})
        covered = policy.post("/review/api/groups/recheck", json={"ids": public_rental})
        assert covered.status == 200 and covered.json["available"] is True
        assert covered.json["coverage"]["state"] == "covered" and covered.json["coverage"]["label"] == "已覆盖"
        assert all(r["answered"] for r in covered.json["results"])
        not_covered = policy.post("/review/api/groups/recheck", json={"ids": twins})
        assert not_covered.json["coverage"]["label"] == "未覆盖"
    finally:
        stub.stop()
    assert all(token == RASA_TOKEN and path == "/model/parse" for path, token, _ in stub.seen)
    page = policy.get(f"/review/groups?from={day(7)}").text
    row = re.search(rf'data-ids="{",".join(map(str, public_rental))}".*?</tr>', page, re.S).group(0)
    assert "已覆盖" in row
    stored = {i["id"]: i for i in grouped_app.ctx.review.items(limit=500)}
    assert stored[public_rental[0]]["recheck_intent"] == "ask_rental_housing"
    assert grouped_app.ctx.staff.audit_entries(5, action="review_recheck")[0]["actor"] == "pat"


def test_recheck_says_so_when_rasa_is_down(grouped_app):
    policy = sign_in(grouped_app, "policy")   # rasa_url points at a closed port
    resp = policy.post("/review/api/groups/recheck", json={"ids": [1, 2]})
    assert resp.status == 200
    assert resp.json == {"available": False, "message": "智能助手（Rasa）未启动或未响应，暂时无法复核；其他功能不受影响。"}
    assert all(i["rechecked_at"] is None for i in grouped_app.ctx.review.items(limit=500))
