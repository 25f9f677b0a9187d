"""Words the segmenter must keep whole, generated from knowledge/.

The same list feeds the search index's jieba instance and Rasa's
JiebaTokenizer (which takes a *folder* of dictionary files).
"""
from __future__ import annotations

import re
from pathlib import Path

from .knowledge import Knowledge

_CJK = re.compile(r"^[\u4e00-\u9fff0-9A-Za-z+（）()]+$")

# Everyday words that jieba's default dictionary splits badly.
EXTRA_WORDS = ("二孩", "三孩", "二胎", "三胎", "老二", "老三", "二宝", "三宝", "宝妈", "宝爸", "护理假", "陪产假",
               "育儿假", "陪护假", "产假", "入托", "入园", "同校", "同园", "托班", "托育", "托位", "户籍", "户口",
               "本地户口", "外地户口", "鄂尔多斯户口", "旗区", "苏木", "嘎查", "助产机构", "孕检", "产检", "公积金",
               "首套房", "租房", "分娩", "暖心家园", "出生一件事", "一件事一次办", "转人工", "不知道")


def user_words(kb: Knowledge) -> list[str]:
    words: list[str] = list(EXTRA_WORDS)
    for answer in kb.answers.values():
        words += list(answer.keywords)
    for clause in kb.clauses.values():
        words.append(clause.title)
    for dept in kb.departments.values():
        words.append(dept.name)
        words += list(dept.aliases)
    for name, aliases in kb.banners.items():
        words.append(name)
        words += list(aliases)
    for canonical, variants in kb.synonyms.items():
        words.append(canonical)
        words += list(variants)
    for benefit in kb.benefits.values():
        words.append(benefit.name)
    seen: dict[str, None] = {}
    for w in words:
        w = w.strip()
        if 2 <= len(w) <= 20 and _CJK.match(w) and " " not in w:
            seen.setdefault(w, None)
    return list(seen)


def write_user_dict(kb: Knowledge, folder: Path | str, extra: list[str] = ()) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "policy_terms.txt"
    words = list(dict.fromkeys(user_words(kb) + [w for w in extra if 2 <= len(w) <= 20 and " " not in w]))
    # A high frequency makes jieba prefer the whole term over its parts.
    path.write_text("".join(f"{w} 20000 n\n" for w in words), encoding="utf-8")
    return path
