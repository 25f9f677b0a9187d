"""Ranked search over answers and clauses, robust to everyday Chinese.

Queries and documents go through the same analysis: normalise (traditional to
simplified, full-width to half-width), map everyday words to the plan's terms,
segment with jieba and the policy lexicon, then index words, their pinyin
(so homophone typos such as 分免补贴 still match 分娩补贴) and character bigrams.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from functools import lru_cache

import jieba
from pypinyin import lazy_pinyin
from rank_bm25 import BM25Okapi

from .knowledge import Knowledge
from .lexicon import user_words
from .text import normalize

STOPWORDS = frozenset("的 了 吗 呢 啊 吧 呀 嘛 么 哦 哈 是 我 我们 你 您 他 她 它 有 在 和 与 及 等 请问 问 一下 怎么 "
                      "什么 多少 哪些 哪个 可以 能 能不能 要 会 这 那 这个 那个 个 都 也 就 还 又 吗 想 知道 "
                      "请 帮 给 对 从 被 把 让 说 啥 咋 如何 为什么 没 不 一 上 下 里 中 后 前 时候 现在".split())
_WORD = re.compile(r"[\u4e00-\u9fff]|[0-9]+(?:\.[0-9]+)?|[A-Za-z]+")
_HAN = re.compile(r"^[\u4e00-\u9fff]+$")


@dataclass
class Hit:
    kind: str                 # "answer" or "clause"
    id: str
    title: str
    score: float
    citation: str
    highlighted: str
    matched: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "id": self.id, "title": self.title, "score": round(self.score, 3),
                "citation": self.citation, "highlighted": self.highlighted, "matched": self.matched}


class Analyzer:
    """Normalise, map everyday words to plan terms, segment; pinyin and bigrams."""

    def __init__(self, words: list[str], synonyms: dict[str, tuple[str, ...]]):
        self.words_list, self.synonyms = list(words), {k: tuple(v) for k, v in synonyms.items()}
        self.tokenizer = jieba.Tokenizer()
        for word in self.words_list:
            self.tokenizer.add_word(word, freq=20000)
        self.tokenizer.initialize()
        pairs = [(v, canon) for canon, variants in self.synonyms.items() for v in variants]
        pairs.sort(key=lambda p: -len(p[0]))
        self._synonym_map = dict(pairs)
        self._synonym_re = re.compile("|".join(re.escape(v) for v, _ in pairs)) if pairs else None

    @classmethod
    def from_knowledge(cls, kb: Knowledge) -> "Analyzer":
        return cls(user_words(kb), kb.synonyms)

    def canonical(self, text: str) -> str:
        text = normalize(text).lower()
        if self._synonym_re is not None:
            text = self._synonym_re.sub(lambda m: self._synonym_map[m.group(0)], text)
        return text

    def words(self, text: str) -> list[str]:
        out = []
        for w in self.tokenizer.lcut_for_search(self.canonical(text)):
            w = w.strip()
            if w and w not in STOPWORDS and _WORD.match(w):
                out.append(w)
        return out

    @staticmethod
    @lru_cache(maxsize=65536)
    def pinyin(word: str) -> str | None:
        if len(word) >= 2 and _HAN.match(word):
            return "py:" + "".join(lazy_pinyin(word))
        return None

    def tokens(self, text: str) -> list[str]:
        words = self.words(text)
        toks = list(words)
        toks += [p for p in map(self.pinyin, words) if p]
        chars = [c for c in self.canonical(text) if _HAN.match(c)]
        toks += ["bg:" + a + b for a, b in zip(chars, chars[1:])]
        # Pinyin of character pairs catches homophone typos that the
        # segmenter split apart (分免 -> fen|mian == 分娩).
        sounds = lazy_pinyin("".join(chars))
        toks += ["pb:" + a + b for a, b in zip(sounds, sounds[1:])]
        return toks


@dataclass
class _Doc:
    kind: str
    id: str
    title: str
    body: str          # what is shown and highlighted
    index_text: str    # what is searched
    citation: str


class SearchIndex:
    def __init__(self, kb: Knowledge):
        self.kb = kb
        self.analyzer = Analyzer.from_knowledge(kb)
        self.answers = [self._answer_doc(a) for a in kb.answers.values()]
        self.clauses = [self._clause_doc(c) for c in kb.clauses.values()]
        self._answer_bm25 = BM25Okapi([self.analyzer.tokens(d.index_text) for d in self.answers])
        self._clause_bm25 = BM25Okapi([self.analyzer.tokens(d.index_text) for d in self.clauses])

    def _answer_doc(self, a) -> _Doc:
        # Title, questions and keywords are what people type: weight them up.
        head = " ".join([a.title, *a.questions, *a.keywords])
        cites = "、".join(self.kb.clauses[c].label for c in a.clauses)
        return _Doc("answer", a.id, a.title, a.text, f"{head} {head} {head} {a.text}", f"《实施方案》{cites}")

    def _clause_doc(self, c) -> _Doc:
        return _Doc("clause", c.id, c.title, c.text, f"{c.title} {c.title} {c.text}", c.citation)

    def search(self, query: str, limit: int = 5) -> dict[str, list[Hit]]:
        tokens = self.analyzer.tokens(query)
        if not tokens:
            return {"answers": [], "clauses": []}
        words = self.analyzer.words(query)
        return {"answers": self._rank(self._answer_bm25, self.answers, tokens, words, limit),
                "clauses": self._rank(self._clause_bm25, self.clauses, tokens, words, limit),
                "departments": self.departments_in(query)}

    def departments_in(self, query: str) -> list[str]:
        """Full names of departments the query names (by full or short name)."""
        text = self.analyzer.canonical(query)
        found = []
        for dept in self.kb.departments.values():
            names = sorted((dept.name, *dept.aliases), key=len, reverse=True)
            if any(n in text for n in names):
                found.append(dept.name)
        # "市卫生健康委员会" also contains "卫健"-free aliases of others; keep the most specific.
        return [d for d in found if not any(d != o and d in o for o in found)]

    def _rank(self, bm25: BM25Okapi, docs: list[_Doc], tokens, words, limit) -> list[Hit]:
        scores = bm25.get_scores(tokens)
        order = sorted(range(len(docs)), key=lambda i: -scores[i])
        hits = []
        for i in order[:limit]:
            if scores[i] <= 0:
                break
            doc = docs[i]
            marked, matched = self.highlight(doc.body, words, window=None if doc.kind == "answer" else 160)
            hits.append(Hit(doc.kind, doc.id, doc.title, float(scores[i]), doc.citation, marked, matched))
        return hits

    def highlight(self, body: str, words: list[str], window: int | None = None) -> tuple[str, list[str]]:
        """HTML-escaped body with matched words wrapped in <mark>."""
        canonical_body = self.analyzer.canonical(body)
        targets: set[str] = set()
        for w in words:
            if len(w) < 2 and not w.isdigit():
                continue
            if w in body:
                targets.add(w)
                continue
            # The query used the plan's term (after synonym mapping) or a homophone.
            variants = [v for v in self.kb.synonyms.get(w, ()) if v in body]
            targets.update(variants)
            if not variants and w not in canonical_body:
                py = self.analyzer.pinyin(w)
                if py:
                    targets.update(self._body_pinyin(body).get(py, ()))
        # Keep whole terms: drop a target that is part of a longer one.
        targets = {t for t in targets if not any(t != o and t in o for o in targets)}
        start = 0
        if window and targets:
            first = min(body.find(t) for t in targets if t in body)
            start = max(0, first - window // 4)
        shown = body[start:start + window] if window else body
        prefix, suffix = ("…" if start > 0 else ""), ("…" if window and start + window < len(body) else "")
        if not targets:
            return prefix + html.escape(shown) + suffix, []
        pattern = re.compile("|".join(re.escape(t) for t in sorted(targets, key=len, reverse=True)))
        out, pos = [], 0
        for m in pattern.finditer(shown):
            out.append(html.escape(shown[pos:m.start()]))
            out.append("<mark>" + html.escape(m.group(0)) + "</mark>")
            pos = m.end()
        out.append(html.escape(shown[pos:]))
        return prefix + "".join(out) + suffix, sorted(targets, key=body.find)


    @lru_cache(maxsize=256)
    def _body_pinyin(self, body: str) -> dict[str, set[str]]:
        by_pinyin: dict[str, set[str]] = {}
        for word in self.analyzer.tokenizer.lcut(body):
            py = self.analyzer.pinyin(word)
            if py:
                by_pinyin.setdefault(py, set()).add(word)
        return by_pinyin


_indexes: dict[int, SearchIndex] = {}


def get_index(kb: Knowledge) -> SearchIndex:
    """One index per loaded knowledge base (building one takes about a second)."""
    if id(kb) not in _indexes:
        _indexes[id(kb)] = SearchIndex(kb)
    return _indexes[id(kb)]
