"""Input normalisation and personal-data masking, shared by search and NLU."""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

MAX_INPUT_CHARS = 500

# ID-card numbers (18 digits, last may be X) and mainland mobile numbers,
# optionally written with spaces or dashes.
_ID_CARD = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx](?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)0\d{2,3}-\d{7,8}(?!\d)")
# Emoji and pictographs, variation selectors, zero-width characters.
_EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\uFE00-\uFE0F\u200B-\u200F\u2060\uFEFF]")
_CONTROL = re.compile(r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F]")
_SPACES = re.compile(r"[ \t\r\f\v]+")
_REPEAT_PUNCT = re.compile(r"([!?,.~。！？，、…])\1+")


def mask_personal_data(text: str) -> str:
    """Mask ID-card and phone numbers so they are never stored in clear."""
    text = _ID_CARD.sub(lambda m: m.group(0)[:3] + "*" * 11 + m.group(0)[-4:], text)
    text = _MOBILE.sub(lambda m: _mask_digits(m.group(0), keep_head=3, keep_tail=4), text)
    text = _LANDLINE.sub(lambda m: _mask_digits(m.group(0), keep_head=4, keep_tail=2), text)
    return text


def _mask_digits(s: str, keep_head: int, keep_tail: int) -> str:
    digits = [i for i, ch in enumerate(s) if ch.isdigit()]
    keep = set(digits[:keep_head] + digits[-keep_tail:])
    return "".join(ch if (not ch.isdigit() or i in keep) else "*" for i, ch in enumerate(s))


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    return _t2s().convert(text)


def normalize(text: str, max_chars: int = MAX_INPUT_CHARS) -> str:
    """Canonical form of user text: simplified, half-width, no emoji, capped.

    Full-width letters/digits/punctuation become half-width (NFKC), except that
    Chinese sentence punctuation is kept so jieba still sees clause breaks.
    """
    if not text:
        return ""
    text = text[: max_chars * 2]
    text = _CONTROL.sub(" ", text)
    text = _EMOJI.sub(" ", text)
    text = unicodedata.normalize("NFKC", text)
    text = to_simplified(text)
    text = _REPEAT_PUNCT.sub(r"\1", text)
    text = _SPACES.sub(" ", text).strip()
    return text[:max_chars]


def normalize_keep_offsets(text: str) -> str:
    """Like normalize(), but one character in gives one character out.

    Used inside the NLU pipeline, where entity offsets must stay valid.
    """
    out = []
    for ch in text:
        if _EMOJI.match(ch) or _CONTROL.match(ch):
            out.append(" ")
            continue
        n = unicodedata.normalize("NFKC", ch)
        out.append(n if len(n) == 1 else ch)
    # A leading slash stays full-width: Rasa reads "/name" as an intent command
    # (e.g. "/restart") even after the NLU pipeline, so it must never appear.
    lead = next((i for i, ch in enumerate(out) if not ch.isspace()), None)
    if lead is not None and out[lead] == "/":
        out[lead] = "／"
    simplified = to_simplified("".join(out))
    return simplified if len(simplified) == len(text) else "".join(out)
