"""Turn a citizen's free-text answer into a fact value (no Rasa import).

Used by the eligibility form's validators: "是的" -> True, "老三" -> 3,
"去年3月" -> a date, "宝妈" -> "mother", "不知道" -> UNKNOWN.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

import cn2an

from .text import normalize

UNKNOWN = "unknown"   # the citizen said they don't know; never guessed

_DONT_KNOW = re.compile(r"不知道|不清楚|不确定|不晓得|不太清楚|忘了|说不好|没印象|不了解|不懂")
_NO = re.compile(r"^(?:不是|不对|没有|没|否|不|无|木有|没得|还没|未|不在|不算|并不|不属于|不用)|(?:不是|没有)$")
_YES = re.compile(r"^(?:是|对|有|嗯|恩|yes|ok|好|在|算|属于|肯定|当然|没错|中|行|可以|已经|对的|是的)", re.I)


def parse_bool(text: str) -> bool | str | None:
    t = normalize(text).lower().strip(" 。.!！?？~，,")
    if not t:
        return None
    if _DONT_KNOW.search(t):
        return UNKNOWN
    if _NO.search(t):
        return False
    if _YES.search(t):
        return True
    return None


_ORDER_WORDS = {"老大": 1, "头胎": 1, "一胎": 1, "一孩": 1, "大宝": 1, "第一个": 1, "独生": 1,
                "老二": 2, "二胎": 2, "二孩": 2, "二宝": 2, "二娃": 2, "第二个": 2, "第二胎": 2,
                "老三": 3, "三胎": 3, "三孩": 3, "三宝": 3, "三娃": 3, "第三个": 3, "第三胎": 3,
                "老四": 4, "四胎": 4, "四孩": 4, "第四个": 4}


def _arabic(text: str) -> str:
    try:
        return cn2an.transform(text, "cn2an")
    except (ValueError, KeyError):
        return text


def parse_child_order(text: str) -> int | str | None:
    t = normalize(text)
    if _DONT_KNOW.search(t):
        return UNKNOWN
    for word, n in sorted(_ORDER_WORDS.items(), key=lambda kv: -len(kv[0])):
        if word in t:
            return n
    m = re.search(r"第?\s*(\d{1,2})\s*(?:个|胎|孩)?", _arabic(t))
    if m and 1 <= int(m.group(1)) <= 10:
        return int(m.group(1))
    return None


_COUNT = re.compile(r"(\d{1,2})\s*(?:个|娃|孩)")
_COUNT_WORDS = {"仨": 3, "俩": 2, "两": 2}


def parse_count(text: str) -> int | str | None:
    t = normalize(text)
    if _DONT_KNOW.search(t):
        return UNKNOWN
    for word, n in _COUNT_WORDS.items():
        if re.search(word + r"(?:个)?(?:娃|孩|宝)", t):
            return n
    a = _arabic(t)
    m = _COUNT.search(a) or re.fullmatch(r"\s*(\d{1,2})\s*", a)
    if m and 0 <= int(m.group(1)) <= 20:
        return int(m.group(1))
    return None


def parse_role(text: str) -> str | None:
    t = normalize(text)
    if re.search(r"妈|母亲|女方|老婆是我|我是.*(?:女|媳妇)|宝妈|产妇|孕妇|我生的", t):
        return "mother"
    if re.search(r"爸|父亲|男方|爹|老公是我|我是.*男|宝爸|丈夫", t):
        return "father"
    return None


def parse_hukou(text: str) -> bool | str | None:
    t = normalize(text)
    if _DONT_KNOW.search(t):
        return UNKNOWN
    if re.search(r"外地|外省|外市|外县|不是本地|非本地|不是鄂尔多斯|外来|老家户口", t):
        return False
    if re.search(r"本地|本市|鄂尔多斯|东胜|康巴什|达拉特|准格尔|鄂托克|杭锦|乌审|伊金霍洛|达旗|准旗|伊旗", t):
        return True
    return parse_bool(t)


_DATE_FULL = re.compile(r"(\d{4})\s*[年\-/.]\s*(\d{1,2})\s*[月\-/.]\s*(\d{1,2})\s*[日号]?")
_DATE_MONTH = re.compile(r"(\d{4})\s*[年\-/.]\s*(\d{1,2})\s*月?")
_REL_YEAR = {"今年": 0, "去年": -1, "前年": -2, "大前年": -3}
_REL_MONTH = re.compile(r"(大前年|前年|去年|今年)\s*(\d{1,2})\s*月(?:\s*(\d{1,2})\s*[日号])?")
_AGE = re.compile(r"(\d{1,2})\s*(?:周岁|岁)(半)?|(\d{1,2})\s*个月")


def parse_date(text: str, today: dt.date | None = None) -> dt.date | str | None:
    """A birth date from '2024年3月5日', '2024-03', '去年3月', '两岁半', '8个月'.

    A month without a day is taken as its first day; an age gives the date
    that many years (and months) before today. Future dates are rejected.
    """
    today = today or dt.date.today()
    t = normalize(text)
    if _DONT_KNOW.search(t):
        return UNKNOWN
    a = _arabic(t)
    a = a.replace("两岁", "2岁").replace("两个月", "2个月")
    try:
        if m := _DATE_FULL.search(a):
            d = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        elif m := _REL_MONTH.search(a):
            d = dt.date(today.year + _REL_YEAR[m.group(1)], int(m.group(2)), int(m.group(3) or 1))
        elif m := _DATE_MONTH.search(a):
            d = dt.date(int(m.group(1)), int(m.group(2)), 1)
        elif m := _AGE.search(a):
            if m.group(3):
                months = int(m.group(3))
            else:
                months = int(m.group(1)) * 12 + (6 if m.group(2) else 0)
            y, mo = divmod(today.year * 12 + today.month - 1 - months, 12)
            d = dt.date(y, mo + 1, min(today.day, 28))
        else:
            return None
    except ValueError:
        return None
    if d > today or d.year < 1900:
        return None
    return d


PARSERS = {"bool": parse_bool, "int": parse_child_order, "date": parse_date}


def parse_answer(fact: str, fact_type: str, text: str, today: dt.date | None = None) -> Any:
    """Dispatch on the fact; None means 'could not understand'."""
    if fact == "hukou_ordos":
        return parse_hukou(text)
    if fact == "applicant_role":
        if _DONT_KNOW.search(normalize(text)):
            return UNKNOWN
        return parse_role(text)
    if fact == "children_count":
        return parse_count(text)
    if fact_type == "date":
        return parse_date(text, today)
    return PARSERS[fact_type](text)

