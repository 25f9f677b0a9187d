"""Score the held-out conversations (tests/conversations/) against a running Rasa over REST.

Each conversation is sent turn by turn with a fresh sender id; the reply to its
last turn is judged. It passes when one of that reply's messages matches
`expect` (by custom.kind and the fields below) and no reply of the
conversation shows the same message text twice. A last reply that also gives
an expected verdict's benefit another status fails, whatever else it says.

    .venv/bin/python bench/conversation_eval.py [--url http://127.0.0.1:5005] [--json out.json]
    .venv/bin/python bench/conversation_eval.py --only follow_up --only mt-007

Expectation kinds (custom fields of the assistant's messages):
  verdict      {benefit, status}
  ask          {benefit, fact_in?, fact_not_in?}: the fact asked is one of fact_in; no question in the
               reply asks again for a fact in fact_not_in (the citizen already said it)
  answer       {answer_id}
  department   {department}: custom.departments[0], the department that handles the measure
  not_covered  {department?}
`expect` may be a list: any one of the alternatives passes.

A conversation with `valid_until` (its expectation depends on the date, e.g. a
child's age from a birth date) is skipped after that date, and one with
`today` is skipped before it. The scoring is shared with
tests/e2e/test_conversations_heldout.py; it imports nothing from Rasa.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONVERSATIONS = ROOT / "tests" / "conversations"

FIELDS = {
    "verdict": ({"benefit", "status"}, set()),
    "ask": ({"benefit"}, {"fact_in", "fact_not_in"}),
    "answer": ({"answer_id"}, set()),
    "department": ({"department"}, set()),
    "not_covered": (set(), {"department"}),
}
STATUSES = {"eligible", "ineligible", "unknown"}
CONVERSATION_KEYS = {"id", "turns", "expect", "today", "valid_until", "facts", "about"}

Message = dict[str, Any]
Reply = list[Message]


class ConversationFileError(ValueError):
    """A conversation file is malformed; the message names the file and the id."""


def _date(value: Any, where: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise ConversationFileError(f"{where}: not a date: {value!r}") from exc


def expectations(conversation: dict) -> list[dict]:
    """The alternatives of a conversation's `expect` (a mapping or a list of them)."""
    expect = conversation["expect"]
    return list(expect) if isinstance(expect, list) else [expect]


def _check_expectation(expect: Any, where: str) -> None:
    if not isinstance(expect, dict) or expect.get("kind") not in FIELDS:
        raise ConversationFileError(f"{where}: expect needs a kind among {sorted(FIELDS)}: {expect!r}")
    required, optional = FIELDS[expect["kind"]]
    keys = set(expect) - {"kind"}
    if not required <= keys or keys - required - optional:
        raise ConversationFileError(f"{where}: {expect['kind']} takes {sorted(required)} "
                                    f"and optionally {sorted(optional)}, got {sorted(keys)}")
    if expect["kind"] == "verdict" and expect["status"] not in STATUSES:
        raise ConversationFileError(f"{where}: status must be one of {sorted(STATUSES)}")
    for key in ("fact_in", "fact_not_in"):
        if key in expect and not (isinstance(expect[key], list) and expect[key]):
            raise ConversationFileError(f"{where}: {key} must be a non-empty list")


def load_file(path: Path) -> list[dict]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    conversations = data.get("conversations")
    if not isinstance(conversations, list) or not conversations:
        raise ConversationFileError(f"{path.name}: needs a non-empty `conversations` list")
    for conv in conversations:
        where = f"{path.name}: {conv.get('id', '?') if isinstance(conv, dict) else conv!r}"
        if not isinstance(conv, dict) or not isinstance(conv.get("id"), str):
            raise ConversationFileError(f"{where}: each conversation needs an `id`")
        if set(conv) - CONVERSATION_KEYS:
            raise ConversationFileError(f"{where}: unknown keys {sorted(set(conv) - CONVERSATION_KEYS)}")
        turns = conv.get("turns")
        if not isinstance(turns, list) or not turns or not all(isinstance(t, str) and t.strip() for t in turns):
            raise ConversationFileError(f"{where}: `turns` must be a non-empty list of texts")
        if "expect" not in conv or (isinstance(conv["expect"], list) and not conv["expect"]):
            raise ConversationFileError(f"{where}: needs `expect`")
        for expect in expectations(conv):
            _check_expectation(expect, where)
        for key in ("today", "valid_until"):
            if key in conv:
                conv[key] = _date(conv[key], where)
    return conversations


def load_conversations(folder: Path = CONVERSATIONS) -> dict[str, list[dict]]:
    """Every conversation file in `folder`, by file stem; ids are unique across files."""
    files = {path.stem: load_file(path) for path in sorted(folder.glob("*.yml"))}
    seen = Counter(conv["id"] for convs in files.values() for conv in convs)
    repeated = sorted(cid for cid, n in seen.items() if n > 1)
    if repeated:
        raise ConversationFileError(f"conversation ids used twice: {repeated}")
    return files


def applies_on(conversation: dict, today: dt.date) -> bool:
    """False when the conversation's expectation does not hold on `today`."""
    if "today" in conversation and today < conversation["today"]:
        return False
    return not ("valid_until" in conversation and today > conversation["valid_until"])


def custom(message: Message) -> dict:
    value = message.get("custom")
    return value if isinstance(value, dict) else {}


def first_department(message: Message) -> str | None:
    departments = custom(message).get("departments")
    return departments[0] if isinstance(departments, list) and departments else None


def message_matches(expect: dict, message: Message) -> bool:
    """Does this one message carry what `expect` asks for?"""
    data = custom(message)
    kind = expect["kind"]
    if data.get("kind") != kind:
        return False
    if kind == "verdict":
        return data.get("benefit") == expect["benefit"] and data.get("status") == expect["status"]
    if kind == "ask":
        if data.get("benefit") != expect["benefit"]:
            return False
        if "fact_in" in expect and data.get("fact") not in expect["fact_in"]:
            return False
        return data.get("fact") not in expect.get("fact_not_in", ())
    if kind == "answer":
        return data.get("answer_id") == expect["answer_id"]
    if kind == "department":
        return first_department(message) == expect["department"]
    if kind == "not_covered":
        return "department" not in expect or first_department(message) == expect["department"]
    raise AssertionError(kind)


def asked_again(expect: dict, reply: Reply) -> list[str]:
    """Facts the citizen already stated that a question in this reply asks for again."""
    if expect["kind"] != "ask":
        return []
    stated = set(expect.get("fact_not_in", ()))
    return [custom(m).get("fact") for m in reply
            if custom(m).get("kind") == "ask" and custom(m).get("fact") in stated]


def contradicting_verdicts(alternatives: list[dict], reply: Reply) -> list[str]:
    """Verdicts in the reply on an expected verdict's benefit with another status ("benefit: status")."""
    expected = {(e["benefit"], e["status"]) for e in alternatives if e["kind"] == "verdict"}
    benefits = {benefit for benefit, _ in expected}
    return [f"{custom(m).get('benefit')}: {custom(m).get('status')}" for m in reply
            if custom(m).get("kind") == "verdict" and custom(m).get("benefit") in benefits
            and (custom(m).get("benefit"), custom(m).get("status")) not in expected]


def reply_matches(expect: dict, reply: Reply) -> bool:
    return not asked_again(expect, reply) and any(message_matches(expect, m) for m in reply)


def repeated_texts(reply: Reply) -> list[str]:
    """Message texts that appear more than once in one reply (empty texts aside)."""
    counts = Counter((m.get("text") or "").strip() for m in reply)
    return [text for text, n in counts.items() if text and n > 1]


@dataclass
class Outcome:
    id: str
    file: str
    turns: list[str]
    expect: Any
    replies: list[Reply]
    problems: list[str] = field(default_factory=list)
    repeats: list[tuple[int, str]] = field(default_factory=list)  # (turn number, repeated text)

    @property
    def passed(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {"id": self.id, "file": self.file, "turns": self.turns, "expect": self.expect,
                "passed": self.passed, "problems": self.problems,
                "replies": [[{"kind": custom(m).get("kind"), "text": m.get("text"), "custom": custom(m)}
                             for m in reply] for reply in self.replies]}


def judge(conversation: dict, replies: list[Reply], file: str = "") -> Outcome:
    """Judge one conversation from the replies to each of its turns."""
    outcome = Outcome(conversation["id"], file, list(conversation["turns"]), conversation["expect"], replies)
    if len(replies) != len(conversation["turns"]):
        outcome.problems.append(f"{len(replies)} replies for {len(conversation['turns'])} turns")
        return outcome
    for number, reply in enumerate(replies, 1):
        for text in repeated_texts(reply):
            outcome.repeats.append((number, text))
            outcome.problems.append(f"turn {number}: the same message twice in one reply: {text[:60]!r}")
    last = replies[-1]
    alternatives = expectations(conversation)
    contradictions = contradicting_verdicts(alternatives, last)
    if contradictions:
        outcome.problems.append(f"the last reply gives another verdict too: {contradictions}")
    elif not any(reply_matches(expect, last) for expect in alternatives):
        again = sorted({f for expect in alternatives for f in asked_again(expect, last)})
        why = f"; asks again for what was said: {again}" if again else ""
        outcome.problems.append(f"the last reply does not match {conversation['expect']}{why}")
    return outcome


def converse(conversation: dict, say: Callable[[str, str], Reply], sender: str | None = None) -> list[Reply]:
    """Send every turn with one fresh sender id; the replies, turn by turn."""
    sender = sender or f"heldout-{conversation['id']}-{uuid.uuid4().hex[:12]}"
    return [say(sender, text) for text in conversation["turns"]]


@dataclass
class Run:
    outcomes: dict[str, list[Outcome]]  # by file
    skipped: list[str]

    def rate(self, file: str | None = None) -> float:
        chosen = self.outcomes[file] if file else [o for os_ in self.outcomes.values() for o in os_]
        return sum(o.passed for o in chosen) / len(chosen) if chosen else 0.0

    @property
    def failures(self) -> list[Outcome]:
        return [o for os_ in self.outcomes.values() for o in os_ if not o.passed]

    @property
    def repeats(self) -> list[tuple[str, int, str]]:
        return [(o.id, n, text) for os_ in self.outcomes.values() for o in os_ for n, text in o.repeats]

    def figures(self) -> dict:
        every = [o for os_ in self.outcomes.values() for o in os_]
        messages = [m for o in every for reply in o.replies for m in reply]
        return {
            "files": {name: {"conversations": len(os_), "passed": sum(o.passed for o in os_),
                             "rate": round(self.rate(name), 3)} for name, os_ in self.outcomes.items()},
            "conversations": len(every), "passed": sum(o.passed for o in every),
            "rate": round(self.rate(), 3), "skipped": self.skipped,
            "replies_with_a_repeated_message": len({(i, n) for i, n, _ in self.repeats}),
            "messages": len(messages),
            "messages_without_text": sum(not (m.get("text") or "").strip() for m in messages),
        }


def run(files: dict[str, list[dict]], say: Callable[[str, str], Reply], today: dt.date | None = None,
        only: list[str] | None = None) -> Run:
    """Converse and judge every conversation that applies today (and matches `only`, file stems or ids)."""
    today = today or dt.date.today()
    outcomes: dict[str, list[Outcome]] = {}
    skipped: list[str] = []
    for name, conversations in files.items():
        for conv in conversations:
            if only and name not in only and conv["id"] not in only:
                continue
            if not applies_on(conv, today):
                skipped.append(conv["id"])
                continue
            outcomes.setdefault(name, []).append(judge(conv, converse(conv, say), name))
    return Run(outcomes, skipped)


def describe(outcome: Outcome) -> str:
    """A failure as a developer reads it: id, turns, and every reply's kinds and texts."""
    lines = [f"[{outcome.file}] {outcome.id}  expect: {outcome.expect}"]
    lines += [f"  problem: {p}" for p in outcome.problems]
    for number, (turn, reply) in enumerate(zip(outcome.turns, outcome.replies), 1):
        lines.append(f"  {number}> {turn}")
        for m in reply:
            data = custom(m)
            tags = " ".join(f"{k}={data[k]}" for k in ("benefit", "status", "fact", "answer_id") if data.get(k))
            dept = f" dept={first_department(m)}" if first_department(m) else ""
            text = (m.get("text") or "").replace("\n", " / ")
            lines.append(f"     <{data.get('kind', '-')}{' ' + tags if tags else ''}{dept}> {text[:160]}")
    return "\n".join(lines)


def report(result: Run) -> str:
    figures = result.figures()
    lines = [f"{name:<20} {f['passed']:>3}/{f['conversations']:<3} {f['rate']:.3f}"
             for name, f in figures["files"].items()]
    lines.append(f"{'overall':<20} {figures['passed']:>3}/{figures['conversations']:<3} {figures['rate']:.3f}")
    lines.append(f"replies with a repeated message: {figures['replies_with_a_repeated_message']}; "
                 f"messages without text: {figures['messages_without_text']} of {figures['messages']}")
    if figures["skipped"]:
        lines.append(f"skipped (expectation not valid today): {', '.join(figures['skipped'])}")
    return "\n".join(lines)


def rest_sayer(url: str, timeout: float = 30) -> Callable[[str, str], Reply]:
    import requests

    session = requests.Session()

    def say(sender: str, text: str) -> Reply:
        resp = session.post(f"{url.rstrip('/')}/webhooks/rest/webhook",
                            json={"sender": sender, "message": text}, timeout=timeout)
        resp.raise_for_status()
        return resp.json()

    return say


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:5005", help="Rasa server (REST channel)")
    parser.add_argument("--folder", type=Path, default=CONVERSATIONS)
    parser.add_argument("--only", action="append", help="a file stem or conversation id (repeatable)")
    parser.add_argument("--json", type=Path, help="write figures and every outcome here")
    args = parser.parse_args(argv)
    result = run(load_conversations(args.folder), rest_sayer(args.url), only=args.only)
    for outcome in result.failures:
        print(describe(outcome), end="\n\n")
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(
            {"figures": result.figures(),
             "outcomes": [o.as_dict() for os_ in result.outcomes.values() for o in os_]},
            ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
