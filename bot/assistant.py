"""What the assistant says, decided without Rasa: actions/ only wires this in.

Every reply is built from knowledge/ through bot.render; nothing here states
a policy fact of its own.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

from .config import Settings
from .eligibility import UNKNOWN as STATUS_UNKNOWN
from .eligibility import evaluate, parse_fact, FactError
from .knowledge import Knowledge
from .render import Reply, button, render_answer, render_department_duties, render_departments, render_verdict
from .search import SearchIndex
from .understand import UNKNOWN, parse_answer

from .cues import DEPARTMENT_CUE  # noqa: E402  (shared with the NLU classifier)
FEEDBACK_BUTTONS = [button("有帮助"), button("没帮助")]
MENU_TOPICS = ("three_child_policy", "maternity_leave", "parental_leave", "delivery_subsidy", "childrearing_subsidy",
               "childcare_tuition_subsidy", "same_school_enrolment", "housing_fund_loan", "special_families")
# Below this BM25 score a search hit is too weak to show at all.
MIN_CLAUSE_SCORE = 6.0
SUGGESTION_MIN_CONFIDENCE = 0.08
CJK = re.compile(r"[\u4e00-\u9fff]")


def strong(hit) -> bool:
    """A search hit worth showing: a good score and a real word in common."""
    return hit.score >= MIN_CLAUSE_SCORE and bool(hit.matched)


def answer_id_for_intent(kb: Knowledge, intent: str | None) -> str | None:
    if intent and intent.startswith("ask_") and intent[4:] in kb.answers:
        return intent[4:]
    return None


def answer_reply(kb: Knowledge, settings: Settings, intent: str, text: str) -> Reply | None:
    aid = answer_id_for_intent(kb, intent)
    if aid is None:
        return None
    if DEPARTMENT_CUE.search(text or ""):
        return render_departments(kb, aid)
    return render_answer(kb, aid, settings)


def feedback_prompt() -> Reply:
    return Reply("这个回答对您有帮助吗？", list(FEEDBACK_BUTTONS))


def department_reply(kb: Knowledge, index: SearchIndex, text: str, department: str | None) -> Reply:
    name = None
    if department:
        dept = kb.department_by_alias(department)
        name = dept.name if dept else None
    if name is None:
        named = index.departments_in(text)
        name = named[0] if named else None
    found = index.search(text, limit=1)["answers"]
    dept_terms = {t for d in kb.departments.values() for t in (d.name, *d.aliases)}
    topic_words = [m for m in found[0].matched if m not in dept_terms and not DEPARTMENT_CUE.search(m)
                   and m not in ("负责", "部门", "管理")] if found else []
    topic_named = bool(found) and strong(found[0]) and bool(topic_words)
    if name and not topic_named:
        return render_department_duties(kb, name)
    if topic_named:
        return render_departments(kb, found[0].id)
    return Reply("请问您想了解哪项政策由哪个部门负责？例如：“分娩补贴找哪个部门”“育儿假归谁管”。",
                 [button("分娩补贴找哪个部门"), button("托育服务归谁管"), button("公积金贷款找哪个部门")])


def menu_reply(kb: Knowledge) -> Reply:
    buttons = [button(kb.answers[a].questions[0]) for a in MENU_TOPICS]
    buttons.append(button("帮我查查能享受哪些政策"))
    return Reply("我可以解答鄂尔多斯市生育支持政策的问题，回答都注明政策依据。您可以直接提问，或点选下面的话题：", buttons)


def handoff_reply(settings: Settings) -> Reply:
    return Reply(f"如需人工服务，请拨打{settings.hotline}（{settings.hotline_name}）。"
                 "您刚才的问题已记录，政策团队会据此完善答复。")


def out_of_scope_reply(settings: Settings) -> Reply:
    return Reply("抱歉，这个问题不在我的服务范围内。我只解答鄂尔多斯市生育支持政策（三孩政策、生育假期、补贴、托育入园、住房等）"
                 f"方面的问题；其他事项请拨打{settings.hotline}（{settings.hotline_name}）咨询。",
                 [button("你能干什么")])


def fallback_reply(kb: Knowledge, index: SearchIndex, settings: Settings, text: str,
                   ranking: list[dict[str, Any]]) -> tuple[Reply, bool]:
    """Suggest likely topics; else show the best clause; else say so.

    Returns the reply and whether the question counts as unanswered.
    """
    suggestions = []
    found = index.search(text, limit=3) if text else {"answers": [], "clauses": []}
    # Suggestions only for a message with policy words in it: markup or random characters
    # get a plain "not understood", never topics unrelated to what was typed.
    related = bool(CJK.search(text or "")) and any(strong(h) for h in found["answers"] + found["clauses"])
    for item in ranking if related else []:
        aid = answer_id_for_intent(kb, item.get("name"))
        if aid and item.get("confidence", 0) >= SUGGESTION_MIN_CONFIDENCE and aid not in suggestions:
            suggestions.append(aid)
        if len(suggestions) == 3:
            break
    for hit in found["answers"] if related else []:
        if len(suggestions) >= 3:
            break
        if strong(hit) and hit.id not in suggestions:
            suggestions.append(hit.id)
    if suggestions:
        return Reply("您是想问以下哪个问题？", [button(kb.answers[a].questions[0]) for a in suggestions[:3]]), False
    clauses = [h for h in found["clauses"] if strong(h)] if related else []
    if clauses:
        best = kb.clauses[clauses[0].id]
        excerpt = re.sub(r"<[^>]+>", "", clauses[0].highlighted)
        return Reply(f"我没有找到直接的答复，与您的问题最相关的政策原文是：\n{excerpt[:200]}\n依据：{best.citation}\n"
                     f"如需进一步咨询，请拨打{settings.hotline}。", [button("转人工")], [best.id]), True
    menu = menu_reply(kb).buttons[:4]
    return Reply(f"抱歉，我没能理解您的问题。您可以换个说法，点选下面的常见话题，或拨打{settings.hotline}"
                 f"（{settings.hotline_name}）咨询。", menu + [button("转人工")]), True


# -- eligibility form ------------------------------------------------------

def fact_slots(kb: Knowledge) -> list[str]:
    return [n for n in kb.input_facts() if n != "today"]


def to_fact(kb: Knowledge, fact: str, raw: Any, today: dt.date | None = None) -> Any:
    """A slot value (entity value, button text or canonical value) as a fact.

    Returns the parsed value, UNKNOWN when the citizen does not know, or None
    when it cannot be understood.
    """
    if raw is None:
        return None
    if raw == UNKNOWN:
        return UNKNOWN
    if isinstance(raw, list):
        raw = raw[-1] if raw else None
        if raw is None:
            return None
    spec = kb.facts[fact]
    if not isinstance(raw, str):
        try:
            return parse_fact(kb, fact, raw)
        except FactError:
            return None
    if spec.type == "date":
        try:
            return parse_fact(kb, fact, raw)
        except FactError:
            pass
    if spec.type == "enum" and raw in spec.values:
        return raw
    if fact == "child_order" and raw.isdigit():
        value = int(raw)
        return value if spec.min <= value <= spec.max else None
    value = parse_answer(fact, spec.type, raw, today)
    if value is None or value == UNKNOWN:
        return value
    try:
        return parse_fact(kb, fact, value)
    except FactError:
        return None


def slot_value(value: Any) -> Any:
    """Canonical, JSON-safe slot value of a parsed fact."""
    return value.isoformat() if isinstance(value, dt.date) else value


def known_facts(kb: Knowledge, slots: dict[str, Any]) -> dict[str, Any]:
    facts = {}
    for name in fact_slots(kb):
        value = to_fact(kb, name, slots.get(name))
        if value is not None and value != UNKNOWN:
            facts[name] = value
    return facts


def told_unknown(kb: Knowledge, slots: dict[str, Any]) -> set[str]:
    return {n for n in fact_slots(kb) if slots.get(n) == UNKNOWN}


def still_needed(kb: Knowledge, benefit: str, slots: dict[str, Any], today: dt.date | None = None) -> list[str]:
    """Facts to ask for, in the rule's order; none once the verdict is reached."""
    result = evaluate(known_facts(kb, slots), today, kb=kb, benefits=[benefit])[0]
    skip = told_unknown(kb, slots)
    return [m for m in result.missing if m not in skip]


def resolve_benefit(kb: Knowledge, index: SearchIndex, raw: Any) -> str | None:
    if isinstance(raw, list):
        raw = raw[-1] if raw else None
    if not isinstance(raw, str) or not raw.strip():
        return None
    if raw in kb.benefits:
        return raw
    text = raw.strip()
    for benefit in kb.benefits.values():
        if text in (benefit.name, benefit.id) or benefit.name in text:
            return benefit.id
    hits = index.search(text, limit=3)["answers"]
    for hit in hits:
        if strong(hit) and kb.answers[hit.id].benefit:
            return kb.answers[hit.id].benefit
    return None


CHECKABLE = ("delivery_subsidy", "childrearing_subsidy", "childcare_tuition_subsidy", "same_school_enrolment",
             "parental_leave", "housing_fund_loan_uplift", "prenatal_check_subsidy", "paternity_leave")


def ask_benefit_reply(kb: Knowledge) -> Reply:
    return Reply("您想查哪一项政策？请点选或直接输入名称：", [button(kb.benefits[b].name) for b in CHECKABLE])


def ask_fact_reply(kb: Knowledge, fact: str) -> Reply:
    spec = kb.facts[fact]
    if spec.type == "bool":
        buttons = [button("是"), button("否"), button("不知道")]
    elif spec.type == "enum":
        buttons = [button(label.split("（")[0]) for label in spec.values.values()] + [button("不知道")]
    elif fact == "child_order":
        buttons = [button("老大"), button("老二"), button("老三"), button("不知道")]
    else:
        buttons = [button("不知道")]
    return Reply(spec.ask, buttons)


def not_understood_reply(kb: Knowledge, fact: str) -> Reply:
    spec = kb.facts[fact]
    hint = {"bool": "请回答“是”或“否”，不清楚可以说“不知道”。",
            "date": "请告诉我日期，例如“2024年3月5日”或“去年3月”，不清楚可以说“不知道”。",
            "int": "请告诉我一个数字，例如“2”或“老二”。",
            "enum": "请点选下面的选项。"}[spec.type]
    return Reply(f"抱歉，我没听明白。{hint}", ask_fact_reply(kb, fact).buttons)


def verdict_reply(kb: Knowledge, benefit: str, slots: dict[str, Any], today: dt.date | None = None) -> Reply:
    result = evaluate(known_facts(kb, slots), today, kb=kb, benefits=[benefit])[0]
    reply = render_verdict(kb, result)
    if result.status == STATUS_UNKNOWN:
        labels = "、".join(kb.facts[m].label for m in result.missing)
        reply.text = reply.text.replace("结果仅供参考", f"还需确认：{labels}。\n结果仅供参考", 1)
    answer = kb.answers[kb.benefits[benefit].answer]
    reply.buttons = [button(answer.questions[0]), button(f"{answer.title}找哪个部门")]
    return reply
