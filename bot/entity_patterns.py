"""Entity patterns for the closed-class entities, built from knowledge/ and the NLU data.

The patterns feed a spaCy EntityRuler (rasa_addons/entities.py) over a blank
Chinese pipeline with one token per character, so a phrase matches wherever it
occurs, whatever jieba would have segmented. Each phrase pattern carries its
canonical value as the pattern id:

- banner, department: names and short names from knowledge/departments.yml;
- benefit: benefit names from knowledge/benefits/ and the benefit synonyms;
- child_order, children_count, hukou, applicant_role: the typed sections of
  data/nlu/synonyms.yml ("# --- <entity>"), plus counted phrases (两个孩子, 仨娃);
- any closed-class span annotated in the training data, when it is unambiguous.

Dates and ages are open-ended: token patterns over digits and Chinese
numerals (2024年3月, 去年11月, 两岁半, 11个月); their value is the text.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Set, Tuple

import yaml

from .knowledge import Knowledge

CLOSED = ("banner", "department", "benefit", "child_order", "children_count", "hukou", "applicant_role")
SECTION = re.compile(r"^#\s*---\s*([a-z_]+)")

_COUNTS = {"1": ("一", "1", "独"), "2": ("两", "二", "俩", "2"), "3": ("三", "仨", "3"), "4": ("四", "4")}
_CHILD_NOUNS = ("孩子", "小孩", "娃", "娃娃", "宝宝", "孩", "小孩子")


def typed_synonyms(path: Path) -> List[Tuple[str, str, str]]:
    """(entity, surface, value) from the typed sections of data/nlu/synonyms.yml."""
    out: List[Tuple[str, str, str]] = []
    section: Optional[str] = None
    value: Optional[str] = None
    kind: Optional[str] = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        m = SECTION.match(line)
        if m:
            section = m.group(1)
            continue
        if line.startswith("- synonym:"):
            value, kind = str(yaml.safe_load(line[len("- synonym:"):])), "synonym"
            if section in CLOSED:
                out.append((section, value, value))
        elif line.startswith("- lookup:"):
            value, kind = line[len("- lookup:"):].strip(), "lookup"
        elif line.startswith("- ") and value is not None and kind == "synonym" and section in CLOSED:
            out.append((section, line[2:].strip(), value))
    return out


def knowledge_phrases(kb: Knowledge) -> List[Tuple[str, str, str]]:
    out: List[Tuple[str, str, str]] = []
    for dept in kb.departments.values():
        for surface in (dept.name, *dept.aliases):
            out.append(("department", surface, dept.name))
    for name, aliases in kb.banners.items():
        for surface in (name, *aliases):
            out.append(("banner", surface, name))
    for bid, benefit in kb.benefits.items():
        out.append(("benefit", benefit.name, bid))
    return out


def counted_phrases() -> List[Tuple[str, str, str]]:
    out = []
    for value, numerals in _COUNTS.items():
        for n in numerals:
            for noun in _CHILD_NOUNS:
                out.append(("children_count", f"{n}个{noun}", value))
                if n in ("俩", "仨"):
                    out.append(("children_count", f"{n}{noun}", value))
    return out


def annotated_phrases(examples: Iterable[Tuple[str, str, str]]) -> List[Tuple[str, str, str]]:
    """Closed-class (entity, surface, value) seen in training annotations, unambiguous only."""
    seen: Dict[str, Set[Tuple[str, str]]] = {}
    for entity, surface, value in examples:
        if entity in CLOSED and surface:
            seen.setdefault(surface, set()).add((entity, str(value)))
    return [(e, s, v) for s, tags in seen.items() if len(tags) == 1 for e, v in tags]


_DIGIT = {"TEXT": {"REGEX": "^[0-9]$"}, "OP": "+"}


def _numerals(half: bool = False) -> List[List[dict]]:
    """Token sequences for a small number: 11, 三, 十一, (半). Never two loose numerals
    in a row, so 老二两岁 reads as 老二 + 两岁, not 二两岁."""
    one = {"TEXT": {"IN": list("一二两三四五六七八九十") + (["半"] if half else [])}}
    return [[_DIGIT], [one], [{"TEXT": "十"}, {"TEXT": {"IN": list("一二")}}]]


def token_patterns() -> List[dict]:
    month_tail = [{"TEXT": "月"}, {"TEXT": "份", "OP": "?"}]
    day = [[{"TEXT": "月"}, *n, {"TEXT": {"IN": ["日", "号"]}}] for n in _numerals()]
    relative_year = {"TEXT": {"IN": ["去", "前", "今"]}}
    lunar = {"TEXT": {"IN": ["正", "腊", "冬"]}}
    dates: List[List[dict]] = [[{"TEXT": {"IN": ["去", "前"]}}, {"TEXT": "年"}], [relative_year, {"TEXT": "年"}, lunar, {"TEXT": "月"}],
                               [{"TEXT": {"IN": ["上", "这"]}}, {"TEXT": "个"}, {"TEXT": "月"}],
                               [_DIGIT, {"TEXT": {"IN": [".", "-", "/"]}}, _DIGIT]]
    for month in _numerals():
        for year in ([_DIGIT, {"TEXT": "年"}], [relative_year, {"TEXT": "年"}], []):
            dates.append([*year, *month, *month_tail])
            dates += [[*year, *month, *tail] for tail in day]
    ages: List[List[dict]] = [[{"TEXT": "刚"}, {"TEXT": "满"}, {"TEXT": "月"}]]
    for n in _numerals(half=True):
        ages.append([*n, {"TEXT": "周", "OP": "?"}, {"TEXT": "岁"}, {"TEXT": {"IN": ["半", "多"]}, "OP": "?"}])
        ages.append([*n, {"TEXT": "个"}, {"TEXT": "多", "OP": "?"}, {"TEXT": "月"}, {"TEXT": "大", "OP": "?"}])
    return ([{"label": "date", "pattern": p} for p in dates]
            + [{"label": "child_age", "pattern": p} for p in ages])


def build_patterns(kb: Knowledge, synonyms_path: Path,
                   annotated: Iterable[Tuple[str, str, str]] = ()) -> List[dict]:
    """EntityRuler patterns; phrase patterns carry the canonical value as `id`."""
    phrases: Dict[str, Tuple[str, str]] = {}
    # Earlier sources win: knowledge and the typed synonym table, then counted phrases, then annotations.
    for entity, surface, value in (*knowledge_phrases(kb), *typed_synonyms(synonyms_path),
                                   *counted_phrases(), *annotated_phrases(annotated)):
        surface = surface.strip()
        if len(surface) < 2 or surface.isascii():
            continue  # one character, a bare number or a canonical id ("delivery_subsidy") is not surface text
        phrases.setdefault(surface, (entity, value))
    patterns = [{"label": e, "pattern": s, "id": v} for s, (e, v) in sorted(phrases.items())]
    return patterns + token_patterns()


def valid_values(kb: Knowledge) -> Dict[str, List[str]]:
    """Canonical values of each closed-class entity; anything else is an extraction error."""
    return {
        "banner": sorted(kb.banners),
        "department": sorted(d.name for d in kb.departments.values()),
        "benefit": sorted(kb.benefits),
        "child_order": ["1", "2", "3", "4"],
        "children_count": ["1", "2", "3", "4"],
        "hukou": ["本地", "外地"],
        "applicant_role": ["mother", "father"],
    }
