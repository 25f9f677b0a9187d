"""Similar citizen questions grouped, with no downloaded model.

Three steps, each cheap enough for tens of thousands of questions:

1. Normalise (`Normaliser`): traditional -> simplified and full-width ->
   half-width (bot.text.normalize), everyday words -> plan terms
   (knowledge/synonyms.yml: 二胎 -> 二孩, 陪产假 -> 护理假 ...), any banner or
   district name -> 旗区, Chinese numerals -> digits (cn2an), punctuation and
   sentence-final particles dropped.
2. Near-duplicates: MinHash over character 2- and 3-grams, candidates from
   LSH (datasketch); a text joins the most similar earlier leader when their
   estimated Jaccard similarity is high (most asked texts lead).
3. Paraphrases: near-duplicate clusters, biggest first, join the most similar
   group leader by cosine over tf-idf of jieba words (with the policy lexicon)
   and character bigrams. Comparing with leaders only (not with every member)
   keeps one bridging question from chaining two topics together.

`group_questions` returns groups biggest first, each with its representative
question (the member nearest the group's centre) and distinct examples.
"""
from __future__ import annotations

import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
from scipy import sparse

from .knowledge import Knowledge
from .search import Analyzer

NUM_PERM = 64
NEAR_DUPLICATE_JACCARD = 0.5
PARAPHRASE_COSINE = 0.45
_BLOCK_ROWS = 512
MAX_CACHED = 50_000   # normalised texts whose words and MinHash a Normaliser remembers
# Punctuation, symbols and spaces carry nothing for grouping; sentence-final
# particles vary freely between people asking the same thing.
_NOISE = re.compile(r"[\s\u3000-\u303f\uff00-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65!-/:-@\[-`{-~，。、？！：；“”‘’（）【】《》…·]+")
_FINAL_PARTICLES = re.compile(r"[吗嘛呢啊呀吧哈呗么哦啦]+$")
_HAN = re.compile(r"[\u4e00-\u9fff]")
BANNER_TOKEN = "旗区"
# Question words people swap freely ("如何申领" / "怎么领取"): one form each,
# and politeness dropped, so they neither split a group nor join two.
QUESTION_WORDS = {"请问": "", "如何": "怎么", "怎样": "怎么", "怎么样": "怎么", "哪儿": "哪里", "哪里": "哪里",
                  "在哪里": "哪里", "去哪里": "哪里", "到哪里": "哪里", "在哪儿": "哪里", "去哪儿": "哪里",
                  "到哪儿": "哪里", "去哪": "哪里", "到哪": "哪里", "在哪": "哪里", "多少天": "几天", "申领": "领",
                  "领取": "领",
                  "办理": "办", "可不可以": "能", "能不能": "能", "可以": "能", "是不是": "是"}
_QUESTION_WORDS = re.compile("|".join(sorted(map(re.escape, QUESTION_WORDS), key=len, reverse=True)))


class Normaliser:
    """Canonical form of a question for grouping (see the module docstring)."""

    def __init__(self, kb: Knowledge, analyzer: Analyzer | None = None):
        self.analyzer = analyzer or Analyzer.from_knowledge(kb)
        names = [n for name, aliases in kb.banners.items() for n in (name, *aliases)]
        names.sort(key=len, reverse=True)   # 鄂托克前旗 before 鄂托克旗 before 鄂旗
        self._banners = re.compile("|".join(map(re.escape, names))) if names else None
        self._cache: dict[str, str] = {}
        self._words: dict[str, list[str]] = {}
        self._hashes: dict[str, Any] = {}

    def __call__(self, text: str) -> str:
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        out = self.analyzer.canonical(text or "")
        if self._banners is not None:
            out = self._banners.sub(BANNER_TOKEN, out)
        out = _numerals(out)
        out = _QUESTION_WORDS.sub(lambda m: QUESTION_WORDS[m.group(0)], out)
        out = _NOISE.sub("", out)
        out = _FINAL_PARTICLES.sub("", out) or out
        if len(self._cache) > MAX_CACHED:
            self._cache.clear()
        self._cache[text] = out
        return out

    def words(self, normalised: str) -> list[str]:
        """jieba words (policy lexicon, stop words dropped) of an already normalised text."""
        words = self._words.get(normalised)
        if words is None:
            if len(self._words) > MAX_CACHED:
                self._words.clear()
            words = self._words[normalised] = self.analyzer.words(normalised)
        return words

    def minhashes(self, normalised: list[str]):
        """MinHash of each text's character 2/3-grams (cached: regrouping mostly sees the same texts)."""
        from datasketch import LeanMinHash
        from datasketch.minhash import MinHash

        missing = [t for t in dict.fromkeys(normalised) if t not in self._hashes]
        if missing:
            if len(self._hashes) + len(missing) > MAX_CACHED:
                self._hashes.clear()
                missing = list(dict.fromkeys(normalised))
            shingles = [[g.encode("utf-8") for g in char_ngrams(t)] for t in missing]
            for text, mh in zip(missing, MinHash.bulk(shingles, num_perm=NUM_PERM, seed=1)):
                self._hashes[text] = (mh.hashvalues, mh.scheme)
        return [LeanMinHash(seed=1, hashvalues=self._hashes[t][0], scheme=self._hashes[t][1]) for t in normalised]


def _numerals(text: str) -> str:
    if not any(ch in text for ch in "零〇一二两三四五六七八九十百千万亿"):
        return text
    try:
        import cn2an

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cn2an.transform(text, "cn2an")
    except Exception:  # noqa: BLE001 - cn2an raises on some odd mixes; the text stays as it was
        return text


def char_ngrams(text: str, sizes: Sequence[int] = (2, 3)) -> set[str]:
    grams = {text[i:i + n] for n in sizes for i in range(len(text) - n + 1)}
    return grams or ({text} if text else set())


# -- groups ----------------------------------------------------------------------
@dataclass
class Question:
    id: int
    text: str
    created_at: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Group:
    key: int                       # the smallest member id: stable while the group keeps its first question
    members: list[Question]
    representative: Question
    examples: list[str]            # distinct member texts, most frequent first
    normalised: str                # the representative's normalised text

    @property
    def count(self) -> int:
        return len(self.members)

    @property
    def ids(self) -> list[int]:
        return [q.id for q in self.members]


def _near_duplicates(texts: list[str], order: list[int], threshold: float, normaliser: Normaliser) -> list[int]:
    """The leader text of every distinct normalised text: visited in `order`, a
    text joins the most similar earlier leader whose MinHash (character 2/3-grams)
    Jaccard estimate reaches `threshold`, else leads. Only leaders are in the
    LSH index, so near-duplicates never chain into a topic-wide blob."""
    from datasketch import MinHashLSH

    n = len(texts)
    leader_of = list(range(n))
    if n < 2:
        return leader_of
    hashes = normaliser.minhashes(texts)
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    for i in order:
        best, best_sim = -1, threshold
        for j in lsh.query(hashes[i]):
            sim = hashes[i].jaccard(hashes[j])
            if sim >= best_sim:
                best, best_sim = j, sim
        if best >= 0:
            leader_of[i] = best
        else:
            lsh.insert(i, hashes[i])
    return leader_of


class _Vectoriser:
    """tf-idf over jieba words and character bigrams, rows L2-normalised."""

    def __init__(self, normaliser: Normaliser):
        self.normaliser = normaliser

    def features(self, text: str) -> list[str]:
        words = ["w:" + w for w in self.normaliser.words(text)]
        han = "".join(_HAN.findall(text)) or text
        grams = ["c:" + g for g in char_ngrams(han, (2,))]
        # Whole words count three times: they carry the topic; bigrams catch the
        # wording jieba splits differently. Weights and threshold tuned on
        # tests/data/review_grouping.yml (precision first: two gaps merged hide one).
        return words * 3 + grams

    def fit_transform(self, texts: list[str]) -> sparse.csr_matrix:
        vocab: dict[str, int] = {}
        rows, cols, vals = [], [], []
        for r, text in enumerate(texts):
            for feat, tf in Counter(self.features(text)).items():
                c = vocab.setdefault(feat, len(vocab))
                rows.append(r)
                cols.append(c)
                vals.append(1.0 + np.log(tf))
        m = sparse.csr_matrix((vals, (rows, cols)), shape=(len(texts), max(1, len(vocab))), dtype=np.float32)
        df = np.bincount(m.indices, minlength=m.shape[1])
        idf = np.log((1 + len(texts)) / (1 + df)) + 1.0
        m = m @ sparse.diags(idf.astype(np.float32))
        norms = np.sqrt(m.multiply(m).sum(axis=1)).A1
        norms[norms == 0] = 1.0
        return sparse.diags(1.0 / norms) @ m


def _leader_clusters(vectors: sparse.csr_matrix, order: list[int], threshold: float) -> list[int]:
    """Assign each row (visited in `order`) to the most similar leader above
    `threshold`, or make it a leader. Returns the leader row of every row."""
    n = vectors.shape[0]
    leader_of = [-1] * n
    is_leader = np.zeros(n, dtype=bool)
    position = {row: i for i, row in enumerate(order)}
    # Candidate neighbours of every row, computed in blocks (the full matrix may not fit).
    neighbours: list[tuple[np.ndarray, np.ndarray]] = [None] * n   # type: ignore[list-item]
    transposed = vectors.T.tocsc()
    for start in range(0, n, _BLOCK_ROWS):
        block = (vectors[start:start + _BLOCK_ROWS] @ transposed).toarray()
        for k, row in enumerate(block):
            cols = np.nonzero(row >= threshold)[0]
            neighbours[start + k] = (cols, row[cols])
    for row in order:
        cols, sims = neighbours[row]
        best, best_sim = -1, -1.0
        for c, s in zip(cols, sims):
            if c != row and is_leader[c] and position[c] < position[row] and s > best_sim:
                best, best_sim = c, s
        if best >= 0:
            leader_of[row] = best
        else:
            leader_of[row] = row
            is_leader[row] = True
    return leader_of


def group_questions(questions: Iterable[Question], normaliser: Normaliser, *,
                    near_duplicate: float = NEAR_DUPLICATE_JACCARD,
                    paraphrase: float = PARAPHRASE_COSINE, max_examples: int = 5) -> list[Group]:
    """Similar questions together, biggest group first (ties: the earliest)."""
    questions = list(questions)
    if not questions:
        return []
    # 1. Same normalised text: one entry.
    by_text: dict[str, list[int]] = {}
    for i, q in enumerate(questions):
        by_text.setdefault(normaliser(q.text), []).append(i)
    texts = list(by_text)
    # 2. Near-duplicates, the most asked texts first (they lead).
    text_order = sorted(range(len(texts)), key=lambda t: (-len(by_text[texts[t]]), by_text[texts[t]][0]))
    labels = _near_duplicates(texts, text_order, near_duplicate, normaliser)
    clusters: dict[int, list[int]] = {}
    for t in text_order:
        clusters.setdefault(labels[t], []).append(t)
    cluster_list = list(clusters.values())
    # 3. Paraphrases: clusters (as the mean of their texts' vectors) join leaders.
    text_vectors = _Vectoriser(normaliser).fit_transform(texts)
    weights = np.array([len(by_text[t]) for t in texts], dtype=np.float32)
    member_rows, member_cols, member_vals = [], [], []
    for c, ts in enumerate(cluster_list):
        for t in ts:
            member_rows.append(c)
            member_cols.append(t)
            member_vals.append(weights[t])
    membership = sparse.csr_matrix((member_vals, (member_rows, member_cols)),
                                   shape=(len(cluster_list), len(texts)), dtype=np.float32)
    centres = membership @ text_vectors
    norms = np.sqrt(centres.multiply(centres).sum(axis=1)).A1
    norms[norms == 0] = 1.0
    centres = sparse.diags(1.0 / norms) @ centres
    sizes = [sum(len(by_text[texts[t]]) for t in ts) for ts in cluster_list]
    first = [min(questions[i].id for t in ts for i in by_text[texts[t]]) for ts in cluster_list]
    order = sorted(range(len(cluster_list)), key=lambda c: (-sizes[c], first[c]))
    leader_of = _leader_clusters(sparse.csr_matrix(centres), order, paraphrase)

    merged: dict[int, list[int]] = {}
    for c in order:
        merged.setdefault(leader_of[c], []).extend(cluster_list[c])
    groups = []
    for text_ids in merged.values():
        members = sorted((questions[i] for t in text_ids for i in by_text[texts[t]]), key=lambda q: q.id)
        groups.append(_summarise(members, text_ids, texts, by_text, questions, text_vectors, max_examples))
    groups.sort(key=lambda g: (-g.count, g.key))
    return groups


def _summarise(members, text_ids, texts, by_text, questions, text_vectors, max_examples) -> Group:
    counts = np.array([len(by_text[texts[t]]) for t in text_ids], dtype=np.float32)
    block = text_vectors[text_ids]
    centre = np.asarray(block.T @ counts).ravel()
    closeness = np.asarray(block @ centre).ravel()
    # The representative: nearest the centre; among equals the most asked.
    best = max(range(len(text_ids)), key=lambda k: (round(float(closeness[k]), 6), counts[k], -k))
    rep_text = texts[text_ids[best]]
    representative = questions[by_text[rep_text][0]]
    seen: Counter = Counter(q.text.strip() for q in members)
    examples = [t for t, _ in seen.most_common() if t][:max_examples]
    return Group(key=members[0].id, members=members, representative=representative, examples=examples,
                 normalised=rep_text)


def pair_f1(predicted: Iterable[Iterable[Any]], truth: dict[Any, Any]) -> dict[str, float]:
    """Pair-counting precision, recall and F1 of a clustering against known labels."""
    def pairs(clusters):
        out = set()
        for members in clusters:
            members = sorted(members)
            out.update((a, b) for i, a in enumerate(members) for b in members[i + 1:])
        return out

    true_groups: dict[Any, list[Any]] = {}
    for item, label in truth.items():
        true_groups.setdefault(label, []).append(item)
    got, want = pairs(predicted), pairs(true_groups.values())
    tp = len(got & want)
    precision = tp / len(got) if got else 1.0
    recall = tp / len(want) if want else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}
