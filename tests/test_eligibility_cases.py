"""Runs tests/cases/eligibility.yml, and checks the cases really sit on both
sides of every condition of every benefit; the verdict's wording (who sets the
conditions the plan leaves open, timing, who is typing)."""
from pathlib import Path

import pytest
import yaml

from bot.eligibility import FactError, evaluate, parse_facts
from bot.render import render_verdict

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "eligibility.yml").read_text(encoding="utf-8"))["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(kb, case):
    results = {r.benefit: r for r in evaluate(case["facts"], kb=kb)}
    for benefit, status in case["expect"].items():
        assert results[benefit].status == status, [r for r in results[benefit].reasons]
    for benefit, missing in case.get("missing", {}).items():
        assert list(results[benefit].missing) == missing
    for benefit, later in case.get("later", {}).items():
        assert list(results[benefit].later) == later


def test_cases_cover_both_sides_of_every_condition(kb):
    seen = {(b, i): set() for b, ben in kb.benefits.items() for i in range(len(ben.conditions))}
    for case in CASES:
        for r in evaluate(case["facts"], kb=kb):
            if r.benefit not in case["expect"]:
                continue
            for i, reason in enumerate(r.reasons):
                if reason["met"] is not None:
                    seen[(r.benefit, i)].add(reason["met"])
    uncovered = [f"{b} condition {i + 1}" for (b, i), sides in seen.items() if sides != {True, False}]
    assert not uncovered, f"cases do not test both sides of: {uncovered}"


def test_every_benefit_is_decidable_with_all_its_facts(kb):
    # With every fact the plan names supplied, the verdict is never unknown.
    full = {"hukou_ordos": True, "child_order": 2, "children_count": 3, "birth_date": "2025-01-01",
            "today": "2026-11-28"}
    for benefit in kb.benefits.values():
        facts = dict(full)
        for fact in benefit.facts:
            spec = kb.facts[fact]
            if spec.derived_from or fact in facts:
                continue
            facts[fact] = next(iter(spec.values)) if spec.type == "enum" else True
        result = evaluate(facts, kb=kb, benefits=[benefit.id])[0]
        assert result.status != "unknown", benefit.id


def test_reasons_cite_clauses_and_departments(kb):
    for r in evaluate({"hukou_ordos": True, "child_order": 2}, kb=kb):
        assert r.departments["lead"], r.benefit
        for reason in r.reasons:
            assert reason["clause"] in kb.clauses
            assert reason["citation"].startswith("《实施方案》")


def test_ineligible_lists_no_missing_facts(kb):
    r = evaluate({"mother_hukou_ordos": False}, kb=kb, benefits=["delivery_subsidy"])[0]
    assert r.status == "ineligible" and r.missing == ()
    assert any(reason["met"] is False and reason["fact"] == "mother_hukou_ordos" for reason in r.reasons)


def test_today_defaults_to_the_current_date(kb):
    import datetime as dt

    born = dt.date.today().replace(year=dt.date.today().year - 7)
    r = evaluate({"birth_date": born.isoformat()}, kb=kb, benefits=["childcare_tax_deduction"])[0]
    assert r.status == "ineligible"


@pytest.mark.parametrize("facts, field", [
    ({"hukou": True}, "hukou"),
    ({"child_order": "two"}, "child_order"),
    ({"child_order": True}, "child_order"),
    ({"child_order": 0}, "child_order"),
    ({"hukou_ordos": "maybe"}, "hukou_ordos"),
    ({"birth_date": "2024-02-30"}, "birth_date"),
    ({"applicant_role": "uncle"}, "applicant_role"),
    ({"child_age": 3}, "child_age"),
    ({"birth_date": "2027-01-01", "today": "2026-01-01"}, "birth_date"),
])
def test_bad_facts_name_the_field(kb, facts, field):
    with pytest.raises(FactError) as err:
        parse_facts(kb, facts)
    assert err.value.field == field
    assert err.value.message_zh and err.value.message_en


def _all_facts(kb, benefit, **override):
    facts = {"hukou_ordos": True, "mother_hukou_ordos": True, "child_order": 2, "children_count": 3,
             "birth_date": "2025-01-01", "today": "2026-11-28"}
    for fact in benefit.facts:
        spec = kb.facts[fact]
        if not spec.derived_from and fact not in facts:
            facts[fact] = next(iter(spec.values)) if spec.type == "enum" else True
    facts.update(override)
    return facts


def test_no_verdict_depends_on_who_is_typing(kb):
    # A wife asking about her husband's leave, a husband asking for his insured wife:
    # the verdict is about the person the benefit is for.
    for benefit in kb.benefits.values():
        assert "applicant_role" not in benefit.facts, benefit.id
        as_mother = evaluate(_all_facts(kb, benefit, applicant_role="mother"), kb=kb, benefits=[benefit.id])[0]
        as_father = evaluate(_all_facts(kb, benefit, applicant_role="father"), kb=kb, benefits=[benefit.id])[0]
        assert as_mother.status == as_father.status, benefit.id


def test_delivery_subsidy_needs_the_mothers_registration_not_the_familys(kb):
    cond = kb.benefits["delivery_subsidy"].conditions[0]
    assert (cond.fact, cond.text) == ("mother_hukou_ordos", "产妇为鄂尔多斯市户籍")
    assert "产妇" in kb.question_for("delivery_subsidy", "mother_hukou_ordos")
    # The plan's own words: 鄂尔多斯市户籍产妇.
    assert "鄂尔多斯市户籍产妇" in kb.clauses[cond.clause].text


def test_childrearing_subsidy_asks_whether_both_spouses_had_the_child_under_the_policy(kb):
    cond = next(c for c in kb.benefits["childrearing_subsidy"].conditions if c.fact == "born_under_policy")
    assert cond.text == "夫妻共同按政策生育"
    assert "夫妻共同按政策生育" in kb.clauses[cond.clause].text
    assert "夫妻" in kb.question_for("childrearing_subsidy", "born_under_policy")


def test_questions_about_the_mother_are_put_about_her(kb):
    for benefit, fact in [("maternity_insurance_third_child", "maternity_insured_employee"),
                          ("township_staff_rotation", "township_grassroots_staff"),
                          ("township_staff_rotation", "maternity_leave_ended")]:
        question = kb.question_for(benefit, fact)
        assert "妈妈" in question and not question.startswith("您"), (benefit, question)


def test_question_for_falls_back_to_the_facts_own_question(kb):
    assert kb.question_for("same_school_enrolment", "zoning_changed") == kb.facts["zoning_changed"].ask
    # child_age is derived: the question is the one for birth_date.
    assert kb.question_for("childcare_tax_deduction", "birth_date") == kb.facts["birth_date"].ask


def test_timing_conditions_are_never_asked_and_never_make_a_benefit_ineligible(kb):
    timed = [(b, c) for b in kb.benefits.values() for c in b.conditions if c.timing]
    assert timed, "township_staff_rotation has a timing condition"
    for benefit, cond in timed:
        unknown = evaluate(_all_facts(kb, benefit, **{cond.fact: None}), kb=kb, benefits=[benefit.id])[0]
        assert cond.fact not in unknown.missing
        not_yet = evaluate(_all_facts(kb, benefit, **{cond.fact: not cond.value}), kb=kb, benefits=[benefit.id])[0]
        assert not_yet.status == "eligible" and not_yet.later == (cond.text,)


def test_verdict_where_plan_leaves_conditions_to_others_is_not_a_bare_yes(kb, settings):
    result = evaluate({"children_count": 3}, kb=kb, benefits=["rental_housing_priority"])[0]
    assert result.status == "eligible"
    assert result.open_conditions == '方案只写明"符合条件的三孩家庭"，其他配租条件由市住房和城乡建设局确定'
    headline = render_verdict(kb, result, settings).text.splitlines()[0]
    assert headline.startswith("【三孩家庭保障性租赁住房优先配租】符合方案列明的条件；")
    assert headline.endswith("其他配租条件由市住房和城乡建设局确定")
    leave = evaluate({"applicant_is_only_child": True}, kb=kb, benefits=["only_child_parent_care_leave"])[0]
    assert "符合方案列明的条件；" in render_verdict(kb, leave, settings).text
    # Where the plan states every condition, the verdict is a plain yes.
    full = evaluate({"hukou_ordos": True, "child_order": 2, "born_under_policy": True}, kb=kb,
                    benefits=["childrearing_subsidy"])[0]
    assert render_verdict(kb, full, settings).text.splitlines()[0] == "【二孩、三孩育儿补贴】符合条件"


def test_rotation_is_phrased_as_a_possibility_and_after_the_leave(kb, settings):
    facts = {"township_grassroots_staff": True, "child_order": 2, "maternity_leave_ended": False}
    result = evaluate(facts, kb=kb, benefits=["township_staff_rotation"])[0]
    text = render_verdict(kb, result, settings).text
    assert "不符合" not in text and "✗" not in text
    assert "可采取" in text and "产假期满后适用" in text
    assert "是否安排调训交流由市委组织部确定" in text


def test_leave_verdicts_name_whose_leave_it_is(kb, settings):
    paternity = evaluate({"applicant_role": "mother"}, kb=kb, benefits=["paternity_leave"])[0]
    text = render_verdict(kb, paternity, settings).text
    assert paternity.status == "eligible" and "男方" in text and "25天" in text


def test_result_as_dict_carries_open_conditions_and_handler_first(kb):
    result = evaluate({"children_count": 3}, kb=kb, benefits=["rental_housing_priority"])[0].as_dict()
    assert result["open_conditions"].endswith("由市住房和城乡建设局确定")
    assert list(result["departments"])[0] == "handler"
    assert result["departments"]["handler"] == "市住房和城乡建设局"
    assert result["departments"]["in_order"][:2] == ["市住房和城乡建设局", "市财政局"]
