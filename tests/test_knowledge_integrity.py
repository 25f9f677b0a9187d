"""Every cited clause and department exists; every number stated comes from
the clause it cites; a broken reference fails loudly, naming file and entry."""
import re
import shutil

import pytest

from bot.config import ROOT
from bot.knowledge import KnowledgeError, load_knowledge
from bot.render import render_answer

NUMBER = re.compile(r"\d+(?:\.\d+)?")
REQUIRED_BENEFITS = {"delivery_subsidy", "prenatal_check_subsidy", "childrearing_subsidy", "childcare_tuition_subsidy",
                     "same_school_enrolment", "housing_fund_loan_uplift", "housing_fund_rent_withdrawal",
                     "rental_housing_priority", "paternity_leave", "parental_leave", "only_child_parent_care_leave",
                     "maternity_insurance_third_child", "township_staff_rotation"}
REQUIRED_FACTS = {"hukou_ordos", "mother_hukou_ordos", "child_order", "children_count", "birth_date", "today", "born_under_policy",
                  "delivered_at_midwifery_institution", "enrolled_in_childcare", "zoning_changed",
                  "sibling_school_choice", "sibling_currently_enrolled", "first_home_purchase",
                  "housing_fund_contributor", "owns_home_locally", "renting", "applicant_role",
                  "applicant_is_only_child"}


def numbers_in(text):
    return set(NUMBER.findall(text))


def test_required_benefits_and_facts_exist(kb):
    assert REQUIRED_BENEFITS <= set(kb.benefits)
    assert REQUIRED_FACTS <= set(kb.input_facts())
    assert set(kb.facts["applicant_role"].values) == {"mother", "father"}


def test_every_answer_cites_existing_clauses_with_a_lead_or_hotline(kb):
    for answer in kb.answers.values():
        assert answer.clauses, answer.id
        for cid in answer.clauses:
            assert cid in kb.clauses, f"{answer.id} cites {cid}"


@pytest.mark.parametrize("answer_id", sorted(load_knowledge(ROOT / "knowledge").answers))
def test_numbers_in_answer_come_from_its_clauses(kb, answer_id):
    answer = kb.answers[answer_id]
    cited = "".join(kb.clauses[c].text for c in answer.clauses)
    missing = numbers_in(answer.text) - numbers_in(cited)
    assert not missing, f"{answer_id} states {missing}, not in clauses {answer.clauses}"


@pytest.mark.parametrize("benefit_id", sorted(load_knowledge(ROOT / "knowledge").benefits))
def test_numbers_in_benefit_come_from_its_clauses(kb, benefit_id):
    benefit = kb.benefits[benefit_id]
    cited_ids = {benefit.clause, *(c.clause for c in benefit.conditions)}
    cited = "".join(kb.clauses[c].text for c in cited_ids) + kb.clauses["issued"].text
    stated = benefit.amount + benefit.note + "".join(c.text for c in benefit.conditions)
    # Condition values (thresholds) count as stated numbers too.
    for c in benefit.conditions:
        if c.op in ("below", "at_least"):
            stated += f" {c.value}"
    allowed = numbers_in(cited)
    assert not (numbers_in(stated) - allowed), f"{benefit_id} states numbers the plan does not"


def test_every_benefit_department_exists(kb):
    for benefit in kb.benefits.values():
        clause = kb.clauses[benefit.clause]
        assert clause.lead, f"{benefit.id} cites a clause with no lead department"
        for name in clause.lead + clause.responsible:
            assert name in kb.departments


def test_department_registry_is_complete_and_contacts_are_not_invented(kb):
    named = {d for c in kb.clauses.values() for d in c.lead + c.responsible}
    assert named == set(kb.departments)
    for dept in kb.departments.values():
        assert dept.leads or dept.responsible_for, dept.name
        assert not dept.contact.get("phone") or dept.contact.get("source"), f"{dept.name} has a phone with no source"
    assert kb.department_by_alias("卫健委").name == "市卫生健康委员会"
    assert kb.department_by_alias("教体局").name == "市教育体育局"
    assert kb.department_by_alias("妇联").name == "市妇女联合会"


@pytest.mark.parametrize("answer_id", sorted(load_knowledge(ROOT / "knowledge").answers))
def test_rendered_answer_is_short_and_cites(kb, settings, answer_id):
    reply = render_answer(kb, answer_id, settings)
    assert len(reply.text) < 400
    assert "依据：《实施方案》" in reply.text
    assert 2 <= len(reply.buttons) <= 3
    for b in reply.buttons:
        assert not b["payload"].startswith("/")


def test_answers_without_amount_say_so_and_where_to_ask(kb):
    # Where the plan gives "一定的" support without an amount, the text says the plan
    # sets none and names the department to ask.
    for answer in kb.answers.values():
        if "一定的" in answer.text and "补贴" in answer.text:
            assert "未规定" in answer.text, answer.id
            assert answer.handling.department in answer.text, answer.id
    for benefit in kb.benefits.values():
        if "一定的" in benefit.amount:
            assert "未规定" in benefit.amount, benefit.id
            assert benefit.handling.department in benefit.amount, benefit.id


def _texts(kb):
    for answer in kb.answers.values():
        yield f"answer {answer.id}", answer.text, answer.clauses
    for benefit in kb.benefits.values():
        opened = benefit.open_conditions.text if benefit.open_conditions else ""
        stated = " ".join([benefit.amount, benefit.note, opened, *(c.text + c.ask for c in benefit.conditions)])
        yield f"benefit {benefit.id}", stated, benefit.clauses


@pytest.mark.parametrize("word", ["实施细则", "细则", "生育津贴", "公租房", "廉租房"])
def test_no_text_names_what_its_clauses_do_not(kb, word):
    # The plan never mentions 实施细则 (nor 生育津贴, 公租房, 廉租房): a text that
    # promises them goes past the plan.
    for entry, text, clauses in _texts(kb):
        if word in text:
            assert any(word in kb.clauses[c].text for c in clauses), f"{entry} says {word}"


def test_no_synonym_maps_to_a_different_programme(kb):
    mapped = {v: canonical for canonical, variants in kb.synonyms.items() for v in variants}
    for other in ("公租房", "廉租房"):
        assert mapped.get(other) != "保障性租赁住房"
    assert "生育津贴" not in mapped and "生育津贴" not in kb.synonyms
    for answer in kb.answers.values():
        assert not {"生育津贴", "津贴", "公租房", "廉租房"} & set(answer.keywords), answer.id


def test_maternity_insurance_keeps_the_plans_names_of_the_payment_reforms(kb):
    text = kb.answers["maternity_insurance"].text
    assert "疾病诊断分组付费及按病种分值付费改革" in text
    assert "疾病诊断分组付费及按病种分值付费改革" in kb.clauses["2.4.1"].text


def test_warm_home_is_given_no_purpose_the_plan_does_not_state(kb):
    text = kb.answers["warm_home"].text
    assert "暖心家园" in text and "提供扶助关怀" not in text
    assert "方案没有写明" in text


def test_childcare_supervision_says_who_supervises(kb):
    text = kb.answers["childcare_supervision"].text
    assert "全市各级人民政府" in text and "承担监管责任" in text
    assert "全市各级人民政府对婴幼儿照护服务制度建设、行业规划、质量安全、运营秩序承担监管责任" in kb.clauses["2.3.4"].text


def test_prenatal_diagnosis_numbers_are_called_construction_targets(kb):
    text = kb.answers["obstetric_pediatric_services"].text
    assert "建设目标" in text and "1所提供产前诊断服务" in text


@pytest.fixture
def kb_copy(tmp_path):
    dst = tmp_path / "knowledge"
    shutil.copytree(ROOT / "knowledge", dst)
    return dst


def test_broken_clause_reference_names_file_and_entry(kb_copy):
    path = kb_copy / "benefits" / "paternity_leave.yml"
    path.write_text(path.read_text(encoding="utf-8").replace('clause: "2.4.1"', 'clause: "9.9.9"', 1), encoding="utf-8")
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(kb_copy)
    assert "paternity_leave.yml" in str(err.value) and "9.9.9" in str(err.value)


def test_unknown_department_in_clause_names_it(kb_copy):
    path = kb_copy / "clauses.yml"
    path.write_text(path.read_text(encoding="utf-8").replace("- 市统计局", "- 市不存在局", 1), encoding="utf-8")
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(kb_copy)
    assert "市不存在局" in str(err.value) and "2.1.4" in str(err.value)


def test_unknown_fact_in_condition_names_entry(kb_copy):
    path = kb_copy / "benefits" / "parental_leave.yml"
    path.write_text(path.read_text(encoding="utf-8").replace("fact: born_under_policy", "fact: born_in_policy"),
                    encoding="utf-8")
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(kb_copy)
    assert "parental_leave condition 1" in str(err.value) and "born_in_policy" in str(err.value)


def test_follow_up_to_missing_answer_fails(kb_copy):
    path = kb_copy / "answers.yml"
    path.write_text(path.read_text(encoding="utf-8").replace("follow_ups: [targets,", "follow_ups: [nope,", 1),
                    encoding="utf-8")
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(kb_copy)
    assert "answers.yml" in str(err.value) and "nope" in str(err.value)


def test_readme_documents_every_fact_and_benefit(kb):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in kb.input_facts():
        assert f"`{name}`" in readme, f"README does not document fact {name}"
    for bid in kb.benefits:
        assert f"`{bid}`" in readme, f"README does not document benefit {bid}"


def test_open_conditions_name_a_listed_department_or_a_rule_the_clause_names(kb_copy):
    path = kb_copy / "benefits" / "rental_housing_priority.yml"
    path.write_text(path.read_text(encoding="utf-8").replace("set_by: 市住房和城乡建设局", "set_by: 市公安局"),
                    encoding="utf-8")
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(kb_copy)
    assert "rental_housing_priority.yml" in str(err.value) and "市公安局" in str(err.value)


def test_condition_without_a_list_of_conditions_fails(kb_copy):
    path = kb_copy / "benefits" / "paternity_leave.yml"
    path.write_text(path.read_text(encoding="utf-8").replace("conditions: []", ""), encoding="utf-8")
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(kb_copy)
    assert "paternity_leave.yml" in str(err.value) and "conditions" in str(err.value)


def test_not_covered_entry_with_unknown_answer_or_field_names_it(kb_copy):
    path = kb_copy / "not_covered.yml"
    original = path.read_text(encoding="utf-8")
    path.write_text(original.replace("answer: maternity_insurance", "answer: maternity_money", 1), encoding="utf-8")
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(kb_copy)
    assert "not_covered.yml" in str(err.value) and "maternity_allowance" in str(err.value)
    path.write_text(original.replace("关于{title}，{where}", "关于{title}，{department}", 1), encoding="utf-8")
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(kb_copy)
    assert "fourth_child" in str(err.value) and "department" in str(err.value)
