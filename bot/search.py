"""Ranked search over answers and clauses, robust to everyday Chinese.

Queries and documents go through the same analysis: normalise (traditional to
simplified, full-width to half-width), map everyday words to the plan's terms,
segment with jieba and the policy lexicon, then index words, their pinyin
(so homophone typos such as 分免补贴 still match 分娩补贴) and character bigrams.

Queries are also expanded before analysis: letters typed without the IME, as
full pinyin or initials (yuerjia, pcj), and three-character abbreviations of
longer plan terms (保租房 -> 保障性租赁住房) become the policy terms they spell.
"""
from __future__ import annotations

import bisect
import html
import re
from dataclasses import dataclass, field
from functools import lru_cache

import jieba
import numpy as np
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
_HAN_RUN = re.compile(r"[\u4e00-\u9fff]{3,}")
# Letters typed without the IME: one run, syllables optionally split by spaces or apostrophes.
_LATIN_RUN = re.compile(r"[a-z]+(?:[ '][a-z]+)*")
MAX_EXPANSIONS = 6


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


class QueryExpander:
    """What a query's letters and abbreviations stand for, as policy terms appended to it.

    Staff with busy hands type pinyin without the IME (full or initials: yuerjia,
    pcj), abbreviations (保租房) and homophone typos (陪产价). Only queries are
    expanded; documents are indexed as they are.
    """

    def __init__(self, words: list[str]):
        self.words_list = list(words)
        self._index_sounds()
        self._index_abbreviations()

    def _index_sounds(self) -> None:
        """Full pinyin and initials of every lexicon term, for queries typed without the IME."""
        by_sound: dict[str, list[str]] = {}
        by_full: dict[str, list[str]] = {}
        for term in self.words_list:
            if 2 <= len(term) <= 10 and _HAN.match(term):
                sounds = lazy_pinyin(term)
                full = "".join(sounds)
                for index, key in ((by_full, full), (by_sound, full), (by_sound, "".join(s[0] for s in sounds))):
                    if term not in index.setdefault(key, []):
                        index[key].append(term)
        self._terms_by_sound = by_sound   # full pinyin or initials -> terms
        self._terms_by_full = by_full     # full pinyin -> terms (homophones share a key)
        self._full_sounds = sorted(by_full)

    def _index_abbreviations(self) -> None:
        """Three-character abbreviations (first character, then two more in order) of long terms."""
        contiguous = {t[i:i + 3] for t in self.words_list for i in range(len(t) - 2)}
        abbreviations: dict[str, list[str]] = {}
        for term in self.words_list:
            if 5 <= len(term) <= 10 and _HAN.match(term):
                rest = term[1:]
                for i in range(len(rest)):
                    for j in range(i + 1, len(rest)):
                        abbr = term[0] + rest[i] + rest[j]
                        if abbr not in contiguous and term not in abbreviations.get(abbr, ()):
                            abbreviations.setdefault(abbr, []).append(term)
        self._abbreviations = abbreviations

    def terms_for_letters(self, letters: str) -> list[str]:
        """Lexicon terms spelled by letters typed without the IME.

        Exact full pinyin or initials first (yuerjia, pcj -> 育儿假, 陪产假); otherwise
        the shortest terms whose full pinyin starts with the letters, so results
        keep up while a word is still being typed (yuerj -> 育儿假).
        """
        if len(letters) < 2:
            return []
        exact = self._terms_by_sound.get(letters)
        if exact:
            return exact[:MAX_EXPANSIONS]
        if len(letters) < 3:
            return []
        pieces = self._split_sounds(letters)
        if pieces:
            return [t for piece in pieces for t in self._terms_by_sound[piece][:2]][:MAX_EXPANSIONS]
        start = bisect.bisect_left(self._full_sounds, letters)
        completions = []
        for sound in self._full_sounds[start:]:
            if not sound.startswith(letters):
                break
            completions.append(sound)
        completions.sort(key=lambda snd: (len(snd), snd))
        return [self._terms_by_full[snd][0] for snd in completions[:MAX_EXPANSIONS]]

    def _split_sounds(self, letters: str) -> list[str] | None:
        """Fewest pieces, each the full pinyin or initials of a term (rtry -> rt|ry: 入托, 入园)."""
        best: list[list[str] | None] = [[]] + [None] * len(letters)
        for end in range(2, len(letters) + 1):
            for start in range(0, end - 1):
                piece, before = letters[start:end], best[start]
                if before is not None and piece in self._terms_by_sound:
                    if best[end] is None or len(before) + 1 < len(best[end]):
                        best[end] = before + [piece]
        return best[-1]

    def _homophones(self, run: str) -> list[str]:
        """Terms of three or more characters that sound like part of the run (陪产价 -> 陪产假).

        Two-character homophones are already matched by the pinyin-pair tokens.
        """
        sounds = lazy_pinyin(run)
        if len(sounds) != len(run):
            return []
        found = []
        for size in range(3, min(6, len(run)) + 1):
            for i in range(len(run) - size + 1):
                window = run[i:i + size]
                found += [t for t in self._terms_by_full.get("".join(sounds[i:i + size]), ()) if t != window]
        return found

    def expand(self, query: str) -> str:
        """The query with the policy terms its pinyin letters and abbreviations stand for."""
        text = normalize(query).lower()
        extra: list[str] = []
        for m in _LATIN_RUN.finditer(text):
            run = m.group(0)
            terms = self.terms_for_letters(re.sub("[ ']", "", run))
            if not terms and run != re.sub("[ ']", "", run):
                for part in re.split("[ ']", run):
                    terms += self.terms_for_letters(part)
            extra += terms
        for m in _HAN_RUN.finditer(text):
            run = m.group(0)
            for i in range(len(run) - 2):
                extra += self._abbreviations.get(run[i:i + 3], ())[:MAX_EXPANSIONS]
            extra += self._homophones(run)
        if not extra:
            return query
        return query + " " + " ".join(dict.fromkeys(extra))


class _Scores:
    """BM25Okapi scores from per-token weights computed once.

    cProfile of bench/desk_search_bench.py: rank_bm25's get_scores took over a
    third of a search, rebuilding each query token's term-frequency column from
    every document's dict on every call. The same arithmetic done once per token
    at build time gives the same scores, bit for bit (tests/test_search_ranking.py).
    """

    def __init__(self, corpus: list[list[str]]):
        bm25 = BM25Okapi(corpus)
        doc_len = np.array(bm25.doc_len)
        self.size = bm25.corpus_size
        self.weights = {}
        for token, idf in bm25.idf.items():
            q_freq = np.array([(doc.get(token) or 0) for doc in bm25.doc_freqs])
            self.weights[token] = (idf or 0) * (q_freq * (bm25.k1 + 1) /
                                                (q_freq + bm25.k1 * (1 - bm25.b + bm25.b * doc_len / bm25.avgdl)))

    def get_scores(self, query: list[str]) -> np.ndarray:
        score = np.zeros(self.size)
        for token in query:
            weight = self.weights.get(token)
            if weight is not None:
                score += weight
        return score


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
        self.expander = QueryExpander(self.analyzer.words_list)
        self.answers = [self._answer_doc(a) for a in kb.answers.values()]
        self.clauses = [self._clause_doc(c) for c in kb.clauses.values()]
        self._answer_bm25 = _Scores([self.analyzer.tokens(d.index_text) for d in self.answers])
        self._clause_bm25 = _Scores([self.analyzer.tokens(d.index_text) for d in self.clauses])
        # What highlighting needs of each body, once rather than per hit.
        self._canonical_bodies = {d.body: self.analyzer.canonical(d.body) for d in self.answers + self.clauses}
        for d in self.answers + self.clauses:
            self._body_pinyin(d.body)

    def _answer_doc(self, a) -> _Doc:
        # Title, questions and keywords are what people type: weight them up.
        head = " ".join([a.title, *a.questions, *a.keywords])
        cites = "、".join(self.kb.clauses[c].label for c in a.clauses)
        return _Doc("answer", a.id, a.title, a.text, f"{head} {head} {head} {a.text}", f"《实施方案》{cites}")

    def _clause_doc(self, c) -> _Doc:
        return _Doc("clause", c.id, c.title, c.text, f"{c.title} {c.title} {c.text}", c.citation)

    def search(self, query: str, limit: int = 5) -> dict[str, list[Hit]]:
        query = self.expander.expand(query)
        tokens = self.analyzer.tokens(query)
        if not tokens:
            return {"answers": [], "clauses": [], "departments": []}
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

    def _rank(self, bm25: _Scores, docs: list[_Doc], tokens, words, limit) -> list[Hit]:
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
        canonical_body = self._canonical_bodies.get(body) or self.analyzer.canonical(body)
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
