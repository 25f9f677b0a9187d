"""Rules-as-data eligibility: every verdict and reason cites its clause.

A condition evaluates to True, False or None (a fact it needs is missing).
A benefit is `ineligible` as soon as one condition is False, `unknown` when
none is False but some are None, and `eligible` only when all are True.
A timing condition (产假期满后) is about when, not whether: unmet, it means
"later" and never makes a benefit ineligible; it is never asked for.
`eligible` means the conditions the plan states are met: where the plan
leaves others to a department or a rule, `open_conditions` says who sets them.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from .knowledge import Benefit, Condition, Knowledge

ELIGIBLE, INELIGIBLE, UNKNOWN = "eligible", "ineligible", "unknown"


class FactError(ValueError):
    """A fact the caller supplied is unknown or has the wrong type."""

    def __init__(self, field: str, message_zh: str, message_en: str):
        super().__init__(f"{field}: {message_en}")
        self.field, self.message_zh, self.message_en = field, message_zh, message_en


_TRUE = {"true", "yes", "1", "是", "对", "有"}
_FALSE = {"false", "no", "0", "否", "不是", "没有", "无"}


def parse_fact(kb: Knowledge, name: str, value: Any) -> Any:
    """Validate and coerce one supplied fact; None means 'not known'."""
    fact = kb.facts.get(name)
    if fact is None or fact.derived_from:
        raise FactError(name, f"未知的字段：{name}", f"unknown fact '{name}'")
    if value is None:
        return None
    if fact.type == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise FactError(name, f"{name}（{fact.label}）应为 true 或 false", f"'{name}' must be a boolean")
    if fact.type == "int":
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise FactError(name, f"{name}（{fact.label}）应为整数", f"'{name}' must be an integer")
        try:
            number = int(value)
        except ValueError as exc:
            raise FactError(name, f"{name}（{fact.label}）应为整数", f"'{name}' must be an integer") from exc
        if (fact.min is not None and number < fact.min) or (fact.max is not None and number > fact.max):
            raise FactError(name, f"{name}（{fact.label}）应在 {fact.min} 到 {fact.max} 之间",
                            f"'{name}' must be between {fact.min} and {fact.max}")
        return number
    if fact.type == "date":
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError as exc:
            raise FactError(name, f"{name}（{fact.label}）不是有效日期，请使用 YYYY-MM-DD 格式",
                            f"'{name}' is not a date (use YYYY-MM-DD)") from exc
    if fact.type == "enum":
        if value in fact.values:
            return value
        allowed = "、".join(fact.values)
        raise FactError(name, f"{name}（{fact.label}）只能是：{allowed}",
                        f"'{name}' must be one of: {', '.join(fact.values)}")
    raise AssertionError(fact.type)


def parse_facts(kb: Knowledge, raw: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise FactError("facts", "facts 应为对象（键值对）", "'facts' must be an object")
    facts = {name: parse_fact(kb, name, value) for name, value in raw.items()}
    today, born = facts.get("today"), facts.get("birth_date")
    if today and born and born > today:
        raise FactError("birth_date", "孩子出生日期晚于查询日期", "'birth_date' is after 'today'")
    return facts


def full_years(born: dt.date, on: dt.date) -> int:
    years = on.year - born.year
    if (on.month, on.day) < (born.month, born.day):
        years -= 1
    return years


def derive(kb: Knowledge, facts: dict[str, Any]) -> dict[str, Any]:
    """Add derived facts (child_age) where their inputs are known."""
    out = dict(facts)
    if out.get("birth_date") is not None and out.get("today") is not None:
        out["child_age"] = full_years(out["birth_date"], out["today"])
    return out


def check(cond: Condition, facts: dict[str, Any]) -> bool | None:
    value = facts.get(cond.fact)
    if value is None:
        return None
    if cond.op == "is":
        return value is cond.value
    if cond.op == "equals":
        return value == cond.value
    if cond.op == "in":
        return value in cond.value
    if cond.op == "at_least":
        return value >= cond.value
    if cond.op == "below":
        return value < cond.value
    if cond.op == "on_or_after":
        return value >= cond.value
    raise AssertionError(cond.op)


@dataclass(frozen=True)
class Result:
    benefit: str
    name: str
    status: str
    reasons: tuple[dict, ...]
    missing: tuple[str, ...]
    clauses: tuple[str, ...]
    departments: dict[str, Any]
    amount: str
    note: str
    # Who sets the conditions the plan leaves open ("" when the plan states them all).
    open_conditions: str = ""
    # Timing conditions not met yet: the benefit applies later (e.g. 产假期满后).
    later: tuple[str, ...] = ()

    @property
    def department_names(self) -> list[str]:
        """The handling department first, then the leads (coordinators), then the rest."""
        return list(self.departments.get("in_order", []))

    def as_dict(self) -> dict[str, Any]:
        return {"benefit": self.benefit, "name": self.name, "status": self.status,
                "reasons": list(self.reasons), "missing": list(self.missing),
                "clauses": list(self.clauses), "departments": self.departments,
                "amount": self.amount, "note": self.note, "open_conditions": self.open_conditions,
                "later": list(self.later)}


def departments_for(kb: Knowledge, benefit_id: str) -> dict[str, Any]:
    """Handler first: {handler, reason, lead, responsible, in_order}.

    `lead` and `responsible` are as the plan lists them for the benefit's
    clauses; `in_order` is every one of them once, the handling department
    first, then the leads as coordinators, then the rest.
    """
    handling = kb.benefits[benefit_id].handling
    clauses = kb.benefits[benefit_id].clauses
    return {"handler": handling.department, "reason": handling.reason,
            "lead": list(kb.lead_of(clauses)),
            "responsible": list(dict.fromkeys(d for c in clauses for d in kb.clauses[c].responsible)),
            "in_order": handling.departments}


def _missing_inputs(kb: Knowledge, fact_name: str, facts: dict[str, Any]) -> list[str]:
    sources = kb.facts[fact_name].derived_from or (fact_name,)
    return [s for s in sources if facts.get(s) is None]


def evaluate_benefit(kb: Knowledge, benefit: Benefit, facts: dict[str, Any]) -> Result:
    reasons: list[dict] = []
    missing: list[str] = []
    later: list[str] = []
    failed = False
    for cond in benefit.conditions:
        outcome = check(cond, facts)
        label = kb.clauses[cond.clause].label
        reason = {"condition": cond.text, "fact": cond.fact, "met": outcome, "clause": cond.clause,
                  "citation": f"《实施方案》{label}"}
        if cond.timing:
            reason["timing"] = True
            if outcome is False:
                later.append(cond.text)
        elif outcome is None:
            missing += [m for m in _missing_inputs(kb, cond.fact, facts) if m not in missing]
        else:
            failed = failed or not outcome
        reasons.append(reason)
    status = INELIGIBLE if failed else (UNKNOWN if missing else ELIGIBLE)
    if status == INELIGIBLE:
        # A verdict already reached needs no more questions.
        missing = []
    opened = benefit.open_conditions.text if benefit.open_conditions else ""
    return Result(benefit.id, benefit.name, status, tuple(reasons), tuple(missing), benefit.clauses,
                  departments_for(kb, benefit.id), benefit.amount, benefit.note, opened, tuple(later))


def evaluate(facts: dict[str, Any], today: dt.date | None = None, *, kb: Knowledge | None = None,
             benefits: list[str] | None = None) -> list[Result]:
    """Evaluate every benefit (or the listed ones); raises FactError on bad facts."""
    if kb is None:
        from .knowledge import get_knowledge

        kb = get_knowledge()
    facts = parse_facts(kb, facts)
    if facts.get("today") is None:
        facts["today"] = today or dt.date.today()
    facts = derive(kb, facts)
    chosen = benefits or list(kb.benefits)
    return [evaluate_benefit(kb, kb.benefits[b], facts) for b in chosen]


def next_missing(kb: Knowledge, benefit_id: str, facts: dict[str, Any], today: dt.date | None = None) -> str | None:
    """The next fact to ask for this benefit, in the rule's own order."""
    result = evaluate(facts, today, kb=kb, benefits=[benefit_id])[0]
    return result.missing[0] if result.status == UNKNOWN else None
