"""Runs tests/cases/eligibility.yml, and checks the cases really sit on both
sides of every condition of every benefit."""
from pathlib import Path

import pytest
import yaml

from bot.eligibility import FactError, evaluate, parse_facts

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "eligibility.yml").read_text(encoding="utf-8"))["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(kb, case):
    results = {r.benefit: r for r in evaluate(case["facts"], kb=kb)}
    for benefit, status in case["expect"].items():
        assert results[benefit].status == status, [r for r in results[benefit].reasons]
    for benefit, missing in case.get("missing", {}).items():
        assert list(results[benefit].missing) == missing


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
    r = evaluate({"hukou_ordos": False}, kb=kb, benefits=["delivery_subsidy"])[0]
    assert r.status == "ineligible" and r.missing == ()
    assert any(reason["met"] is False and reason["fact"] == "hukou_ordos" for reason in r.reasons)


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
