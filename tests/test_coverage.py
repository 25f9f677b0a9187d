"""What the plan does not cover (knowledge/not_covered.yml, bot/coverage.py).

A message about something the plan leaves out (生育津贴, materials, where and
how to apply, an amount the plan does not give, a fourth child, other housing
programmes, rumours) gets an honest reply naming the department that handles
the topic (or the hotline); anything else gets None.
"""
import re

import pytest

from bot.config import ROOT
from bot.coverage import matching_entry, not_covered, topic_named_in
from bot.knowledge import load_knowledge

HRSS, HEALTH, MEDICAL, HOUSING = "市人力资源和社会保障局", "市卫生健康委员会", "市医疗保障局", "市住房和城乡建设局"
EDUCATION, FINANCE = "市教育体育局", "市财政局"
KB = load_knowledge(ROOT / "knowledge")

# (message, conversation topic answer_id, benefit_id, entry, topic of the reply, handling department)
COVERED_NOT = [
    ("生育津贴怎么领", None, None, "maternity_allowance", "maternity_insurance", MEDICAL),
    ("生育津貼能發多少", None, None, "maternity_allowance", "maternity_insurance", MEDICAL),  # traditional
    ("那我老婆的生育津贴呢", "paternity_leave", None, "maternity_allowance", "maternity_insurance", MEDICAL),
    ("公租房三孩家庭能优先吗", None, None, "other_housing_programmes", "rental_housing", HOUSING),
    ("廉租房怎么申请", None, None, "other_housing_programmes", "rental_housing", HOUSING),
    ("要带什么材料", "delivery_subsidy", None, "materials", "delivery_subsidy", HEALTH),
    ("需要准备什么材料", None, "housing_fund_loan_uplift", "materials", "housing_fund_loan", HOUSING),
    ("护理假申请材料有哪些", None, None, "materials", "paternity_leave", HRSS),
    ("去哪办", "paternity_leave", None, "where_to_apply", "paternity_leave", HRSS),
    ("能在网上申请吗", "childcare_tuition_subsidy", None, "where_to_apply", "childcare_tuition_subsidy", EDUCATION),
    ("生娃补贴在哪里申请", None, None, "where_to_apply", "delivery_subsidy", HEALTH),
    ("分娩补贴发多少钱", None, None, "amount", "delivery_subsidy", HEALTH),
    ("一个月给多少", "childrearing_subsidy", None, "amount", "childrearing_subsidy", FINANCE),
    ("能报销多少", "maternity_insurance", None, "amount", "maternity_insurance", MEDICAL),
    ("四胎有补贴吗", None, None, "fourth_child", "three_child_policy", HEALTH),
    ("生第四个孩子能领育儿补贴吗", None, None, "fourth_child", "childrearing_subsidy", FINANCE),
    ("老四上幼儿园有补贴吗", "childcare_tuition_subsidy", None, "fourth_child", "childcare_tuition_subsidy",
     EDUCATION),
    ("听说护理假能休一个月", "paternity_leave", None, "rumour", "paternity_leave", HRSS),
    ("网上说生三胎奖励十万是真的吗", None, None, "rumour", "three_child_policy", HEALTH),
]
# (message, answer_id, entry) with no topic at all: the hotline, no department.
NO_TOPIC = [
    ("申请材料有哪些", None, "materials"),
    ("去哪办", None, "where_to_apply"),
    ("发多少钱", None, "amount"),
    ("网上说生孩子奖励十万是真的吗", None, "rumour"),
]
# Not about anything the plan leaves out, or about an amount the plan does state.
NONE = [
    ("产假有多少天", None, None),
    ("护理假发多少钱", None, None),              # 工资、奖金、福利待遇不变: the answer states it
    ("发多少钱", "housing_fund_loan", None),    # 上浮10%
    ("公积金贷款能多贷多少钱", None, None),
    ("标准是多少", "paternity_leave", None),      # 25天
    ("一年给多少天", "parental_leave", None),     # 每年各10天
    ("能拿多少钱", None, "only_child_parent_care_leave"),  # 每年累计20天
    ("分娩补贴找哪个部门", "delivery_subsidy", None),
    ("我是鄂尔多斯户口", "delivery_subsidy", None),
    ("老二能和哥哥上一个学校吗", None, None),
    ("三孩家庭能租保障房吗", None, None),
    ("准备什么时候要三胎", None, None),
    ("", None, None),
]


@pytest.mark.parametrize("text, answer_id, benefit_id, entry, topic, handler", COVERED_NOT,
                         ids=[c[0] for c in COVERED_NOT])
def test_what_the_plan_leaves_out_gets_an_honest_reply_naming_the_handler(kb, settings, text, answer_id, benefit_id,
                                                                          entry, topic, handler):
    assert matching_entry(kb, text).id == entry
    reply = not_covered(kb, text, answer_id=answer_id, benefit_id=benefit_id, settings=settings)
    assert reply is not None
    assert reply.kind == "not_covered" and reply.answer_id == topic
    assert "方案没有" in reply.text
    assert f"请向{handler}" in reply.text and settings.hotline in reply.text
    assert reply.departments[0] == handler
    custom = reply.as_message()["custom"]
    assert custom["kind"] == "not_covered" and custom["answer_id"] == topic and custom["departments"][0] == handler
    assert "实施细则" not in reply.text


@pytest.mark.parametrize("text, answer_id, entry", NO_TOPIC, ids=[c[0] for c in NO_TOPIC])
def test_without_a_topic_the_reply_gives_the_hotline(kb, settings, text, answer_id, entry):
    reply = not_covered(kb, text, answer_id=answer_id, settings=settings)
    assert reply is not None and reply.kind == "not_covered"
    assert matching_entry(kb, text).id == entry
    assert "方案没有" in reply.text and f"{settings.hotline}（{settings.hotline_name}）" in reply.text
    assert reply.departments == [] and reply.answer_id is None


@pytest.mark.parametrize("text, answer_id, benefit_id", NONE, ids=[c[0] or "empty" for c in NONE])
def test_other_messages_get_none(kb, settings, text, answer_id, benefit_id):
    assert not_covered(kb, text, answer_id=answer_id, benefit_id=benefit_id, settings=settings) is None


def test_a_named_topic_is_used_only_when_the_conversation_has_none(kb, settings):
    # The conversation's topic wins over a word in the message; the dialogue passes
    # the message's own topic when it has one.
    reply = not_covered(kb, "分娩补贴要带什么材料", answer_id="housing_fund_loan", settings=settings)
    assert reply.answer_id == "housing_fund_loan"
    assert not_covered(kb, "分娩补贴要带什么材料", settings=settings).answer_id == "delivery_subsidy"


def test_words_shared_by_many_topics_name_none(kb):
    assert topic_named_in(kb, "补贴") is None
    assert topic_named_in(kb, "三孩") is None
    assert topic_named_in(kb, "陪产假") == "paternity_leave"


def test_rumour_reply_quotes_what_the_plan_does_say(kb, settings):
    reply = not_covered(kb, "听说护理假能休一个月", answer_id="paternity_leave", settings=settings)
    assert "25天护理假" in reply.text and "无法核实" in reply.text


@pytest.mark.parametrize("entry", KB.not_covered, ids=[e.id for e in KB.not_covered])
def test_numbers_in_replies_come_from_the_plan(kb, entry):
    topics = [a for a in (entry.answer, entry.default_answer) if a]
    cited = "".join(kb.clauses[c].text for a in topics for c in kb.answers[a].clauses) if topics else ""
    for template in (entry.reply, entry.reply_no_topic):
        stated = set(re.findall(r"\d+", re.sub(r"\{\w+\}", "", template)))
        assert stated <= set(re.findall(r"\d+", cited)), f"{entry.id} states {stated}"


@pytest.mark.parametrize("answer_id", next(e for e in KB.not_covered if e.id == "amount").only_for)
def test_amount_replies_only_where_the_plan_gives_no_amount(kb, answer_id):
    answer = kb.answers[answer_id]
    said = answer.text + (kb.benefits[answer.benefit].amount if answer.benefit else "")
    assert "未规定" in said or "未列明" in said, answer_id


def test_amount_gets_none_wherever_the_benefit_states_a_figure(kb, settings):
    # A benefit whose amount carries a number from its clause (25天, 10%, 70平方米 …) answers
    # "how much" itself.
    only_for = next(e for e in kb.not_covered if e.id == "amount").only_for
    for benefit in kb.benefits.values():
        if re.search(r"\d", benefit.amount) and "未规定" not in benefit.amount and "未列明" not in benefit.amount:
            assert benefit.answer not in only_for, benefit.id
            assert not_covered(kb, "发多少钱", benefit_id=benefit.id, settings=settings) is None, benefit.id
