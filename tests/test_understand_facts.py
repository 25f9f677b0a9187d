"""Facts a message states, as a table: sentence and context in, facts out (bot.understand.extract_facts)."""
import datetime as dt

import pytest

from bot.understand import Context, date_range, extract_facts

TODAY = dt.date(2026, 11, 30)
SCHOOL = "same_school_enrolment"

CASES = [
    ("就一个孩子，能拿育儿补贴不", None, {"children_count": 1}),
    ("俺家仨娃", None, {"children_count": 3}),
    ("三孩家庭能申请保障性租赁住房吗", None, {"children_count": 3}),
    ("二孩、三孩育儿补贴怎么领", None, {}),                       # a benefit's name states no fact
    ("想再生一个孩子", None, {}),                                 # a plan, not a count
    ("老二是2022年出生的", None, {"child_order": 2, "birth_date": "2022-01-01/2022-12-31"}),
    ("老三是去年3月出生的，上幼儿园有补贴吗", None, {"child_order": 3, "birth_date": "2025-03-01/2025-03-31"}),
    ("孩子2024年3月5日出生", None, {"birth_date": "2024-03-05"}),
    ("娃两岁了", None, {"birth_date": "2023-12-01/2024-11-30"}),
    ("宝宝8个月", None, {"birth_date": "2026-03-01/2026-03-30"}),
    ("老婆怀孕了，预产期明年3月", None, {}),
    ("老大是择校进去的，老三能跟他同校吗", None, {"child_order": 3, "sibling_school_choice": True}),
    ("老大是划片进去的", Context(SCHOOL, "zoning_changed", 3), {"sibling_school_choice": False}),
    ("老大是划片进去的", Context(SCHOOL, "zoning_changed"), {"sibling_school_choice": False}),
    ("哥哥已经毕业了", Context(SCHOOL, "zoning_changed"), {"sibling_currently_enrolled": False}),
    ("姐姐还在那上学", Context(SCHOOL, "sibling_currently_enrolled"), {"sibling_currently_enrolled": True}),
    ("学区划片调整了", Context(SCHOOL), {"zoning_changed": True}),
    ("鄂尔多斯户口，按政策生的", Context("childrearing_subsidy", "hukou_ordos"),
     {"hukou_ordos": True, "born_under_policy": True}),
    ("我们不是本地户口", None, {"hukou_ordos": False}),
    ("户口在东胜", None, {"hukou_ordos": True}),
    ("不是，这是第二套房了", Context("housing_fund_loan_uplift"), {"first_home_purchase": False}),
    ("买的首套房", None, {"first_home_purchase": True}),
    ("我们租房住，交了公积金，本地没有房", None,
     {"renting": True, "housing_fund_contributor": True, "owns_home_locally": False}),
    ("在医院生的", None, {"delivered_at_midwifery_institution": True}),
    ("孩子已经在上幼儿园了", None, {"enrolled_in_childcare": True}),
    ("还没上幼儿园", None, {"enrolled_in_childcare": False}),
    ("我是孩子爸爸", None, {"applicant_role": "father"}),
    ("我媳妇交了生育保险", None, {"maternity_insured_employee": True}),
    ("我是独生女", None, {"applicant_is_only_child": True}),
    ("产假已经休完了", None, {"maternity_leave_ended": True}),
    ("那三孩呢", Context("childrearing_subsidy"), {"child_order": 3}),
    ("不对，是老三", Context("childrearing_subsidy"), {"child_order": 3}),
    ("超生的孩子", None, {"born_under_policy": False}),
]


@pytest.mark.parametrize("text,context,expected", CASES)
def test_extract_facts(text, context, expected):
    found = extract_facts(text, context, TODAY)
    assert {k: v.value for k, v in found.items()} == expected


def test_every_fact_keeps_the_words_it_came_from():
    found = extract_facts("鄂尔多斯户口，生了二胎", None, TODAY)
    assert "鄂尔多斯" in found["hukou_ordos"].evidence and found["child_order"].evidence == "二胎"


def test_only_facts_the_knowledge_defines(kb):
    found = extract_facts("我老婆是外地户口，老二", None, TODAY, set(kb.facts))
    assert set(found) <= set(kb.facts)


def test_date_ranges_read_back():
    assert date_range("2025-03-01/2025-03-31") == (dt.date(2025, 3, 1), dt.date(2025, 3, 31))
    assert date_range("2024-03-05") == (dt.date(2024, 3, 5), dt.date(2024, 3, 5))
    assert date_range("unknown") is None


@pytest.mark.parametrize("text,expected", [
    ("我自己是准旗户口 刚在旗医院生完二胎", {"applicant_role": "mother", "mother_hukou_ordos": True}),
    ("我们两口子都是本地户口", {"mother_hukou_ordos": True}),
    ("我老婆刚生完 我是本地户口", {"applicant_role": "father"}),
])
def test_whose_registration(kb, text, expected):
    found = {k: v.value for k, v in extract_facts(text, None, TODAY, set(kb.facts)).items()}
    assert expected.items() <= found.items(), found
