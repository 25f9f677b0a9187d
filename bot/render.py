"""Citizen-facing text, rendered from knowledge entries (never retyped)."""
from __future__ import annotations

from dataclasses import dataclass, field

from .config import Settings
from .eligibility import ELIGIBLE, INELIGIBLE, Result
from .knowledge import Answer, Knowledge

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


def department_line(kb: Knowledge, clause_ids, settings: Settings) -> str:
    lead = kb.lead_of(clause_ids)
    if lead:
        return "牵头部门：" + "、".join(lead)
    return f"咨询电话：{settings.hotline}（{settings.hotline_name}）"


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
    text = "\n".join([answer.text, citation(kb, answer.clauses), department_line(kb, answer.clauses, settings),
                      OFFICIAL_TEXT_PREVAILS])
    return Reply(text, follow_up_buttons(kb, answer), list(answer.clauses), answer_id)


def render_departments(kb: Knowledge, answer_id: str) -> Reply:
    answer = kb.answers[answer_id]
    lead, responsible = kb.lead_of(answer.clauses), kb.responsible_of(answer.clauses)
    if not lead:
        text = f"“{answer.title}”由各旗区人民政府和市直各有关部门共同落实，方案未指定牵头部门。"
    else:
        text = f"“{answer.title}”牵头部门：{'、'.join(lead)}。"
        if responsible:
            text += f"\n按职责分工负责：{'、'.join(responsible)}。"
    text += "\n" + citation(kb, answer.clauses)
    return Reply(text, [button(answer.questions[0])], list(answer.clauses), answer_id)


def render_department_duties(kb: Knowledge, name: str, limit: int = 6) -> Reply:
    dept = kb.departments[name]
    lines = [f"{dept.name}在本方案中："]
    if dept.leads:
        lines.append("牵头：" + "；".join(f"{kb.clauses[c].title}（{kb.clauses[c].label}）" for c in dept.leads[:limit]))
    if dept.responsible_for:
        more = "等" if len(dept.responsible_for) > limit else ""
        lines.append("参与：" + "；".join(f"{kb.clauses[c].title}（{kb.clauses[c].label}）"
                                        for c in dept.responsible_for[:limit]) + more)
    phone = dept.contact.get("phone")
    lines.append(f"联系电话：{phone}" if phone else "联系电话：暂未收录，可拨打12345政务服务便民热线转接。")
    return Reply("\n".join(lines), [], list(dept.leads + dept.responsible_for))


_STATUS_ZH = {ELIGIBLE: "符合条件", INELIGIBLE: "不符合条件", "unknown": "暂时无法判断"}


def render_verdict(kb: Knowledge, result: Result) -> Reply:
    lines = [f"【{result.name}】{_STATUS_ZH[result.status]}"]
    for reason in result.reasons:
        mark = {True: "✓", False: "✗", None: "？"}[reason["met"]]
        lines.append(f"{mark} {reason['condition']}")
    if result.status == ELIGIBLE:
        lines.append("待遇：" + result.amount)
    if result.note:
        lines.append(result.note)
    lines.append(citation(kb, result.clauses))
    lead = result.departments.get("lead") or []
    if lead:
        lines.append("牵头部门：" + "、".join(lead))
    lines.append("结果仅供参考，以主管部门审核为准。")
    return Reply("\n".join(lines), [], list(result.clauses), kb.benefits[result.benefit].answer)
