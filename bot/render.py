"""Citizen-facing text, rendered from knowledge entries (never retyped).

Every text that names departments names the one that handles the measure
first, then the plan's lead departments as 牵头协调.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .config import Settings
from .eligibility import ELIGIBLE, INELIGIBLE, Result
from .knowledge import Answer, Handling, Knowledge, NotCovered

OFFICIAL_TEXT_PREVAILS = "以上为政策摘要，以官方发布的政策原文为准。"


@dataclass
class Reply:
    text: str
    buttons: list[dict] = field(default_factory=list)
    clauses: list[str] = field(default_factory=list)
    answer_id: str | None = None
    # What the message is (see README "Reply data"): answer, verdict, ask, gist, department,
    # not_covered, menu, fallback, out_of_scope, handoff, feedback, greet, other.
    kind: str = "other"
    benefit: str | None = None
    status: str | None = None
    fact: str | None = None
    departments: list[str] = field(default_factory=list)

    def as_message(self) -> dict:
        msg = {"text": self.text}
        if self.buttons:
            msg["buttons"] = self.buttons
        custom = {"clauses": self.clauses, "kind": self.kind}
        for key in ("answer_id", "benefit", "status", "fact"):
            if getattr(self, key):
                custom[key] = getattr(self, key)
        if self.departments:
            custom["departments"] = self.departments
        msg["custom"] = custom
        return msg


def busy_apology(settings: Settings) -> str:
    """What a citizen reads when the assistant cannot answer in time."""
    return (f"抱歉，系统暂时繁忙，没能及时回答您的问题。您可以稍后再试，"
            f"或拨打{settings.hotline}（{settings.hotline_name}）咨询。")


def citation(kb: Knowledge, clause_ids) -> str:
    return "依据：《实施方案》" + "、".join(kb.clauses[c].label for c in clause_ids)


def hotline(settings: Settings) -> str:
    return f"{settings.hotline}（{settings.hotline_name}）"


def department_line(handling: Handling, settings: Settings) -> str:
    """办理部门：<handler>；牵头协调：<leads>. The hotline where the plan names no department."""
    if not handling.department:
        return f"咨询电话：{hotline(settings)}"
    line = "办理部门：" + handling.department
    if handling.department in handling.leads:
        line += "（牵头部门）"
    if handling.coordinators:
        line += "；牵头协调：" + "、".join(handling.coordinators)
    return line


def where_to_ask(handling: Handling, settings: Settings) -> str:
    """One sentence: ask the handling department (contacts are not recorded yet) or the hotline."""
    if handling.department:
        return f"请向{handling.department}咨询，也可拨打{hotline(settings)}。"
    return f"请拨打{hotline(settings)}咨询。"


def button(title: str) -> dict:
    # Payloads are plain text: messages starting with "/" are never intents.
    return {"title": title, "payload": title}


def follow_up_buttons(kb: Knowledge, answer: Answer, limit: int = 3) -> list[dict]:
    buttons = []
    if answer.benefit:
        buttons.append(button(f"我能享受{kb.benefits[answer.benefit].name}吗"))
    for fid in answer.follow_ups:
        if len(buttons) >= limit:
            break
        buttons.append(button(kb.answers[fid].questions[0]))
    return buttons[:limit]


def render_answer(kb: Knowledge, answer_id: str, settings: Settings) -> Reply:
    answer = kb.answers[answer_id]
    text = "\n".join([answer.text, citation(kb, answer.clauses), department_line(answer.handling, settings),
                      OFFICIAL_TEXT_PREVAILS])
    return Reply(text, follow_up_buttons(kb, answer), list(answer.clauses), answer_id, kind="answer",
                 departments=kb.handlers_of(answer_id))


def render_departments(kb: Knowledge, answer_id: str, settings: Settings | None = None) -> Reply:
    """Who handles a topic: the handling department and why, the leads as coordinators, the rest."""
    if settings is None:
        from .config import load_settings

        settings = load_settings()
    answer = kb.answers[answer_id]
    handling = answer.handling
    if not handling.department:
        lines = [f"“{answer.title}”由各旗区人民政府和市直各有关部门共同落实，方案未指定具体部门。",
                 citation(kb, answer.clauses), f"如需咨询，请拨打{hotline(settings)}。"]
    else:
        lines = [f"“{answer.title}”由{handling.department}办理（{handling.reason}）。"]
        if handling.coordinators:
            lines.append(f"牵头协调：{'、'.join(handling.coordinators)}。")
        others = [d for d in handling.responsible if d != handling.department]
        if others:
            lines.append(f"按职责分工负责：{'、'.join(others)}。")
        lines.append(citation(kb, answer.clauses))
        phone = kb.departments[handling.department].contact.get("phone")
        lines.append(f"联系电话：{phone}" if phone else f"联系电话暂未收录，可拨打{hotline(settings)}转接。")
    return Reply("\n".join(lines), [button(answer.questions[0])], list(answer.clauses), answer_id,
                 kind="department", departments=kb.handlers_of(answer_id))


def render_department_duties(kb: Knowledge, name: str, limit: int = 6) -> Reply:
    dept = kb.departments[name]
    lines = [f"{dept.name}在本方案中："]
    handled = [a.title for a in kb.answers.values() if a.handling.department == name]
    if handled:
        more = "等" if len(handled) > limit else ""
        lines.append("办理：" + "、".join(handled[:limit]) + more)
    if dept.leads:
        lines.append("牵头协调：" + "；".join(f"{kb.clauses[c].title}（{kb.clauses[c].label}）" for c in dept.leads[:limit]))
    if dept.responsible_for:
        more = "等" if len(dept.responsible_for) > limit else ""
        lines.append("参与：" + "；".join(f"{kb.clauses[c].title}（{kb.clauses[c].label}）"
                                        for c in dept.responsible_for[:limit]) + more)
    phone = dept.contact.get("phone")
    lines.append(f"联系电话：{phone}" if phone else "联系电话：暂未收录，可拨打12345政务服务便民热线转接。")
    return Reply("\n".join(lines), [], list(dept.leads + dept.responsible_for), kind="department",
                 departments=[name])


_STATUS_ZH = {ELIGIBLE: "符合条件", INELIGIBLE: "不符合条件", "unknown": "暂时无法判断"}
# Eligible where the plan leaves other conditions to someone else: never a bare 符合条件.
ELIGIBLE_AS_STATED = "符合方案列明的条件"


def status_text(result: Result) -> str:
    """The verdict's headline: 符合条件 / 符合方案列明的条件；其他条件由…确定 / 不符合条件 / 暂时无法判断."""
    if result.status == ELIGIBLE and result.open_conditions:
        return f"{ELIGIBLE_AS_STATED}；{result.open_conditions}"
    return _STATUS_ZH[result.status]


_MARKS = {True: "✓", False: "✗", None: "？"}


def _reason_line(reason: dict) -> str:
    if reason.get("timing"):
        if reason["met"] is False:
            return f"◷ {reason['condition']}适用（目前尚未到期）"
        return f"{'✓' if reason['met'] else '◷'} {reason['condition']}"
    return f"{_MARKS[reason['met']]} {reason['condition']}"


def render_verdict(kb: Knowledge, result: Result, settings: Settings | None = None) -> Reply:
    if settings is None:
        from .config import load_settings

        settings = load_settings()
    benefit = kb.benefits[result.benefit]
    lines = [f"【{result.name}】{status_text(result)}"]
    lines += [_reason_line(reason) for reason in result.reasons]
    if result.status == ELIGIBLE:
        lines.append("方案规定：" + result.amount)
    if result.note:
        lines.append(result.note)
    lines.append(citation(kb, result.clauses))
    lines.append(department_line(benefit.handling, settings))
    lines.append("结果仅供参考，以主管部门审核为准。")
    return Reply("\n".join(lines), [], list(result.clauses), benefit.answer, kind="verdict",
                 benefit=result.benefit, status=result.status, departments=result.department_names)


def first_sentence(text: str) -> str:
    """The text up to its first full stop (the gist of an answer)."""
    end = text.find("。")
    return text if end < 0 else text[:end + 1]


def render_not_covered(kb: Knowledge, entry: NotCovered, answer_id: str | None, settings: Settings) -> Reply:
    """The honest reply for something the plan leaves out, about `answer_id`'s topic (or none)."""
    line = hotline(settings)
    if answer_id is None:
        text = entry.reply_no_topic.format(title="", gist="", where=f"请拨打{line}咨询。", hotline=line)
        return Reply(text, [], [], None, kind="not_covered")
    answer = kb.answers[answer_id]
    text = entry.reply.format(title=answer.title, gist=first_sentence(answer.text),
                              where=where_to_ask(answer.handling, settings), hotline=line)
    return Reply(text, [button(answer.questions[0])], list(answer.clauses), answer_id, kind="not_covered",
                 departments=kb.handlers_of(answer_id))
