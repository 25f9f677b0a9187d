"""Names the review pages show for kinds, statuses and intents, and each item's topic and department."""
from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path

import yaml

from ..config import ROOT
from ..knowledge import Knowledge

# China has one time zone and no daylight saving: days on the pages are Beijing days.
LOCAL_TZ = dt.timezone(dt.timedelta(hours=8))

KIND_LABELS = {
    "unanswered": "未能回答", "low_confidence": "低置信度", "out_of_scope": "超出范围", "handoff": "转人工",
    "unhelpful": "没帮助", "desk_no_result": "坐席查无结果", "desk_flag": "坐席标记", "abandoned_check": "核对中途放弃",
    "helpful": "有帮助",
}
# Everything the policy team works on (有帮助 is feedback, counted on the dashboard only).
GAP_KINDS = ("unanswered", "low_confidence", "out_of_scope", "handoff", "unhelpful", "desk_no_result", "desk_flag",
             "abandoned_check")
# What grouping is for: questions the assistant could not place.
QUESTION_KINDS = ("unanswered", "low_confidence", "out_of_scope", "desk_no_result")
STATUS_LABELS = {"new": "待处理", "pending": "待定", "accepted": "已归入意图", "new_topic": "新主题", "done": "已处理",
                 "ignored": "忽略"}
OPEN_STATUSES = ("new", "pending")
NO_DEPARTMENT = "__none__"
NO_DEPARTMENT_LABEL = "未识别主题"
DIALOGUE_INTENT_LABELS = {
    "check_eligibility": "资格核对", "inform": "提供信息", "ask_department": "询问部门", "greet": "问候",
    "goodbye": "告别", "thank": "致谢", "bot_challenge": "问是否机器人", "ask_capabilities": "问能做什么",
    "human_handoff": "转人工", "restart_conversation": "重新开始", "affirm": "肯定", "deny": "否定",
    "dont_know": "不知道", "cancel": "取消", "feedback_helpful": "反馈：有帮助", "feedback_unhelpful": "反馈：没帮助",
    "out_of_scope": "超出范围", "nlu_fallback": "无法理解",
}


@lru_cache(maxsize=4)
def domain_intents(domain_path: str = str(ROOT / "domain.yml")) -> tuple[str, ...]:
    """The intents of domain.yml: what an item may be assigned to (never the fallback)."""
    data = yaml.safe_load(Path(domain_path).read_text(encoding="utf-8")) or {}
    out = []
    for entry in data.get("intents", []):
        name = entry if isinstance(entry, str) else next(iter(entry))
        if name != "nlu_fallback":
            out.append(name)
    return tuple(out)


def intent_label(kb: Knowledge, name: str | None) -> str:
    if not name:
        return ""
    answer_id = name.removeprefix("ask_")
    if name.startswith("ask_") and answer_id in kb.answers:
        return kb.answers[answer_id].title
    return DIALOGUE_INTENT_LABELS.get(name, name)


def topic_of(kb: Knowledge, intent: str | None, answer_id: str | None) -> str | None:
    """The knowledge answer an item is about: the answer given, else the predicted intent's."""
    if answer_id and answer_id in kb.answers:
        return answer_id
    if intent and intent.startswith("ask_") and intent[4:] in kb.answers:
        return intent[4:]
    return None


def department_of(kb: Knowledge, intent: str | None, answer_id: str | None) -> str | None:
    """The department handling the item's topic (Knowledge.handlers_of(topic)[0]); a flagged clause: its lead."""
    topic = topic_of(kb, intent, answer_id)
    if topic is not None:
        handlers = kb.handlers_of(topic)
        return handlers[0] if handlers else None
    if answer_id and answer_id.startswith("clause:") and answer_id[7:] in kb.clauses:
        lead = kb.clauses[answer_id[7:]].lead
        return lead[0] if lead else None
    return None


_BY_DEPARTMENT: dict[int, tuple[Knowledge, dict[str, tuple[str, ...]]]] = {}


def topics_handled_by(kb: Knowledge, department: str) -> tuple[str, ...]:
    """The answers whose handling department is `department`."""
    cached = _BY_DEPARTMENT.get(id(kb))
    if cached is None or cached[0] is not kb:
        table: dict[str, list[str]] = {}
        for answer_id in kb.answers:
            handlers = kb.handlers_of(answer_id)
            if handlers:
                table.setdefault(handlers[0], []).append(answer_id)
        cached = _BY_DEPARTMENT[id(kb)] = (kb, {d: tuple(a) for d, a in table.items()})
    return cached[1].get(department, ())


def clauses_led_by(kb: Knowledge, department: str) -> tuple[str, ...]:
    return tuple(c.id for c in kb.clauses.values() if c.lead and c.lead[0] == department)


def departments_in_use(kb: Knowledge) -> list[str]:
    """Departments that handle at least one topic, in registry order."""
    handling = {d for d in (kb.handlers_of(a)[0] for a in kb.answers if kb.handlers_of(a))}
    return [d for d in kb.departments if d in handling]


def to_local(value: dt.datetime | None) -> dt.datetime | None:
    """A stored UTC time (naive) as Beijing time."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.timezone.utc).astimezone(LOCAL_TZ)


def local_day_start_utc(day: dt.date) -> dt.datetime:
    """Midnight of a Beijing day as naive UTC (how created_at is stored)."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ).astimezone(dt.timezone.utc).replace(tzinfo=None)


def today_local(now: dt.datetime | None = None) -> dt.date:
    now = now or dt.datetime.now(dt.timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.timezone.utc)
    return now.astimezone(LOCAL_TZ).date()
