"""The held-out conversations (tests/conversations/) are well formed and right by the rules, and the scorer judges replies as documented."""
import datetime as dt
import sys

import pytest

from bot.config import ROOT
from bot.eligibility import evaluate

sys.path.insert(0, str(ROOT / "bench"))
import conversation_eval as ce  # noqa: E402

FILES = ce.load_conversations()
EVERY = [(name, conv) for name, convs in FILES.items() for conv in convs]
TODAY = dt.date.today()


def ids(pairs):
    return [conv["id"] for _, conv in pairs]


# --- the set itself -------------------------------------------------------------------------

def test_each_kind_is_big_enough():
    assert len(FILES["fact_in_question"]) >= 60
    assert len(FILES["follow_up"]) >= 30 and all(len(c["turns"]) == 2 for c in FILES["follow_up"])
    assert len(FILES["multi_turn"]) >= 30 and all(len(c["turns"]) >= 2 for c in FILES["multi_turn"])


def test_facts_in_the_question_cover_every_benefit(kb):
    asked = {e["benefit"] for c in FILES["fact_in_question"] for e in ce.expectations(c) if "benefit" in e}
    assert asked == set(kb.benefits)


def test_every_file_says_it_was_written_without_the_training_data():
    for path in sorted(ce.CONVERSATIONS.glob("*.yml")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("#") and "without seeing the training data" in first, path.name


@pytest.mark.parametrize("name,conv", EVERY, ids=ids(EVERY))
def test_references_exist(kb, name, conv):
    for expect in ce.expectations(conv):
        if "benefit" in expect:
            assert expect["benefit"] in kb.benefits
        if "answer_id" in expect:
            assert expect["answer_id"] in kb.answers
        for fact in expect.get("fact_in", []) + expect.get("fact_not_in", []):
            assert fact in kb.facts and not kb.facts[fact].derived_from, fact
        if "department" in expect:
            assert expect["department"] in {d.name for d in kb.departments.values()}
    for fact in conv.get("facts", {}):
        assert fact in kb.facts, fact
    if "about" in conv:
        assert conv["about"] in kb.answers


@pytest.mark.parametrize("name,conv", EVERY, ids=ids(EVERY))
def test_a_department_is_one_the_plan_lists_for_the_topic(kb, name, conv):
    named = [e["department"] for e in ce.expectations(conv) if "department" in e]
    if not named:
        return
    assert "about" in conv, "a department expectation names the answer it is about"
    clauses = [kb.clauses[c] for c in kb.answers[conv["about"]].clauses]
    listed = {d for clause in clauses for d in clause.lead + clause.responsible}
    for department in named:
        assert department in listed, f"{department} is not listed in {[c.label for c in clauses]}"


def as_rule_facts(conv, on):
    """The conversation's facts as the rules take them (an age becomes a birth date that gives it)."""
    facts = dict(conv.get("facts", {}))
    age = facts.pop("child_age", None)
    if age is not None:
        anniversary = on.replace(year=on.year - age) if (on.month, on.day) != (2, 29) else \
            on.replace(year=on.year - age, day=28)
        facts["birth_date"] = (anniversary - dt.timedelta(days=30)).isoformat()
    return {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in facts.items()}


CHECKED = [(name, conv) for name, conv in EVERY
           if any(e["kind"] in ("verdict", "ask") for e in ce.expectations(conv))]


@pytest.mark.parametrize("name,conv", CHECKED, ids=ids(CHECKED))
def test_verdicts_and_questions_agree_with_the_rules(kb, name, conv):
    assert "facts" in conv, "a verdict or question expectation lists the facts the turns state"
    on = conv.get("today", TODAY)
    facts = as_rule_facts(conv, on)
    stated = set(facts)
    for expect in ce.expectations(conv):
        if expect["kind"] not in ("verdict", "ask"):
            continue
        result = evaluate(facts, on, kb=kb, benefits=[expect["benefit"]])[0]
        if expect["kind"] == "verdict":
            assert result.status == expect["status"], result.reasons
            continue
        assert result.status == "unknown", result.reasons
        assert set(expect.get("fact_in", [])) <= set(result.missing), result.missing
        assert set(expect.get("fact_not_in", [])) <= stated
        used = {s for f in kb.benefits[expect["benefit"]].facts for s in (kb.facts[f].derived_from or (f,))}
        assert stated & used <= set(expect.get("fact_not_in", [])), "every stated fact the rule uses is guarded"


# --- the scorer -----------------------------------------------------------------------------

def msg(text, **custom):
    return {"recipient_id": "x", "text": text, "custom": custom} if custom else {"recipient_id": "x", "text": text}


def conv(turns, expect, **more):
    return {"id": "t-1", "turns": turns, "expect": expect, **more}


VERDICT = {"kind": "verdict", "benefit": "childrearing_subsidy", "status": "ineligible"}


def test_a_verdict_matches_on_kind_benefit_and_status():
    reply = [msg("【二孩、三孩育儿补贴】不符合条件", kind="verdict", benefit="childrearing_subsidy",
                 status="ineligible", departments=["市财政局"])]
    assert ce.judge(conv(["就一个娃"], VERDICT), [reply]).passed
    wrong_status = [msg("…", kind="verdict", benefit="childrearing_subsidy", status="unknown")]
    wrong_benefit = [msg("…", kind="verdict", benefit="delivery_subsidy", status="ineligible")]
    an_answer = [msg("育儿补贴……", kind="answer", answer_id="childrearing_subsidy")]
    for reply in (wrong_status, wrong_benefit, an_answer, [msg("没有 custom 的消息")]):
        assert not ce.judge(conv(["就一个娃"], VERDICT), [reply]).passed


def test_an_ask_must_not_ask_again_for_what_was_said():
    expect = {"kind": "ask", "benefit": "delivery_subsidy", "fact_in": ["born_under_policy"],
              "fact_not_in": ["hukou_ordos", "child_order"]}
    gist = msg("分娩补贴是……", kind="gist", benefit="delivery_subsidy")
    good = [gist, msg("是按政策生育的吗？", kind="ask", benefit="delivery_subsidy", fact="born_under_policy")]
    assert ce.judge(conv(["老婆本地户口 生老三"], expect), [good]).passed
    again = [gist, msg("是鄂尔多斯户籍吗？", kind="ask", benefit="delivery_subsidy", fact="hukou_ordos")]
    outcome = ce.judge(conv(["老婆本地户口 生老三"], expect), [again])
    assert not outcome.passed and "hukou_ordos" in outcome.problems[-1]
    # One right question does not excuse another that asks again.
    both = good + [msg("产妇是鄂尔多斯户籍吗？", kind="ask", benefit="delivery_subsidy", fact="hukou_ordos")]
    assert not ce.judge(conv(["老婆本地户口 生老三"], expect), [both]).passed
    not_expected = [msg("在助产机构分娩的吗？", kind="ask", benefit="delivery_subsidy",
                        fact="delivered_at_midwifery_institution")]
    assert not ce.judge(conv(["老婆本地户口 生老三"], expect), [not_expected]).passed
    assert ce.judge(conv(["x"], {"kind": "ask", "benefit": "delivery_subsidy"}), [not_expected]).passed


def test_a_department_is_the_first_named():
    expect = {"kind": "department", "department": "市人力资源和社会保障局"}
    first = [msg("请联系市人力资源和社会保障局", kind="department", answer_id="paternity_leave",
                 departments=["市人力资源和社会保障局", "市财政局"])]
    second = [msg("请联系市财政局", kind="department", departments=["市财政局", "市人力资源和社会保障局"])]
    as_answer = [msg("……", kind="answer", departments=["市人力资源和社会保障局"])]
    assert ce.judge(conv(["陪产假几天", "找谁"], expect), [[], first]).passed
    assert not ce.judge(conv(["陪产假几天", "找谁"], expect), [[], second]).passed
    assert not ce.judge(conv(["陪产假几天", "找谁"], expect), [[], as_answer]).passed


def test_not_covered_with_or_without_a_department():
    reply = [msg("方案没有规定……", kind="not_covered", departments=["市住房和城乡建设局"])]
    assert ce.judge(conv(["公租房呢"], {"kind": "not_covered"}), [reply]).passed
    assert ce.judge(conv(["公租房呢"], {"kind": "not_covered", "department": "市住房和城乡建设局"}), [reply]).passed
    assert not ce.judge(conv(["公租房呢"], {"kind": "not_covered", "department": "市财政局"}), [reply]).passed
    assert not ce.judge(conv(["公租房呢"], {"kind": "not_covered"}), [[msg("菜单", kind="menu")]]).passed


def test_an_answer_matches_on_its_id_and_a_list_is_any_of():
    reply = [msg("男方25天护理假", kind="answer", answer_id="paternity_leave")]
    assert ce.judge(conv(["x"], {"kind": "answer", "answer_id": "paternity_leave"}), [reply]).passed
    assert not ce.judge(conv(["x"], {"kind": "answer", "answer_id": "maternity_leave"}), [reply]).passed
    either = [{"kind": "verdict", "benefit": "paternity_leave", "status": "eligible"},
              {"kind": "answer", "answer_id": "paternity_leave"}]
    assert ce.judge(conv(["x"], either), [reply]).passed


def test_a_reply_that_also_gives_the_other_verdict_fails():
    either = [{"kind": "verdict", "benefit": "paternity_leave", "status": "eligible"},
              {"kind": "answer", "answer_id": "paternity_leave"}]
    answer = msg("男方25天护理假", kind="answer", answer_id="paternity_leave")
    wrong = msg("不符合条件 ✗ 申请人为男方", kind="verdict", benefit="paternity_leave", status="ineligible")
    outcome = ce.judge(conv(["我老公能休几天陪产假"], either), [[answer, wrong]])
    assert not outcome.passed and "paternity_leave: ineligible" in outcome.problems[0]
    other_benefit = msg("…", kind="verdict", benefit="parental_leave", status="unknown")
    assert ce.judge(conv(["我老公能休几天陪产假"], either), [[answer, other_benefit]]).passed


def test_only_the_last_reply_is_matched():
    reply = [msg("…", kind="verdict", benefit="childrearing_subsidy", status="ineligible")]
    assert not ce.judge(conv(["a", "b"], VERDICT), [reply, [msg("好的", kind="other")]]).passed
    assert not ce.judge(conv(["a", "b"], VERDICT), [reply]).passed  # a turn without its reply


def test_a_message_repeated_in_any_reply_fails_the_conversation():
    menu = msg("您是想问以下哪个问题？", kind="menu")
    verdict = msg("不符合条件", kind="verdict", benefit="childrearing_subsidy", status="ineligible")
    outcome = ce.judge(conv(["a", "b"], VERDICT), [[menu, menu], [verdict]])
    assert not outcome.passed and outcome.repeats == [(1, "您是想问以下哪个问题？")]
    outcome = ce.judge(conv(["a"], VERDICT), [[verdict, verdict]])
    assert not outcome.passed and outcome.repeats
    # Bubbles without text are not repeats of each other; the same text on two turns is not a repeat.
    blank = {"recipient_id": "x", "custom": {"kind": "other"}}
    assert ce.judge(conv(["a", "b"], VERDICT), [[verdict, blank, blank], [verdict]]).passed


def test_dated_conversations_apply_only_in_their_window():
    dated = conv(["x"], VERDICT, today=dt.date(2026, 11, 30), valid_until=dt.date(2030, 4, 30))
    assert ce.applies_on(dated, dt.date(2026, 11, 30)) and ce.applies_on(dated, dt.date(2030, 4, 30))
    assert not ce.applies_on(dated, dt.date(2030, 5, 1)) and not ce.applies_on(dated, dt.date(2026, 11, 29))
    assert ce.applies_on(conv(["x"], VERDICT), dt.date(2040, 1, 1))


def test_run_scores_per_file_and_describes_failures():
    files = {"a": [conv(["就一个娃 育儿补贴"], VERDICT)],
             "b": [dict(conv(["产假几天"], {"kind": "answer", "answer_id": "maternity_leave"}), id="t-2"),
                   dict(conv(["育儿假", "那产假呢"], {"kind": "answer", "answer_id": "maternity_leave"}), id="t-3"),
                   dict(conv(["x"], VERDICT, valid_until=dt.date(2000, 1, 1)), id="t-4")]}
    senders = []

    def say(sender, text):
        senders.append(sender)
        if "就一个娃" in text:
            return [msg("不符合", kind="verdict", benefit="childrearing_subsidy", status="ineligible")]
        if text == "产假几天":
            return [msg("产假……", kind="answer", answer_id="maternity_leave")]
        return [msg("您是想问？", kind="menu"), msg("您是想问？", kind="menu")]

    result = ce.run(files, say, today=dt.date(2026, 11, 30))
    assert result.rate("a") == 1.0 and result.rate("b") == 0.5 and result.rate() == pytest.approx(2 / 3)
    assert result.skipped == ["t-4"] and [o.id for o in result.failures] == ["t-3"]
    assert len(set(senders)) == 3 and senders.count(senders[-1]) == 2   # one fresh sender per conversation
    text = ce.describe(result.failures[0])
    assert "t-3" in text and "那产假呢" in text and "<menu>" in text and "您是想问？" in text
    figures = result.figures()
    assert figures["replies_with_a_repeated_message"] == 2 and figures["files"]["b"]["passed"] == 1
    assert "overall" in ce.report(result)


@pytest.mark.parametrize("bad,problem", [
    ({"conversations": [{"id": "x", "turns": ["a"]}]}, "needs `expect`"),
    ({"conversations": [{"id": "x", "turns": [], "expect": VERDICT}]}, "turns"),
    ({"conversations": [{"id": "x", "turns": ["a"], "expect": {"kind": "verdict", "benefit": "b"}}]}, "takes"),
    ({"conversations": [{"id": "x", "turns": ["a"], "expect": {"kind": "guess"}}]}, "kind"),
    ({"conversations": [{"id": "x", "turns": ["a"], "expect": VERDICT, "extra": 1}]}, "unknown keys"),
    ({"conversations": [{"id": "x", "turns": ["a"], "expect": dict(VERDICT, status="ok")}]}, "status"),
    ({"conversations": [{"id": "x", "turns": ["a"], "expect": VERDICT, "today": "yesterday"}]}, "not a date"),
    ({"conversations": [{"id": "x", "turns": ["a"], "expect": VERDICT}, {"id": "x", "turns": ["b"],
                                                                        "expect": VERDICT}]}, "used twice"),
])
def test_malformed_files_are_refused(tmp_path, bad, problem):
    import yaml

    (tmp_path / "bad.yml").write_text(yaml.safe_dump(bad, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ce.ConversationFileError, match=problem):
        ce.load_conversations(tmp_path)
