"""Input normalisation and personal-data masking, shared by search, NLU and storage.

`mask_personal_data` is the one function every path that stores citizen text
goes through (web chat, the REST channel, the NLU normaliser, the review
store). It looks for personal data in the text as the NLU will see it
(full-width and other digits folded to ASCII, emoji and zero-width characters
as spaces), so nothing it leaves alone can become a number in clear after
normalisation, and it keeps the citizen's own characters everywhere else.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

MAX_INPUT_CHARS = 500

# Emoji and pictographs, variation selectors, zero-width characters, and the
# replacement character (what a lone surrogate became: it carries no meaning).
_EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\uFE00-\uFE0F\u200B-\u200F\u2060\uFEFF\uFFFD]")
_CONTROL = re.compile(r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F]")
# A lone surrogate cannot be encoded as UTF-8: every database driver, opencc
# and json-to-bytes would raise on it.
_SURROGATE = re.compile("[\ud800-\udfff]")
# A client's name for one message, the same on every resend (a UUID, a timestamp with a
# random part): what the web app and Rasa's REST channel accept as `message_id`.
_MESSAGE_ID = re.compile(r"[A-Za-z0-9_.:-]{8,64}")
_SPACES = re.compile(r"[ \t\r\f\v]+")
_REPEAT_PUNCT = re.compile(r"([!?,.~。！？，、…])\1+")

# -- personal data ------------------------------------------------------------
# Chinese numerals as people dictate a number digit by digit ("幺三八…").
_CN_DIGITS = {"〇": "0", "零": "0", "一": "1", "幺": "1", "二": "2", "三": "3", "四": "4",
              "五": "5", "六": "6", "七": "7", "八": "8", "九": "9"}
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
# A run of digits with at most three separator characters between them (spaces,
# dashes, dots, brackets: "138 1234 5678", "(0477)8123456", "150602-1990...").
_RUN = re.compile(r"\+?[0-9](?:[ \-.()]{0,3}[0-9])*(?:[Xx](?![A-Za-z]))?")
_GROUP = re.compile(r"[0-9]+[Xx]?")
_PHONE_WORDS = re.compile(r"(?:电话|座机|固话|手机|联系方式|号码|打给|致电|tel|phone)[^0-9]{0,6}$", re.IGNORECASE)
_MAX_CANDIDATE_DIGITS = 22


def is_message_id(value: object) -> bool:
    """Whether `value` is a usable client message id (8-64 letters, digits or - _ . :)."""
    return isinstance(value, str) and _MESSAGE_ID.fullmatch(value) is not None


def strip_unsafe(text: str) -> str:
    """Text any database and encoder accepts: lone surrogates become U+FFFD,
    control characters (NUL included) become spaces; tabs and newlines stay."""
    if not text:
        return ""
    return _CONTROL.sub(" ", _SURROGATE.sub("\ufffd", text))


def mask_personal_data(text: str) -> str:
    """Mask ID-card, phone and bank-card numbers and e-mail addresses.

    Normalises first (one character in, one out, as the NLU does), finds
    personal data in that form, and masks it; elsewhere the citizen's own
    characters are kept. Dates, amounts, ages and counts are left alone.
    Also strips what no database stores (see strip_unsafe).
    """
    text = strip_unsafe(text)
    if not text:
        return ""
    for _ in range(3):  # masking one number can only reveal less; re-check until stable
        masked = _mask_once(text)
        if masked == text:
            break
        text = masked
    return text


def mask_structure(value, max_depth: int = 4, max_items: int = 50):
    """A JSON-like value (dicts, lists, strings, numbers) with every string and
    every integer that is personal data masked. Raises ValueError when it is
    deeper than `max_depth` or holds anything else."""
    def walk(v, depth):
        if depth > max_depth:
            raise ValueError("too deeply nested")
        if isinstance(v, dict):
            return {mask_personal_data(str(k)): walk(x, depth + 1) for k, x in list(v.items())[:max_items]}
        if isinstance(v, (list, tuple)):
            return [walk(x, depth + 1) for x in list(v)[:max_items]]
        if isinstance(v, str):
            return mask_personal_data(v)
        if v is None or isinstance(v, (bool, float)):
            return v
        if isinstance(v, int):
            masked = mask_personal_data(str(v))
            return v if masked == str(v) else masked
        raise ValueError(f"unexpected {type(v).__name__}")

    return walk(value, 0)


def _mask_once(text: str) -> str:
    out = list(text)
    for numerals in (False, True):
        for pos, ch in _masked_positions(_fold(text, numerals)).items():
            if out[pos] != "*":
                out[pos] = ch
    return "".join(out)


def _fold(text: str, numerals: bool) -> str:
    """One character per character: any decimal digit as ASCII, NFKC width
    folding, emoji/control characters as spaces (what the NLU normaliser
    does), and optionally Chinese numerals as digits."""
    out = []
    for ch in text:
        if ch.isascii():
            out.append(" " if _CONTROL.match(ch) else ch)
            continue
        digit = unicodedata.decimal(ch, None)
        if digit is not None:
            out.append(str(digit))
        elif numerals and ch in _CN_DIGITS:
            out.append(_CN_DIGITS[ch])
        elif _EMOJI.match(ch) or _CONTROL.match(ch) or _SURROGATE.match(ch):
            out.append(" ")
        else:
            n = unicodedata.normalize("NFKC", ch)
            out.append(n if len(n) == 1 else ch)
    return "".join(out)


def _masked_positions(folded: str) -> dict[int, str]:
    """{position: replacement character} for every character of personal data."""
    result: dict[int, str] = {}
    work = list(folded)
    for m in _EMAIL.finditer(folded):
        local_end = folded.index("@", m.start())
        for i in range(m.start(), m.end()):
            result[i] = folded[i] if (i == m.start() or i >= local_end) else "*"
            work[i] = "*"  # numbers inside an address are not looked at again
    scan = "".join(work)
    for run in _RUN.finditer(scan):
        groups = list(_GROUP.finditer(scan, run.start(), run.end()))
        plus = scan[run.start()] == "+"
        i = 0
        while i < len(groups):
            # Longest first: the whole run, then shorter runs of neighbouring
            # groups ("孩子3岁 13912345678" -> the phone number alone).
            candidates, digits = [], ""
            for j in range(i, len(groups)):
                digits += groups[j].group(0)
                if len(digits) > _MAX_CANDIDATE_DIGITS:
                    break
                candidates.append((j, digits))
            i_next = i + 1
            start = run.start() if (i == 0 and plus) else groups[i].start()
            for j, digits in reversed(candidates):
                keep = _classify(digits, plus and i == 0, scan[max(0, start - 12):start])
                if keep is not None:
                    _mask_span(folded, start, groups[j].end(), keep, result)
                    i_next = j + 1
                    break
            i = i_next
    return result


def _mask_span(folded: str, start: int, end: int, keep: tuple[int, int], result: dict[int, str]) -> None:
    head, tail = keep
    digits = [i for i in range(start, end) if folded[i] in "0123456789Xx"]
    shown = set(digits[:head]) | set(digits[len(digits) - tail:])
    for i in range(start, end):
        result[i] = "*" if (i in digits and i not in shown) else folded[i]


def _classify(digits: str, plus: bool, before: str) -> tuple[int, int] | None:
    """(digits shown at the head, digits shown at the tail) when `digits` is
    personal data, else None."""
    n = len(digits)
    if digits[-1] in "Xx":
        return (3, 4) if n == 18 and digits[:-1].isdigit() and digits[0] != "0" else None
    if n == 18 and digits[0] != "0" and 1850 <= int(digits[6:10]) <= 2099:
        return (3, 4)  # resident ID card (a mistyped month or day is still one)
    if n == 15 and digits[0] != "0" and _valid_month_day(digits[8:10], digits[10:12]):
        return (3, 4)  # first-generation ID card
    for prefix in ("0086", "86", "0", ""):
        if digits.startswith(prefix) and len(digits) - len(prefix) == 11 and re.fullmatch(r"1[3-9]\d{9}", digits[len(prefix):]):
            return (len(prefix) + 3, 4)  # mobile
    if 13 <= n <= 19 and (digits[0] in "345689" or (n == 16 and 2221 <= int(digits[:4]) <= 2720)) and _luhn(digits):
        return (0, 4)  # bank card
    if 10 <= n <= 12 and digits[0] == "0" and digits[1] != "0":
        return (3 if digits[1] in "12" else 4, 2)  # landline with area code
    if plus and digits.startswith("86") and 9 <= n - 2 <= 11 and digits[2] != "0":
        return (2 + (2 if digits[2] in "12" else 3), 2)  # +86 landline
    if 7 <= n <= 8 and digits[0] in "23456789" and _PHONE_WORDS.search(before):
        return (0, 2)  # local landline number after "电话", "座机"...
    return None


def _valid_month_day(month: str, day: str) -> bool:
    return 1 <= int(month) <= 12 and 1 <= int(day) <= 31


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# -- normalisation --------------------------------------------------------------
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
    text = _CONTROL.sub(" ", _SURROGATE.sub(" ", text))
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
        if _EMOJI.match(ch) or _CONTROL.match(ch) or _SURROGATE.match(ch):
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
