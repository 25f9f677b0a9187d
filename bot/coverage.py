"""What the plan does not cover: spot it in a message and say so honestly.

The cases are data (knowledge/not_covered.yml): 生育津贴, application
materials, where and how to apply, amounts the plan leaves open, a fourth
child, other housing programmes, rumours. The reply says the plan does not
set it and names the department that handles the topic in question (or the
hotline when there is no topic); the text is rendered by bot.render.
"""
from __future__ import annotations

from .config import Settings, load_settings
from .knowledge import Knowledge, NotCovered
from .render import Reply, render_not_covered
from .text import normalize

# Shorter topic words are too common to name a topic on their own ("假").
MIN_TOPIC_WORD = 2
# A word found inside the terms of this many topics names none of them ("补贴", "三孩").
GENERIC_IN_TOPICS = 3
_TERMS: dict[int, dict[str, tuple[str, ...]]] = {}


def _topic_terms(kb: Knowledge) -> dict[str, tuple[str, ...]]:
    """Per answer: its title, benefit name and keywords, less the words shared by many topics."""
    if id(kb) not in _TERMS:
        raw = {}
        for answer in kb.answers.values():
            terms = [answer.title, *answer.keywords]
            if answer.benefit:
                terms.append(kb.benefits[answer.benefit].name)
            raw[answer.id] = tuple(t for t in dict.fromkeys(terms) if len(t) >= MIN_TOPIC_WORD)
        def topics_containing(word: str) -> int:
            return sum(any(word in t for t in terms) for terms in raw.values())
        _TERMS[id(kb)] = {aid: tuple(t for t in terms if topics_containing(t) < GENERIC_IN_TOPICS)
                          for aid, terms in raw.items()}
    return _TERMS[id(kb)]


def matching_entry(kb: Knowledge, text: str) -> NotCovered | None:
    """The first entry (in file order) one of whose words occurs in the text."""
    text = normalize(text or "")
    for entry in kb.not_covered:
        if any(word in text for word in entry.words):
            return entry
    return None


def _with_canonical_terms(kb: Knowledge, text: str) -> str:
    """The text followed by the plan's term for every everyday variant in it (三胎 -> 三孩)."""
    extra = [canonical for canonical, variants in kb.synonyms.items() if any(v in text for v in variants)]
    return " ".join([text, *extra])


def topic_named_in(kb: Knowledge, text: str) -> str | None:
    """The answer whose title, benefit name or keyword the text names, longest match first;
    None when nothing is named or two topics tie."""
    text = _with_canonical_terms(kb, normalize(text or ""))
    best: dict[str, int] = {}
    for aid, terms in _topic_terms(kb).items():
        lengths = [len(t) for t in terms if t in text]
        if lengths:
            best[aid] = max(lengths)
    if not best:
        return None
    top = max(best.values())
    winners = [aid for aid, length in best.items() if length == top]
    return winners[0] if len(winners) == 1 else None


def not_covered(kb: Knowledge, text: str, answer_id: str | None = None, benefit_id: str | None = None,
                settings: Settings | None = None) -> Reply | None:
    """The honest reply when the message asks what the plan does not cover, else None.

    `answer_id` / `benefit_id` give the topic of the message or of the
    conversation; without them, a topic the message names is used. An entry
    limited to some topics (`only_for`, e.g. amounts) gives None for another
    topic: there the answer itself states it.
    """
    entry = matching_entry(kb, text)
    if entry is None:
        return None
    topic = entry.answer or answer_id
    if topic is None and benefit_id is not None:
        topic = kb.benefits[benefit_id].answer
    if topic is None:
        topic = topic_named_in(kb, text) or entry.default_answer
    if topic is not None and entry.only_for and topic not in entry.only_for:
        return None
    return render_not_covered(kb, entry, topic, settings or load_settings())
