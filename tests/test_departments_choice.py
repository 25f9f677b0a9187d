"""The department that handles each measure, not only its clause's lead.

A clause often bundles several measures under one lead (二（四）1: leave,
flexible work and maternity insurance, led by 市财政局). Every answer and
benefit names the department that handles its measure, chosen from the
departments the plan lists for its clauses; every text that names
departments shows that one first and the leads as 牵头协调.
"""
import shutil

import pytest

from bot.config import ROOT
from bot.eligibility import evaluate
from bot.knowledge import KnowledgeError, load_knowledge
from bot.render import department_line, render_answer, render_departments, render_verdict

HRSS, HEALTH, MEDICAL, HOUSING = "市人力资源和社会保障局", "市卫生健康委员会", "市医疗保障局", "市住房和城乡建设局"
TAX, EDUCATION, FINANCE, ORG = "市税务局", "市教育体育局", "市财政局", "市委组织部"
NDRC, CIVIL, WOMEN, GOV_SERVICE = "市发展和改革委员会", "市民政局", "市妇女联合会", "市行政审批和政务服务局"

# Every answer: the department that handles it (None: the plan lists no department).
ANSWER_HANDLERS = {
    "plan_overview": None, "targets": None, "marriage_culture": None, "implementation_guarantees": None,
    "three_child_policy": HEALTH, "birth_restrictions_removed": ORG, "birth_registration": HEALTH,
    "birth_one_thing": GOV_SERVICE, "population_service_staff": HEALTH, "population_monitoring": NDRC,
    "mch_hospitals": HEALTH, "obstetric_pediatric_services": HEALTH, "maternal_infant_health": HEALTH,
    "prenatal_check_subsidy": HEALTH, "delivery_subsidy": HEALTH, "free_screening": HEALTH,
    "birth_defect_prevention": HEALTH,
    # childcare -> 卫生健康; its prices -> 发展改革 (价格主管); its career training -> 人社
    "childcare_system": HEALTH, "childcare_operator_subsidy": HEALTH, "childcare_supply": HEALTH,
    "childcare_support_policy": NDRC, "childcare_career_training": HRSS, "childcare_supervision": HEALTH,
    # enrolment -> 教育体育
    "kindergarten_access": EDUCATION, "childcare_tuition_subsidy": EDUCATION, "same_school_enrolment": EDUCATION,
    "after_school_care": EDUCATION, "compulsory_education": EDUCATION,
    "family_education_services": WOMEN, "mother_infant_rooms": HEALTH,
    # leave and labour rights -> 人社
    "maternity_leave": HRSS, "paternity_leave": HRSS, "parental_leave": HRSS, "flexible_work": HRSS,
    "women_employment": HRSS, "only_child_care_leave": HRSS,
    # maternity insurance -> 医保; tax -> 税务; housing fund and rental housing -> 住建
    "maternity_insurance": MEDICAL, "childcare_tax_deduction": TAX,
    "rental_housing": HOUSING, "housing_fund_loan": HOUSING, "housing_fund_withdrawal": HOUSING,
    "childrearing_subsidy": FINANCE, "township_rotation": ORG,
    "family_planning_families": HEALTH, "special_families": CIVIL, "special_family_care": HEALTH,
    "warm_home": HEALTH,
}
BENEFIT_HANDLERS = {
    "delivery_subsidy": HEALTH, "prenatal_check_subsidy": HEALTH, "childrearing_subsidy": FINANCE,
    "childcare_tuition_subsidy": EDUCATION, "same_school_enrolment": EDUCATION,
    "housing_fund_loan_uplift": HOUSING, "housing_fund_rent_withdrawal": HOUSING, "rental_housing_priority": HOUSING,
    "maternity_leave": HRSS, "paternity_leave": HRSS, "parental_leave": HRSS, "only_child_parent_care_leave": HRSS,
    "maternity_insurance_third_child": MEDICAL, "township_staff_rotation": ORG, "childcare_tax_deduction": TAX,
    "family_planning_reward": HEALTH,
}
KB = load_knowledge(ROOT / "knowledge")


def listed(kb, clause_ids):
    return {d for c in clause_ids for d in kb.clauses[c].lead + kb.clauses[c].responsible}


def test_the_tables_cover_every_answer_and_benefit(kb):
    assert set(ANSWER_HANDLERS) == set(kb.answers)
    assert set(BENEFIT_HANDLERS) == set(kb.benefits)


@pytest.mark.parametrize("answer_id", sorted(KB.answers))
def test_answer_handler_is_the_expected_one_and_listed_for_its_clauses(kb, answer_id):
    answer = kb.answers[answer_id]
    handling = answer.handling
    assert handling.department == ANSWER_HANDLERS[answer_id]
    if handling.department is None:
        assert not listed(kb, answer.clauses), f"{answer_id}: its clauses list departments, so name one"
        return
    assert handling.department in listed(kb, answer.clauses)
    assert handling.reason
    # Where the lead already is the right one, the reason says so; elsewhere it does not.
    assert ("牵头部门即办理部门" in handling.reason) == (handling.department in kb.lead_of(answer.clauses))


@pytest.mark.parametrize("benefit_id", sorted(KB.benefits))
def test_benefit_handler_is_the_expected_one_and_listed_for_its_clauses(kb, benefit_id):
    benefit = kb.benefits[benefit_id]
    assert benefit.handling.department == BENEFIT_HANDLERS[benefit_id]
    assert benefit.handling.department in listed(kb, benefit.clauses)
    assert benefit.handling.reason
    # A benefit is handled where its answer says.
    assert benefit.handling.department == kb.answers[benefit.answer].handling.department


@pytest.mark.parametrize("answer_id", sorted(KB.answers))
def test_handlers_of_puts_the_handler_first_then_every_lead_then_the_rest(kb, answer_id):
    answer = kb.answers[answer_id]
    order = kb.handlers_of(answer_id)
    assert len(order) == len(set(order))
    assert set(order) == listed(kb, answer.clauses)
    if answer.handling.department:
        assert order[0] == answer.handling.department
        leads = [d for d in kb.lead_of(answer.clauses) if d != order[0]]
        assert order[1:1 + len(leads)] == leads


def test_an_answer_citing_two_clauses_shows_the_leads_of_both(kb, settings):
    answer = kb.answers["flexible_work"]
    assert [kb.clauses[c].lead for c in answer.clauses] == [(FINANCE,), (ORG,)]
    line = department_line(answer.handling, settings)
    assert line == f"办理部门：{HRSS}；牵头协调：{FINANCE}、{ORG}"
    assert line in render_answer(kb, "flexible_work", settings).text
    text = render_departments(kb, "flexible_work", settings).text
    assert f"牵头协调：{FINANCE}、{ORG}。" in text
    assert kb.handlers_of("flexible_work")[:3] == [HRSS, FINANCE, ORG]


@pytest.mark.parametrize("answer_id, handler, lead", [
    ("paternity_leave", HRSS, FINANCE), ("maternity_insurance", MEDICAL, FINANCE),
    ("housing_fund_loan", HOUSING, FINANCE), ("childcare_tax_deduction", TAX, FINANCE),
    ("same_school_enrolment", EDUCATION, NDRC), ("childcare_system", HEALTH, NDRC),
])
def test_rendered_texts_name_the_handler_first_and_the_lead_as_coordinator(kb, settings, answer_id, handler, lead):
    answer_reply = render_answer(kb, answer_id, settings)
    assert f"办理部门：{handler}；牵头协调：{lead}" in answer_reply.text
    assert "牵头部门：" not in answer_reply.text
    assert answer_reply.departments[:2] == [handler, lead]
    dept_reply = render_departments(kb, answer_id, settings)
    first = dept_reply.text.splitlines()[0]
    assert first.startswith(f"“{kb.answers[answer_id].title}”由{handler}办理")
    assert f"牵头协调：{lead}。" in dept_reply.text
    assert dept_reply.kind == "department" and dept_reply.departments[0] == handler
    assert dept_reply.as_message()["custom"]["departments"][0] == handler


def test_the_lead_that_handles_is_marked_as_lead(kb, settings):
    line = department_line(kb.answers["free_screening"].handling, settings)
    assert line == f"办理部门：{HEALTH}（牵头部门）"


def test_answers_with_no_department_give_the_hotline(kb, settings):
    reply = render_answer(kb, "plan_overview", settings)
    assert f"咨询电话：{settings.hotline}" in reply.text and reply.departments == []
    assert settings.hotline in render_departments(kb, "plan_overview", settings).text


@pytest.mark.parametrize("benefit_id", sorted(KB.benefits))
def test_verdicts_name_the_handler_first(kb, settings, benefit_id):
    result = evaluate({}, kb=kb, benefits=[benefit_id])[0]
    handler = BENEFIT_HANDLERS[benefit_id]
    assert result.departments["handler"] == handler
    assert result.department_names[0] == handler
    reply = render_verdict(kb, result, settings)
    assert f"办理部门：{handler}" in reply.text and "牵头部门：" not in reply.text
    assert reply.departments[0] == handler and reply.kind == "verdict" and reply.benefit == benefit_id


def test_readme_benefit_table_names_each_handler(kb):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip().strip("`"): line for line in readme.splitlines()
            if line.startswith("| `") and line.count("|") == 6}
    for bid, handler in BENEFIT_HANDLERS.items():
        assert rows[bid].rstrip(" |").endswith(handler), bid


# -- a broken choice fails at load, naming the file and the entry --------------

@pytest.fixture
def kb_copy(tmp_path):
    dst = tmp_path / "knowledge"
    shutil.copytree(ROOT / "knowledge", dst)
    return dst


def _edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_handler_not_listed_for_the_clause_names_file_and_entry(kb_copy):
    # 市税务局 exists, but 二（四）1 does not list it.
    _edit(kb_copy / "benefits" / "paternity_leave.yml", f"department: {HRSS}", f"department: {TAX}")
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(kb_copy)
    assert "paternity_leave.yml" in str(err.value) and TAX in str(err.value) and "2.4.1" in str(err.value)


def test_unknown_handler_names_file_and_entry(kb_copy):
    _edit(kb_copy / "answers.yml", f"handled_by: {{department: {MEDICAL},", "handled_by: {department: 市医保中心,")
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(kb_copy)
    assert "answers.yml" in str(err.value) and "maternity_insurance" in str(err.value)
    assert "市医保中心" in str(err.value)


def test_missing_handler_names_file_and_entry(kb_copy):
    path = kb_copy / "benefits" / "childcare_tax_deduction.yml"
    text = path.read_text(encoding="utf-8")
    path.write_text("\n".join(ln for ln in text.splitlines() if not ln.startswith("handled_by")), encoding="utf-8")
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(kb_copy)
    assert "childcare_tax_deduction.yml" in str(err.value) and "handled_by" in str(err.value)


def test_a_departments_duties_list_the_measures_it_handles_first(kb):
    from bot.render import render_department_duties

    reply = render_department_duties(kb, HRSS)
    lines = reply.text.splitlines()
    assert lines[1].startswith("办理：") and "男方护理假" in lines[1] and "产假" in lines[1]
    assert reply.kind == "department" and reply.departments == [HRSS]
    # 市财政局 leads 二（四）1 but handles none of its leave measures.
    finance = render_department_duties(kb, FINANCE).text
    assert "男方护理假" not in finance and "牵头协调：完善生育保障制度" in finance
