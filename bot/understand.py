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
_YES = re.compile(r"^(?:是|对|有|嗯|恩|yes|ok|好|在|算(?!了)|属于|肯定|当然|没错|中|行|可以|已经|对的|是的)", re.I)


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



# -- facts stated anywhere in a message -------------------------------------
#
# A citizen puts facts into questions ("就一个孩子，能拿育儿补贴不"), answers
# several at once ("鄂尔多斯户口，按政策生的") and talks about other people
# ("老大是择校进去的，老三能跟他同校吗"). extract_facts() reads every fact a
# message states about the person or child the conversation is about, with
# the words it came from. A fact it is not sure of is left out, never guessed.

from dataclasses import dataclass

_NUM = r"(\d{1,2}|[一二两俩仨三四五六七八九十]{1,3})"
_CN_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "俩": 2, "三": 3, "仨": 3, "四": 4, "五": 5, "六": 6, "七": 7,
              "八": 8, "九": 9}


def cn_number(token: str) -> int | None:
    """'3' / '三' / '十二' / '两' -> int (small numbers only)."""
    if token.isdigit():
        return int(token)
    if token in _CN_DIGITS:
        return _CN_DIGITS[token]
    if token.startswith("十"):
        return 10 + _CN_DIGITS.get(token[1:], 0) if len(token) <= 2 else None
    if len(token) in (2, 3) and token[1] == "十" and token[0] in _CN_DIGITS:
        return _CN_DIGITS[token[0]] * 10 + (_CN_DIGITS.get(token[2], 0) if len(token) == 3 else 0)
    return None


@dataclass(frozen=True)
class Found:
    fact: str
    value: Any          # bool, int, str, or a birth-date value (see date_value)
    evidence: str       # the words it came from


@dataclass(frozen=True)
class Context:
    """What the conversation is about when the message arrives."""
    benefit: str | None = None      # the benefit being checked or last talked about
    asked: str | None = None        # the fact the assistant just asked for
    child_order: int | None = None  # the child the check is about, if known


def date_value(earliest: dt.date, latest: dt.date) -> str:
    """A birth date as the check stores it: ISO day, or an ISO interval when only a range is known."""
    return earliest.isoformat() if earliest == latest else f"{earliest.isoformat()}/{latest.isoformat()}"


def date_range(value: Any) -> tuple[dt.date, dt.date] | None:
    """The (earliest, latest) of a stored birth-date value, or None."""
    if isinstance(value, dt.date):
        return value, value
    if not isinstance(value, str):
        return None
    try:
        if "/" in value:
            a, b = value.split("/", 1)
            return dt.date.fromisoformat(a), dt.date.fromisoformat(b)
        d = dt.date.fromisoformat(value)
        return d, d
    except ValueError:
        return None


def _month_end(year: int, month: int) -> dt.date:
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


def _shift_months(day: dt.date, months: int) -> dt.date:
    y, m = divmod(day.year * 12 + day.month - 1 - months, 12)
    m += 1
    return dt.date(y, m, min(day.day, _month_end(y, m).day))


_NEG_BEFORE = re.compile(r"(?:不是|不|没有|没|未|非|无|并非|木有|从未|从没)[^，,。；\s]{0,3}$")


def _negated(text: str, start: int) -> bool:
    """A negation just before a match ("没交过公积金", "单位从来没给交过公积金")."""
    return bool(_NEG_BEFORE.search(text[max(0, start - 6):start]))


# Words that name a child by place in the family.
_ORDINAL = re.compile(r"(老|第|大|二|三|四|五|头)(大|二|三|四|五|一)?(?:个)?(宝|娃|胎|孩子|孩|个|胎)?")
_ORDER_TERMS = [
    (r"老大|大宝|大娃|头胎|头一个|第一胎|第一个孩子|第一个娃|一胎|一孩|大儿子|大女儿|大闺女", 1),
    (r"老二|二宝|二娃|二胎|二孩|第二胎|第二个孩子|第二个娃|第二个|二儿子|二女儿|二闺女|小二", 2),
    (r"老三|三宝|三娃|三胎|三孩|第三胎|第三个孩子|第三个娃|第三个|小三儿", 3),
    (r"老四|四宝|四胎|四孩|第四胎|第四个孩子|第四个", 4),
    (r"老五|五胎|第五个孩子|第五胎", 5),
]
# Benefit and policy names that contain order words but state no fact.
_NAME_NOISE = re.compile(r"二孩[、和及与/]?三孩|二[、,，]三孩|二胎三胎|二孩三孩|三孩政策|三孩生育政策|全面两孩|"
                         r"一孩|三孩家庭|多孩|两孩政策|全面二孩|二孩政策")
_SIBLING = re.compile(r"哥哥|姐姐|哥|姐|兄|老大|大宝|大娃|大的|大儿子|大女儿|上面的")
_SCHOOL_PRED = re.compile(r"择校|划片|片区|学区|毕业|在读|就读|上学|读书|转学|进去|入学|在上|上的")
_KIDS = r"(?:孩子|娃娃|娃|宝宝|小孩|孩|宝|闺女|女儿|儿子|丫头|小子)"
_COUNT = re.compile(r"(?:就|只|只有|才|一共|总共|共|家里|家有|家|有|养了|生了|生过|养|带)\s*" + _NUM +
                    r"\s*(?:个)?\s*" + _KIDS)
_COUNT_BARE = re.compile(r"(?:^|\s|，|,)\s*" + _NUM + r"\s*个\s*" + _KIDS)
_COUNT_FAMILY = re.compile(_NUM + r"\s*(?:孩|娃|宝|个孩子)\s*(?:家庭|之家|户)")
_ONLY_ONE = re.compile(r"(?:就|只|只有|才)\s*(?:一|1)\s*(?:个)?\s*(?:孩子|娃娃|娃|宝宝|小孩|孩|宝|闺女|女儿|儿子|丫头)|"
                       r"独生子女家庭|独一个|(?:孩子|娃|宝宝)\s*是\s*独生")


def _order_mentions(clause: str) -> list[tuple[int, int, str]]:
    """(value, position, words) of each order word in a clause, longest words first."""
    found: list[tuple[int, int, str]] = []
    taken: set[int] = set()
    for pattern, value in _ORDER_TERMS:
        for m in re.finditer(pattern, clause):
            if any(i in taken for i in range(m.start(), m.end())):
                continue
            taken.update(range(m.start(), m.end()))
            found.append((value, m.start(), m.group(0)))
    return sorted(found, key=lambda f: f[1])


_CLAUSE_SPLIT = re.compile(r"[，,。；;！!？?\n]+|(?:但是|不过|而且|然后)|(?<=[\u4e00-\u9fff])\s+(?=[\u4e00-\u9fff])")


def _clauses(text: str) -> list[str]:
    return [c.strip() for c in _CLAUSE_SPLIT.split(text) if c and c.strip()]


def _child_order(clauses: list[str], ctx: Context) -> Found | None:
    school = ctx.benefit == "same_school_enrolment" or any(re.search(r"同校|同园|一个学校|一所学校|同一", c)
                                                            for c in clauses)
    candidates: list[tuple[int, str]] = []
    for clause in clauses:
        cleaned = _NAME_NOISE.sub(lambda m: " " * len(m.group(0)), clause)
        mentions = _order_mentions(cleaned)
        for value, _pos, words in mentions:
            if school:
                # An eldest child cannot be the younger sibling who follows; a child
                # described by where it goes to school is the sibling, unless asked.
                if value == 1 and ctx.asked != "child_order":
                    continue
                if _SCHOOL_PRED.search(clause) and not re.search(r"同校|同园|一个学校|一所学校|能不能|能否|可以|吗|么", clause) \
                        and ctx.asked != "child_order":
                    if ctx.child_order is None or value < ctx.child_order:
                        continue
            candidates.append((value, words))
    if not candidates:
        return None
    value, words = max(candidates)
    return Found("child_order", value, words)


def _children_count(text: str) -> Found | None:
    if m := _ONLY_ONE.search(text):
        return Found("children_count", 1, m.group(0))
    for rx in (_COUNT_FAMILY, _COUNT, _COUNT_BARE):
        for m in rx.finditer(text):
            n = cn_number(m.group(1))
            if rx is _COUNT_BARE and (n is None or n < 2):
                continue  # "一个孩子" alone may be any child; two or more is a count
            if n is not None and 0 <= n <= 20 and not _negated(text, m.start()):
                if rx is _COUNT and re.match(r"(?:有|生了|生过|养了|养)", m.group(0)) and re.search(
                        r"(?:再|想|要|打算|准备|计划)\s*$", text[:m.start()]):
                    continue  # "想再生一个孩子" is a plan, not a count
                return Found("children_count", n, m.group(0))
    return None


_LOCAL = r"(?:鄂尔多斯|本地|本市|当地|这边|咱们这|咱这|东胜|康巴什|达拉特|准格尔|鄂托克前旗|鄂托克|杭锦|乌审|伊金霍洛|达旗|准旗|伊旗|鄂前旗)"
_HUKOU = re.compile(r"(?:不是|不在|非)?\s*" + _LOCAL + r"(?:旗|区|市)?\s*(?:的)?\s*(?:户口|户籍|人|常住户口)|"
                    r"户口\s*(?:不)?\s*(?:在|是|落在|上在)?\s*" + _LOCAL + r"|"
                    r"户口\s*(?:还)?\s*(?:没|没有|未)\s*(?:迁|落|转)|(?:我|我自己|本人)\s*(?:是)?\s*外地(?:的|人)|"
                    r"(?:外地|外省|外市|外县|外旗|老家|非本地|外来)\s*(?:的)?\s*(?:户口|户籍|人)|户口\s*(?:在|是)\s*(?:外地|外省|老家)")
_BOTH = re.compile(r"两口子|夫妻(?:俩|双方|两个)?都|我们?俩|我们两个|俩人都|我(?:跟|和)\S{1,4}都|我们都|全家都")
_SPOUSE_F = re.compile(r"老婆|媳妇|妻子|爱人|孩子妈|孩他妈|孩子她妈|产妇|宝妈|女方|她")
_SPOUSE_M = re.compile(r"老公|丈夫|孩子爸|孩他爸|男方|他")


def _hukou(clauses: list[str], ctx: Context, kb_facts: set[str]) -> list[Found]:
    out: list[Found] = []
    for clause in clauses:
        m = _HUKOU.search(clause)
        if not m:
            continue
        words = m.group(0)
        local = not re.search(r"外地|外省|外市|外县|外旗|老家|非本地|外来|不是|不在|非|没|未", words) \
            and not _negated(clause, m.start())
        if _SPOUSE_F.search(clause[:m.start()]) and not re.search(r"我和|我们", clause[:m.start()]):
            if "mother_hukou_ordos" in kb_facts:
                out.append(Found("mother_hukou_ordos", local, clause))
            if not local:
                continue  # the family may still be registered here through the other parent
        elif _SPOUSE_M.search(clause[:m.start()]) and not re.search(r"我和|我们", clause[:m.start()]):
            if local:
                out.append(Found("hukou_ordos", True, clause))
            continue
        out.append(Found("hukou_ordos", local, words))
    return out


_FLAGS: list[tuple[str, str, bool]] = [
    # (fact, pattern, value); a negation word just before the match flips a True pattern.
    ("first_home_purchase", r"首套|第一套|头一套|头套房|(?:第一|头一|头)(?:次|回)\s*买房", True),
    ("first_home_purchase", r"第二套|二套房|二套|第三套|已经有(?:一套)?房|有房了|再买", False),
    ("renting", r"租房|租的房|租住|租着|在租|租了(?:套|个|间)?房|租房子", True),
    ("owns_home_locally", r"(?:本地|这边|当地|这里|缴存地|在这)?\s*(?:有|买了)\s*(?:自己的|自住|一套|套|一处)?\s*(?:房|房子|住房)(?!贷)", True),
    ("owns_home_locally", r"没(?:有)?(?:自己的|自住)?\s*(?:房|房子|住房)|无房", False),
    ("housing_fund_contributor", r"(?:交|缴|缴存|缴纳|有|在交|在缴|交着|上着)\s*(?:了|过|着)?\s*(?:住房)?公积金", True),
    ("sibling_school_choice", r"择校", True),
    ("sibling_school_choice", r"(?:是|按|通过)?\s*(?:划片|片区|就近|对口)\s*(?:进去|入学|上的|进的|分的|录取)", False),
    ("zoning_changed", r"(?:划片|学区|片区|施教区)\s*(?:有)?\s*(?:变了|变化|调整|改了|变动|重新划|换了|不一样)", True),
    ("zoning_changed", r"(?:划片|学区|片区)\s*(?:一直|也|都|还|从来)?\s*(?:没|没有|未)\s*(?:变|变化|调整|改)", False),
    ("sibling_currently_enrolled", r"毕业|不在那(?:里|儿)?(?:上|读)?了|转学|转走|不上了|升学走|已经走了", False),
    ("sibling_currently_enrolled", r"(?:还在|正在|在)\s*(?:那|这)?(?:里|儿|个学校|所学校)?\s*(?:读|上学|上|念)", True),
    ("enrolled_in_childcare", r"(?:已经|正在|现在在|在)\s*(?:上|读)\s*(?:幼儿园|托儿所|托育|托班|托育园|园)|"
                              r"(?:入园|入托|上幼儿园|上托班)了|在幼儿园|在托育", True),
    ("enrolled_in_childcare", r"(?:还没|没|没有|未|不)\s*(?:送|上|读|入|进|去)\s*(?:幼儿园|托儿所|托育|托班|园|托)", False),
    ("born_under_policy", r"超生|政策外|不符合(?:生育)?政策|违反(?:生育)?政策|未婚先育|非婚生", False),
    ("born_under_policy", r"按(?:照)?(?:生育)?政策|符合(?:生育)?政策|政策内|合法生|合规|符合条例|符合规定", True),
    ("delivered_at_midwifery_institution",
     r"在?(?:医院|妇幼|卫生院|产院|助产机构|人民医院|中心医院)\s*(?:里|里面)?\s*(?:生|分娩|顺产|剖|剖腹产|住院生)", True),
    ("delivered_at_midwifery_institution", r"在家(?:里)?(?:生|分娩)|家里生的", False),
    ("prenatal_check_at_medical_institution",
     r"(?:产检|孕检|孕期检查)[^，,。]{0,4}(?:在|去)[^，,。]{0,6}(?:医院|卫生院|医疗机构|妇幼|保健院)|"
     r"(?:医院|卫生院|妇幼|保健院|医疗机构)[^，,。]{0,6}(?:产检|孕检)", True),
    ("maternity_insured_employee", r"(?:交|缴|参加|有|上|买)\s*(?:了)?\s*生育(?:保险|险)|参保(?:的)?女职工|参保职工|单位给(?:我|她)?交(?:了)?(?:五险|社保)", True),
    ("maternity_insured_employee", r"没(?:有)?工作|没上班|无业|全职(?:妈妈|太太)|家庭主妇", False),
    ("township_grassroots_staff", r"不是\s*(?:苏木|乡镇|基层)|(?:机关|市里|旗里|城里)[^，,。]{0,4}(?:上班|工作)", False),
    ("township_grassroots_staff", r"(?:苏木|乡镇|嘎查|镇上|乡里|基层)\s*(?:的)?\s*(?:基层)?\s*(?:上班|工作|女职工|职工|干部|单位|卫生院|学校|政府)", True),
    ("maternity_leave_ended", r"产假\s*(?:已经|都)?\s*(?:休完|结束|到期|期满|满了|休满)", True),
    ("maternity_leave_ended", r"(?:还在|正在)\s*休\s*产假|产假\s*(?:还)?没(?:有)?\s*(?:休完|结束|到期)", False),
    ("applicant_is_only_child", r"我\s*(?:是|也是)\s*独生(?:子女|女|子)|我(?:们)?(?:俩)?都是独生", True),
    ("applicant_is_only_child", r"我\s*(?:不是|并非)\s*独生|我\s*(?:还)?\s*有\s*(?:个|一个|两个|几个)?\s*(?:兄弟|姐妹|哥哥|姐姐|弟弟|妹妹)", False),
    ("family_planning_family", r"独生子女家庭|独生子女户|双女户|双女家庭|计划生育家庭|独生子女(?:光荣)?证", True),
]
_FLAG_RX = [(fact, re.compile(p), value) for fact, p, value in _FLAGS]

_ROLE_MOTHER = re.compile(r"我\s*(?:是)?\s*(?:孩子|娃)?(?:的|她)?\s*(?:妈|妈妈|母亲|宝妈|产妇|孕妇|女方|亲妈)|我生(?:了|的)|我怀孕|"
                          r"我刚生|嫁过来|嫁到|我是女的")
_ROLE_FATHER = re.compile(r"我\s*(?:是)?\s*(?:孩子|娃)?(?:的|他)?\s*(?:爸|爸爸|父亲|宝爸|男方|亲爹)|我(?:老婆|媳妇|妻子|爱人)\s*(?:生|怀|刚生)|"
                          r"我是男的")


def _flags(text: str, clauses: list[str], ctx: Context) -> list[Found]:
    out: list[Found] = []
    seen: set[str] = set()
    for fact, rx, value in _FLAG_RX:
        if fact in seen:
            continue
        for clause in clauses:
            m = rx.search(clause)
            if not m or _DONT_KNOW.search(clause):
                continue
            v = value
            if value is True and _negated(clause, m.start()):
                v = False
            if fact == "sibling_currently_enrolled" and v is True and not (
                    _SIBLING.search(clause) or ctx.asked == fact or ctx.benefit == "same_school_enrolment"):
                continue  # "在上幼儿园" about the child itself is not the sibling's school
            if fact == "owns_home_locally" and re.search(r"租", clause[:m.start()] + m.group(0)):
                continue
            out.append(Found(fact, v, m.group(0)))
            seen.add(fact)
            break
    return out


_GAVE_BIRTH = re.compile(r"刚[^，,。\s]{0,8}生完|我?\s*(?:在)?坐月子|月子里")


def _role(text: str) -> Found | None:
    if m := _ROLE_FATHER.search(text):
        return Found("applicant_role", "father", m.group(0))
    if m := _ROLE_MOTHER.search(text):
        return Found("applicant_role", "mother", m.group(0))
    if (m := _GAVE_BIRTH.search(text)) and not _SPOUSE_F.search(text.replace("孩子妈能", "")):
        return Found("applicant_role", "mother", m.group(0))   # she says she just gave birth
    return None


_D_FULL = re.compile(r"(\d{4})\s*[年\-/.]\s*(\d{1,2})\s*[月\-/.]\s*(\d{1,2})\s*[日号]?")
_D_MONTH = re.compile(r"(\d{4})\s*[年\-/.]\s*(\d{1,2})\s*月?(?!\d)")
_D_YEAR = re.compile(r"(\d{4})\s*年(?!\s*\d{1,2}\s*月)")
_D_REL = re.compile(r"(大前年|前年|去年|今年)\s*(?:的)?\s*(?:" + _NUM + r"\s*月(?:\s*(\d{1,2})\s*[日号])?)?")
_D_AGE = re.compile(_NUM + r"\s*(?:周岁|岁)\s*(半|多)?|" + _NUM + r"\s*个\s*(?:多)?\s*月\s*(?:大|了)|(半岁)|"
                    r"(?:孩子|娃|宝宝|老[二三大]|[二三大]宝)\s*(?:才|刚|已经)?\s*" + _NUM + r"\s*个\s*(?:多)?\s*月")
_D_NEWBORN = re.compile(r"刚出生|刚生|刚满月|刚生完|上个月(?:刚)?生|这个月(?:刚)?生|月子里|坐月子")
_BIRTH_CUE = re.compile(r"出生|生的|生了|生|岁|个月|满月|降生|落地")
_PREGNANT = re.compile(r"怀孕|怀上|预产期|备孕|还没生|打算生|准备生|想生|要生|计划生")


def _birth_date(clauses: list[str], ctx: Context, today: dt.date) -> Found | None:
    """A birth date or the range it must lie in, from the clause about the child being checked."""
    best: Found | None = None
    for clause in clauses:
        if _PREGNANT.search(clause):
            continue
        mentions = _order_mentions(_NAME_NOISE.sub(lambda m: " " * len(m.group(0)), clause))
        if ctx.child_order and mentions and all(v != ctx.child_order for v, _, _ in mentions):
            continue  # about another child
        if _SIBLING.search(clause) and not mentions and ctx.benefit == "same_school_enrolment":
            continue
        rng = _clause_date_range(clause, today, ctx)
        if rng is None:
            continue
        earliest, latest = rng
        if latest > today:
            latest = today
        if earliest > today or earliest.year < 1950:
            continue
        best = Found("birth_date", date_value(earliest, latest), clause)
    return best


def _clause_date_range(clause: str, today: dt.date, ctx: Context) -> tuple[dt.date, dt.date] | None:
    a = clause
    try:
        if m := _D_FULL.search(a):
            d = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            return d, d
        if m := _D_REL.search(a):
            year = today.year + _REL_YEAR[m.group(1)]
            if m.group(2):
                month = cn_number(m.group(2))
                if not month or not 1 <= month <= 12:
                    return None
                if m.group(3):
                    d = dt.date(year, month, int(m.group(3)))
                    return d, d
                return dt.date(year, month, 1), _month_end(year, month)
            if _BIRTH_CUE.search(a[m.end():m.end() + 4]) or ctx.asked == "birth_date":
                return dt.date(year, 1, 1), dt.date(year, 12, 31)
            return None
        if m := _D_MONTH.search(a):
            year, month = int(m.group(1)), int(m.group(2))
            if 1 <= month <= 12:
                return dt.date(year, month, 1), _month_end(year, month)
        if m := _D_YEAR.search(a):
            if _BIRTH_CUE.search(a[m.end():m.end() + 4]) or ctx.asked == "birth_date":
                year = int(m.group(1))
                return dt.date(year, 1, 1), dt.date(year, 12, 31)
        if m := _D_AGE.search(a):
            if m.group(4):           # "半岁"
                months_lo, months_hi = 6, 6
            elif m.group(3) or m.group(5):         # "8个月"
                n = cn_number(m.group(3) or m.group(5))
                if n is None:
                    return None
                months_lo, months_hi = n, n
                if "多" in m.group(0):
                    months_hi = n + 1
            else:
                n = cn_number(m.group(1))
                if n is None:
                    return None
                if m.group(2) == "半":
                    months_lo = months_hi = n * 12 + 6
                else:
                    months_lo, months_hi = n * 12, n * 12 + 11
            # Born between (months_hi + 1) months ago (exclusive) and months_lo months ago.
            latest = _shift_months(today, months_lo)
            earliest = _shift_months(today, months_hi + 1) + dt.timedelta(days=1)
            return earliest, latest
        if _D_NEWBORN.search(a):
            return today - dt.timedelta(days=62), today
    except ValueError:
        return None
    return None


def extract_facts(text: str, context: Context | None = None, today: dt.date | None = None,
                  facts_known: set[str] | None = None) -> dict[str, Found]:
    """Every fact the message states about the person or child being discussed.

    `facts_known` is the set of fact names the knowledge defines (a fact the
    knowledge lacks is never produced). Returns {fact: Found}.
    """
    ctx = context or Context()
    today = today or dt.date.today()
    t = normalize(text)
    clauses = _clauses(t)
    found: list[Found] = []
    if f := _child_order(clauses, ctx):
        found.append(f)
    if f := _children_count(t):
        found.append(f)
    found += _hukou(clauses, ctx, facts_known or set())
    found += _flags(t, clauses, ctx)
    if f := _role(t):
        found.append(f)
    if f := _birth_date(clauses, Context(ctx.benefit, ctx.asked, (found[0].value if found and found[0].fact ==
                                                                  "child_order" else ctx.child_order)), today):
        found.append(f)
    out: dict[str, Found] = {}
    for f in found:
        out.setdefault(f.fact, f)
    # The family's registration said by the mother herself, or by "both of us", is hers too.
    family = out.get("hukou_ordos")
    if family is not None and "mother_hukou_ordos" not in out and (
            (out.get("applicant_role") and out["applicant_role"].value == "mother")
            or _BOTH.search(t)):
        out["mother_hukou_ordos"] = Found("mother_hukou_ordos", family.value, family.evidence)
    return {k: v for k, v in out.items() if facts_known is None or k in facts_known}
