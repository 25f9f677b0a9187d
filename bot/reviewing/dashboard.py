"""The week at a glance: figures for a period and their charts as server-side SVG.

Questions per day and the topics asked come from Rasa's tracker store (user
messages and their intents); gaps, feedback and departments from the review
store. Charts are plain SVG drawn here (no script, no build step, allowed by
the pages' CSP), each with a title, a description and the same figures as a
table for screen readers and for copying into a report.
"""
from __future__ import annotations

import datetime as dt
import html
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..knowledge import Knowledge
from ..review import review_items
from .conversations import TrackerReader, events
from .labels import (GAP_KINDS, LOCAL_TZ, NO_DEPARTMENT_LABEL, department_of, intent_label, local_day_start_utc,
                     to_local, topic_of)

log = logging.getLogger(__name__)

UNANSWERED_KINDS = ("unanswered", "low_confidence", "out_of_scope")
MAX_DAYS = 92
TOP = 10


@dataclass
class Period:
    start: dt.date
    end: dt.date      # inclusive

    @property
    def days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def utc_bounds(self) -> tuple[dt.datetime, dt.datetime]:
        return local_day_start_utc(self.start), local_day_start_utc(self.end + dt.timedelta(days=1))


def _local_day(value: dt.datetime) -> dt.date:
    return to_local(value).date()


def review_figures(engine: sa.engine.Engine, kb: Knowledge, period: Period) -> dict[str, Any]:
    """Counts from the review store for the period."""
    start, end = period.utc_bounds()
    c = review_items.c
    query = sa.select(c.created_at, c.kind, c.intent, c.answer_id).where(c.created_at >= start, c.created_at < end)
    unanswered_per_day: Counter = Counter()
    gaps_by_department: Counter = Counter()
    feedback: dict[str, Counter] = {}
    kinds: Counter = Counter()
    with engine.connect() as conn:
        for created_at, kind, intent, answer_id in conn.execute(query):
            kinds[kind] += 1
            if kind in UNANSWERED_KINDS:
                unanswered_per_day[_local_day(created_at)] += 1
            if kind in GAP_KINDS:
                gaps_by_department[department_of(kb, intent, answer_id) or NO_DEPARTMENT_LABEL] += 1
            if kind in ("helpful", "unhelpful"):
                topic = topic_of(kb, intent, answer_id)
                if topic:
                    feedback.setdefault(topic, Counter())[kind] += 1
    unhelpful_share = []
    for topic, counts in feedback.items():
        total = counts["helpful"] + counts["unhelpful"]
        unhelpful_share.append({"topic": topic, "label": kb.answers[topic].title, "unhelpful": counts["unhelpful"],
                                "total": total, "share": counts["unhelpful"] / total if total else 0.0})
    unhelpful_share.sort(key=lambda r: (-r["share"], -r["total"], r["label"]))
    return {"unanswered_per_day": unanswered_per_day, "gaps_by_department": gaps_by_department,
            "unhelpful_share": unhelpful_share[:TOP], "kinds": kinds}


def tracker_figures(reader: TrackerReader | None, kb: Knowledge, period: Period) -> dict[str, Any] | None:
    """Questions per day and the topics asked, from the tracker store; None when it cannot be read."""
    if reader is None:
        return None
    try:
        if not reader.available():
            return None
        start, end = (d.replace(tzinfo=dt.timezone.utc).timestamp() for d in period.utc_bounds())
        offset = LOCAL_TZ.utcoffset(None).total_seconds()
        local = (events.c.timestamp + offset) / 86400
        day = sa.cast(local, sa.Integer) if reader.engine.dialect.name == "sqlite" else sa.func.floor(local)
        user = [events.c.type_name == "user", events.c.timestamp >= start, events.c.timestamp < end]
        per_day: Counter = Counter()
        topics: Counter = Counter()
        with reader.engine.connect() as conn:
            for bucket, count in conn.execute(sa.select(day, sa.func.count()).where(*user).group_by(day)):
                per_day[dt.date(1970, 1, 1) + dt.timedelta(days=int(bucket))] += count
            query = sa.select(events.c.intent_name, sa.func.count()).where(
                *user, events.c.intent_name.like("ask\\_%", escape="\\")).group_by(events.c.intent_name)
            for intent, count in conn.execute(query):
                if intent and intent[4:] in kb.answers:
                    topics[intent] += count
    except Exception:  # noqa: BLE001 - the dashboard shows the review figures without these
        log.exception("could not read the tracker store for the dashboard")
        return None
    top = [{"intent": i, "label": intent_label(kb, i), "count": n}
           for i, n in sorted(topics.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]]
    return {"per_day": per_day, "top_topics": top}


# -- charts ------------------------------------------------------------------------------
INK, MUTED, GRID = "#1a1a1a", "#555b65", "#d3d7de"
BAR, LINE, WARN = "#0b5cad", "#a3261c", "#7a4d00"


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _svg(width: int, height: int, title: str, desc: str, body: list[str], chart_id: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{_e(chart_id)}" viewBox="0 0 {width} {height}" '
            f'width="100%" role="img" aria-labelledby="{_e(chart_id)}-t {_e(chart_id)}-d" '
            f'preserveAspectRatio="xMinYMin meet">'
            f'<title id="{_e(chart_id)}-t">{_e(title)}</title><desc id="{_e(chart_id)}-d">{_e(desc)}</desc>'
            f'<rect width="{width}" height="{height}" fill="#ffffff"/>'   # an opaque ground: text contrast is defined
            + "".join(body) + "</svg>")


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def daily_chart(days: list[dt.date], questions: list[int] | None, unanswered: list[int], chart_id: str) -> str:
    """Bars: questions per day (or unanswered items when the tracker is unavailable); line: unanswered rate."""
    width, height, left, right, top, bottom = 760, 260, 48, 52, 16, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    bars = questions if questions is not None else unanswered
    peak = _nice_max(max(bars, default=0))
    n = max(1, len(days))
    slot = plot_w / n
    body = []
    for k in range(5):
        y = top + plot_h - plot_h * k / 4
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="{GRID}"/>')
        body.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="{MUTED}">'
                    f'{peak * k / 4:g}</text>')
        if questions is not None:
            body.append(f'<text x="{width - right + 6}" y="{y + 4:.1f}" font-size="11" fill="{LINE}">{25 * k}%</text>')
    points = []
    label_every = max(1, n // 10)
    for i, day in enumerate(days):
        x = left + slot * i
        value = bars[i]
        h = plot_h * value / peak
        body.append(f'<rect class="chart-bar" x="{x + slot * 0.15:.1f}" y="{top + plot_h - h:.1f}" width="{slot * 0.7:.1f}" '
                    f'height="{h:.1f}" fill="{BAR}"><title>{_e(day.isoformat())}：{value}</title></rect>')
        if i % label_every == 0:
            body.append(f'<text x="{x + slot / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle" font-size="11" '
                        f'fill="{MUTED}">{day.month}/{day.day}</text>')
        if questions is not None:
            rate = unanswered[i] / questions[i] if questions[i] else 0.0
            points.append((x + slot / 2, top + plot_h - plot_h * min(rate, 1.0), day, rate))
    if points:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
        body.append(f'<polyline class="rate" points="{path}" fill="none" stroke="{LINE}" stroke-width="2"/>')
        for x, y, day, rate in points:
            body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{LINE}">'
                        f'<title>{_e(day.isoformat())} 未答率 {rate:.0%}</title></circle>')
    legend_y = height - 8
    if questions is not None:
        body.append(f'<rect x="{left}" y="{legend_y - 9}" width="10" height="10" fill="{BAR}"/>'
                    f'<text x="{left + 14}" y="{legend_y}" font-size="12" fill="{INK}">每日提问数</text>'
                    f'<line x1="{left + 100}" y1="{legend_y - 4}" x2="{left + 118}" y2="{legend_y - 4}" '
                    f'stroke="{LINE}" stroke-width="2"/>'
                    f'<text x="{left + 122}" y="{legend_y}" font-size="12" fill="{INK}">未答率（右轴）</text>')
        desc = "；".join(f"{d.month}月{d.day}日 提问{q} 未答{u}" for d, q, u in zip(days, questions, unanswered))
        title = "每日提问数与未答率"
    else:
        body.append(f'<rect x="{left}" y="{legend_y - 9}" width="10" height="10" fill="{BAR}"/>'
                    f'<text x="{left + 14}" y="{legend_y}" font-size="12" fill="{INK}">每日未答问题数（对话记录不可用）</text>')
        desc = "；".join(f"{d.month}月{d.day}日 未答{u}" for d, u in zip(days, unanswered))
        title = "每日未答问题数"
    return _svg(width, height, title, desc, body, chart_id)


def bar_chart(rows: list[tuple[str, float, str]], title: str, chart_id: str, *, percent: bool = False) -> str:
    """Horizontal bars: (label, value, text shown after the bar)."""
    width, label_w, row_h, top = 760, 260, 26, 8
    height = top * 2 + row_h * max(1, len(rows))
    peak = 1.0 if percent else _nice_max(max((v for _, v, _ in rows), default=0))
    bar_w = width - label_w - 120
    body = []
    if not rows:
        body.append(f'<text x="8" y="{top + 16}" font-size="13" fill="{MUTED}">所选时段没有数据</text>')
    for i, (label, value, note) in enumerate(rows):
        y = top + i * row_h
        shown = label if len(label) <= 18 else label[:17] + "…"
        w = bar_w * (value / peak if peak else 0)
        body.append(f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end" font-size="13" fill="{INK}">'
                    f'<title>{_e(label)}</title>{_e(shown)}</text>')
        body.append(f'<rect class="chart-bar" x="{label_w}" y="{y + 4}" width="{max(w, 1):.1f}" height="{row_h - 8}" '
                    f'fill="{BAR}"><title>{_e(label)}：{_e(note)}</title></rect>')
        body.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 17}" font-size="12" fill="{INK}">{_e(note)}</text>')
    desc = "；".join(f"{label} {note}" for label, _, note in rows) or "所选时段没有数据"
    return _svg(width, height, title, desc, body, chart_id)


def sparkline(counts: list[int], label: str) -> str:
    """A group's trend: questions per day as a tiny bar strip."""
    width, height = 120, 24
    peak = max(counts, default=0) or 1
    slot = width / max(1, len(counts))
    body = []
    for i, n in enumerate(counts):
        h = (height - 2) * n / peak
        body.append(f'<rect x="{i * slot:.1f}" y="{height - h:.1f}" width="{max(slot - 1, 1):.1f}" height="{h:.1f}" '
                    f'fill="{BAR}"/>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="spark" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" aria-label="{_e(label)}">' + "".join(body) + "</svg>")
