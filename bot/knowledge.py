"""Load knowledge/*.yml into one validated, read-only Knowledge object.

Any broken reference raises KnowledgeError naming the file and the entry, so
a typo in the data fails at start-up (and in the tests), never in a reply.
"""
from __future__ import annotations

import datetime as dt
import string
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

CONDITION_OPS = ("is", "in", "equals", "at_least", "below", "on_or_after")
FACT_TYPES = ("bool", "int", "date", "enum")


class KnowledgeError(ValueError):
    def __init__(self, path: Path | str, entry: str, problem: str):
        super().__init__(f"{path}: {entry}: {problem}")
        self.path, self.entry, self.problem = str(path), entry, problem


@dataclass(frozen=True)
class Clause:
    id: str
    label: str
    path: tuple[str, ...]
    title: str
    text: str
    lead: tuple[str, ...] = ()
    responsible: tuple[str, ...] = ()

    @property
    def citation(self) -> str:
        return f"《实施方案》{self.label}"


@dataclass(frozen=True)
class Department:
    id: str
    name: str
    aliases: tuple[str, ...]
    contact: dict[str, Any]
    leads: tuple[str, ...] = ()          # clause ids
    responsible_for: tuple[str, ...] = ()  # clause ids


@dataclass(frozen=True)
class Handling:
    """Who handles a measure.

    `department` does the work (chosen from the departments the plan lists for
    the cited clauses, for `reason`: its duties); the leads of every cited
    clause coordinate; the rest share the work by their duties. With no
    department listed in any cited clause, `department` is None.
    """
    department: str | None
    reason: str
    leads: tuple[str, ...] = ()
    responsible: tuple[str, ...] = ()

    @property
    def coordinators(self) -> tuple[str, ...]:
        """The leads other than the handling department."""
        return tuple(d for d in self.leads if d != self.department)

    @property
    def departments(self) -> list[str]:
        """Handling department first, then the leads as coordinators, then the rest."""
        first = [self.department] if self.department else []
        return list(dict.fromkeys(first + list(self.leads) + list(self.responsible)))


@dataclass(frozen=True)
class Condition:
    fact: str
    op: str
    value: Any
    clause: str
    text: str
    # The question put for this benefit (e.g. about the mother, not the person typing);
    # empty: the fact's own question.
    ask: str = ""
    # A condition on when, not whether (产假期满后): unmet means "later", never ineligible,
    # and it is never asked for.
    timing: bool = False


@dataclass(frozen=True)
class OpenConditions:
    """The plan states some conditions and leaves the others to someone it names."""
    set_by: str          # a department, or a rule the cited clause names (《…条例》, 国家相关规定)
    text: str            # the sentence shown with a verdict: 其他条件由…确定


@dataclass(frozen=True)
class Benefit:
    id: str
    name: str
    clause: str
    amount: str
    answer: str
    conditions: tuple[Condition, ...]
    note: str = ""
    handling: Handling = Handling(None, "")
    open_conditions: OpenConditions | None = None

    @property
    def facts(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.fact for c in self.conditions))

    @property
    def clauses(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([self.clause] + [c.clause for c in self.conditions]))


@dataclass(frozen=True)
class Answer:
    id: str
    title: str
    questions: tuple[str, ...]
    text: str
    clauses: tuple[str, ...]
    follow_ups: tuple[str, ...]
    keywords: tuple[str, ...]
    benefit: str | None = None
    handling: Handling = Handling(None, "")
    script: str = ""   # 口播稿: what hotline staff read aloud (only what `text` states)


@dataclass(frozen=True)
class Fact:
    name: str
    type: str
    label: str
    ask: str = ""
    values: dict[str, str] = field(default_factory=dict)
    min: int | None = None
    max: int | None = None
    derived_from: tuple[str, ...] = ()


@dataclass(frozen=True)
class NotCovered:
    """Something citizens ask that the plan leaves out, with the honest reply.

    `words` are everyday words that signal it (plain substrings). The reply is
    `reply` when the message has a topic (`answer` forces one, `default_answer`
    stands in for none), else `reply_no_topic`; `only_for` limits it to those
    topics (e.g. amounts: only where the plan gives none). Templates take
    {title}, {gist}, {where} and {hotline} (see bot/coverage.py).
    """
    id: str
    words: tuple[str, ...]
    reply: str
    reply_no_topic: str = ""
    answer: str | None = None
    default_answer: str | None = None
    only_for: tuple[str, ...] = ()


NOT_COVERED_FIELDS = ("title", "gist", "where", "hotline")


@dataclass(frozen=True)
class Knowledge:
    clauses: dict[str, Clause]
    departments: dict[str, Department]   # by full name
    banners: dict[str, tuple[str, ...]]  # full name -> aliases
    answers: dict[str, Answer]
    benefits: dict[str, Benefit]
    facts: dict[str, Fact]               # input and derived facts
    synonyms: dict[str, tuple[str, ...]]  # canonical term -> variants
    effective_date: dt.date
    not_covered: tuple["NotCovered", ...] = ()  # what the plan leaves out (knowledge/not_covered.yml)

    def department_by_alias(self, text: str) -> Department | None:
        for dept in self.departments.values():
            if text == dept.name or text in dept.aliases:
                return dept
        return None

    def lead_of(self, clause_ids: tuple[str, ...] | list[str]) -> tuple[str, ...]:
        """The lead departments of every cited clause, in citation order."""
        return _leads(self.clauses, clause_ids)

    def responsible_of(self, clause_ids: tuple[str, ...] | list[str]) -> tuple[str, ...]:
        """The departments sharing the cited clauses by their duties (not leading any of them)."""
        return _responsible(self.clauses, clause_ids)

    def handling_of(self, answer_id: str | None = None, benefit_id: str | None = None) -> Handling:
        """Who handles an answer's topic (or a benefit): handler, reason, leads, the rest."""
        if benefit_id is not None:
            return self.benefits[benefit_id].handling
        if answer_id is not None:
            return self.answers[answer_id].handling
        return Handling(None, "")

    def handlers_of(self, answer_id: str) -> list[str]:
        """Departments of an answer's topic: the handling one first, then the leads, then the rest."""
        return self.answers[answer_id].handling.departments

    def benefit_handlers(self, benefit_id: str) -> list[str]:
        """Departments of a benefit: the handling one first, then the leads, then the rest."""
        return self.benefits[benefit_id].handling.departments

    def question_for(self, benefit_id: str, fact: str) -> str:
        """The question to put for `fact` in this benefit's check (the benefit's own wording
        when a condition carries one, else the fact's)."""
        for cond in self.benefits[benefit_id].conditions:
            if cond.ask and (cond.fact == fact or fact in self.facts[cond.fact].derived_from):
                return cond.ask
        return self.facts[fact].ask

    def input_facts(self) -> dict[str, Fact]:
        return {n: f for n, f in self.facts.items() if not f.derived_from}


def _load_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except FileNotFoundError as exc:
        raise KnowledgeError(path, "-", "file is missing") from exc
    except yaml.YAMLError as exc:
        raise KnowledgeError(path, "-", f"not valid YAML: {exc}") from exc


def _require(path: Path, entry: str, data: dict, keys: tuple[str, ...]) -> None:
    if not isinstance(data, dict):
        raise KnowledgeError(path, entry, "entry is not a mapping")
    for key in keys:
        if data.get(key) in (None, "", []):
            raise KnowledgeError(path, entry, f"missing '{key}'")


def _load_clauses(path: Path) -> dict[str, Clause]:
    clauses: dict[str, Clause] = {}
    for raw in _load_yaml(path)["clauses"]:
        cid = str(raw.get("id"))
        _require(path, cid, raw, ("id", "label", "path", "title", "text"))
        if cid in clauses:
            raise KnowledgeError(path, cid, "duplicate clause id")
        clauses[cid] = Clause(cid, raw["label"], tuple(raw["path"]), raw["title"], raw["text"],
                              tuple(raw.get("lead", ())), tuple(raw.get("responsible", ())))
    return clauses


def _load_departments(path: Path, clauses: dict[str, Clause]) -> tuple[dict[str, Department], dict]:
    data = _load_yaml(path)
    departments: dict[str, Department] = {}
    seen_alias: dict[str, str] = {}
    for raw in data["departments"]:
        _require(path, str(raw.get("id")), raw, ("id", "name"))
        name = raw["name"]
        for alias in raw.get("aliases", []):
            if alias in seen_alias:
                raise KnowledgeError(path, raw["id"], f"alias '{alias}' also used by {seen_alias[alias]}")
            seen_alias[alias] = raw["id"]
        leads = tuple(c.id for c in clauses.values() if name in c.lead)
        resp = tuple(c.id for c in clauses.values() if name in c.responsible)
        departments[name] = Department(raw["id"], name, tuple(raw.get("aliases", [])),
                                       dict(raw.get("contact") or {}), leads, resp)
    for clause in clauses.values():
        for name in clause.lead + clause.responsible:
            if name not in departments:
                raise KnowledgeError("knowledge/clauses.yml", clause.id, f"department '{name}' not in {path.name}")
    banners = {b["name"]: tuple(b.get("aliases", [])) for b in data.get("banners", [])}
    return departments, banners


def _load_facts(path: Path) -> dict[str, Fact]:
    data = _load_yaml(path)
    facts: dict[str, Fact] = {}
    for raw in data["facts"]:
        _require(path, str(raw.get("name")), raw, ("name", "type", "label", "ask"))
        if raw["type"] not in FACT_TYPES:
            raise KnowledgeError(path, raw["name"], f"unknown type '{raw['type']}'")
        if raw["type"] == "enum" and not raw.get("values"):
            raise KnowledgeError(path, raw["name"], "enum fact needs 'values'")
        facts[raw["name"]] = Fact(raw["name"], raw["type"], raw["label"], raw["ask"],
                                  dict(raw.get("values") or {}), raw.get("min"), raw.get("max"))
    for raw in data.get("derived", []):
        for src in raw["from"]:
            if src not in facts:
                raise KnowledgeError(path, raw["name"], f"derived from unknown fact '{src}'")
        facts[raw["name"]] = Fact(raw["name"], "int", raw["label"], derived_from=tuple(raw["from"]))
    return facts


def _check_clause(path: Path, entry: str, cid: str, clauses: dict[str, Clause]) -> str:
    cid = str(cid)
    if cid not in clauses:
        raise KnowledgeError(path, entry, f"cites clause '{cid}' which does not exist")
    return cid


def _leads(clauses: dict[str, Clause], clause_ids) -> tuple[str, ...]:
    return tuple(dict.fromkeys(d for cid in clause_ids for d in clauses[cid].lead))


def _responsible(clauses: dict[str, Clause], clause_ids) -> tuple[str, ...]:
    leads = set(_leads(clauses, clause_ids))
    return tuple(dict.fromkeys(d for cid in clause_ids for d in clauses[cid].responsible if d not in leads))


HANDLER_PLACEHOLDER = "{handler}"


def _load_handling(path: Path, entry: str, raw: dict, cited: tuple[str, ...], clauses, departments) -> Handling:
    """`handled_by: {department, reason}`, checked against the departments the cited clauses list."""
    leads, responsible = _leads(clauses, cited), _responsible(clauses, cited)
    spec = raw.get("handled_by")
    if not leads and not responsible:
        if spec:
            raise KnowledgeError(path, entry, "has 'handled_by' but its clauses list no department")
        return Handling(None, "")
    if not isinstance(spec, dict) or not spec.get("department") or not spec.get("reason"):
        raise KnowledgeError(path, entry, "missing 'handled_by: {department, reason}' "
                                          "(its clauses list departments)")
    name = spec["department"]
    if name not in departments:
        raise KnowledgeError(path, entry, f"handled_by department '{name}' is not in departments.yml")
    if name not in leads + responsible:
        raise KnowledgeError(path, entry, f"handled_by department '{name}' is not listed for clauses "
                                          f"{', '.join(cited)}")
    return Handling(name, str(spec["reason"]), leads, responsible)


def _fill_handler(path: Path, entry: str, text: str, handling: Handling) -> str:
    """Text may name the handling department as {handler}, so it is typed once."""
    if HANDLER_PLACEHOLDER not in text:
        return text
    if not handling.department:
        raise KnowledgeError(path, entry, "text names {handler} but there is no handling department")
    return text.replace(HANDLER_PLACEHOLDER, handling.department)


def _load_open_conditions(path: Path, bid: str, raw: Any, cited: tuple[str, ...], clauses,
                          handling: Handling) -> OpenConditions | None:
    """Who sets the conditions the plan leaves open: a listed department, or a rule the clause names."""
    if raw is None:
        return None
    entry = f"{bid} open_conditions"
    _require(path, entry, raw, ("set_by",))
    set_by = str(raw["set_by"])
    if set_by in handling.departments:
        default = f"其他条件由{set_by}确定"
    elif any(set_by in clauses[c].text for c in cited):
        default = f"其他条件按{set_by}确定"
    else:
        raise KnowledgeError(path, entry, f"set_by '{set_by}' is neither a department listed for clauses "
                                          f"{', '.join(cited)} nor named in their text")
    text = str(raw.get("text") or default).replace("{set_by}", set_by)
    return OpenConditions(set_by, _fill_handler(path, entry, text, handling))


def _load_benefits(folder: Path, clauses, facts, departments) -> dict[str, Benefit]:
    benefits: dict[str, Benefit] = {}
    for path in sorted(folder.glob("*.yml")):
        raw = _load_yaml(path)
        bid = str(raw.get("id"))
        _require(path, bid, raw, ("id", "name", "clause", "amount", "answer"))
        if path.stem != bid:
            raise KnowledgeError(path, bid, "file name must equal the benefit id")
        if not isinstance(raw.get("conditions"), list):
            raise KnowledgeError(path, bid, "'conditions' must be a list (empty when the plan states none)")
        conditions = []
        for i, cond in enumerate(raw["conditions"]):
            entry = f"{bid} condition {i + 1}"
            _require(path, entry, cond, ("fact", "clause", "text"))
            ops = [op for op in CONDITION_OPS if op in cond]
            if len(ops) != 1:
                raise KnowledgeError(path, entry, f"needs exactly one of {CONDITION_OPS}")
            if cond["fact"] not in facts:
                raise KnowledgeError(path, entry, f"unknown fact '{cond['fact']}'")
            fact = facts[cond["fact"]]
            value = cond[ops[0]]
            if fact.type == "enum" and value not in fact.values:
                raise KnowledgeError(path, entry, f"'{value}' is not a value of {fact.name}")
            if ops[0] == "on_or_after" and not isinstance(value, dt.date):
                raise KnowledgeError(path, entry, "on_or_after needs a date")
            if "timing" in cond and not isinstance(cond["timing"], bool):
                raise KnowledgeError(path, entry, "timing must be true or false")
            conditions.append(Condition(fact.name, ops[0], value,
                                        _check_clause(path, entry, cond["clause"], clauses), cond["text"],
                                        str(cond.get("ask") or ""), bool(cond.get("timing", False))))
        clause = _check_clause(path, bid, raw["clause"], clauses)
        cited = tuple(dict.fromkeys([clause] + [c.clause for c in conditions]))
        handling = _load_handling(path, bid, raw, cited, clauses, departments)
        benefits[bid] = Benefit(bid, raw["name"], clause,
                                _fill_handler(path, bid, raw["amount"], handling), raw["answer"],
                                tuple(conditions), _fill_handler(path, bid, raw.get("note", ""), handling),
                                handling,
                                _load_open_conditions(path, bid, raw.get("open_conditions"), cited, clauses,
                                                      handling))
    return benefits


def _load_answers(path: Path, clauses, benefits, departments) -> dict[str, Answer]:
    answers: dict[str, Answer] = {}
    raws = _load_yaml(path)["answers"]
    ids = {str(r.get("id")) for r in raws}
    for raw in raws:
        aid = str(raw.get("id"))
        _require(path, aid, raw, ("id", "title", "questions", "text", "clauses"))
        if aid in answers:
            raise KnowledgeError(path, aid, "duplicate answer id")
        cited = tuple(_check_clause(path, aid, c, clauses) for c in raw["clauses"])
        for follow in raw.get("follow_ups", []):
            if follow not in ids:
                raise KnowledgeError(path, aid, f"follow-up '{follow}' is not an answer id")
        if raw.get("benefit") and raw["benefit"] not in benefits:
            raise KnowledgeError(path, aid, f"benefit '{raw['benefit']}' does not exist")
        handling = _load_handling(path, aid, raw, cited, clauses, departments)
        answers[aid] = Answer(aid, raw["title"], tuple(raw["questions"]),
                              _fill_handler(path, aid, raw["text"].strip(), handling), cited,
                              tuple(raw.get("follow_ups", [])), tuple(raw.get("keywords", [])),
                              raw.get("benefit"), handling,
                              _fill_handler(path, aid, str(raw.get("script") or "").strip(), handling))
    for benefit in benefits.values():
        if benefit.answer not in answers:
            raise KnowledgeError(f"knowledge/benefits/{benefit.id}.yml", benefit.id,
                                 f"answer '{benefit.answer}' does not exist")
    return answers


def _load_synonyms(path: Path) -> dict[str, tuple[str, ...]]:
    data = _load_yaml(path) or {}
    synonyms: dict[str, tuple[str, ...]] = {}
    owner: dict[str, str] = {}
    for canonical, variants in (data.get("synonyms") or {}).items():
        for v in variants:
            if v in owner and owner[v] != canonical:
                raise KnowledgeError(path, canonical, f"variant '{v}' also maps to '{owner[v]}'")
            owner[v] = canonical
        synonyms[canonical] = tuple(variants)
    return synonyms


def _template_fields(path: Path, entry: str, template: str) -> None:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise KnowledgeError(path, entry, f"bad template: {exc}") from exc
    unknown = names - set(NOT_COVERED_FIELDS)
    if unknown:
        raise KnowledgeError(path, entry, f"unknown template field(s) {sorted(unknown)}; "
                                          f"use {', '.join(NOT_COVERED_FIELDS)}")


def _load_not_covered(path: Path, answers: dict[str, Answer]) -> tuple[NotCovered, ...]:
    entries: list[NotCovered] = []
    seen: set[str] = set()
    for raw in (_load_yaml(path) or {}).get("not_covered") or []:
        eid = str(raw.get("id"))
        _require(path, eid, raw, ("id", "words", "reply"))
        if eid in seen:
            raise KnowledgeError(path, eid, "duplicate id")
        seen.add(eid)
        for key in ("answer", "default_answer"):
            if raw.get(key) and raw[key] not in answers:
                raise KnowledgeError(path, eid, f"{key} '{raw[key]}' is not an answer id")
        for aid in raw.get("only_for") or []:
            if aid not in answers:
                raise KnowledgeError(path, eid, f"only_for '{aid}' is not an answer id")
        if not (raw.get("answer") or raw.get("default_answer") or raw.get("reply_no_topic")):
            raise KnowledgeError(path, eid, "needs 'reply_no_topic' (or a fixed 'answer' / 'default_answer')")
        for key in ("reply", "reply_no_topic"):
            _template_fields(path, f"{eid} {key}", str(raw.get(key) or ""))
        entries.append(NotCovered(eid, tuple(str(w) for w in raw["words"]), str(raw["reply"]).strip(),
                                  str(raw.get("reply_no_topic") or "").strip(), raw.get("answer"),
                                  raw.get("default_answer"), tuple(raw.get("only_for") or ())))
    return tuple(entries)


def _effective_date(clauses: dict[str, Clause], plan_path: Path) -> dt.date:
    data = _load_yaml(plan_path)
    date = data.get("effective_date")
    if not isinstance(date, dt.date):
        raise KnowledgeError(plan_path, "effective_date", "must be a date")
    if "effective" not in clauses or str(data.get("effective_clause")) != "effective":
        raise KnowledgeError(plan_path, "effective_clause", "must cite the 'effective' clause")
    return date


def load_knowledge(folder: Path | str) -> Knowledge:
    folder = Path(folder)
    clauses = _load_clauses(folder / "clauses.yml")
    departments, banners = _load_departments(folder / "departments.yml", clauses)
    facts = _load_facts(folder / "facts.yml")
    benefits = _load_benefits(folder / "benefits", clauses, facts, departments)
    answers = _load_answers(folder / "answers.yml", clauses, benefits, departments)
    synonyms = _load_synonyms(folder / "synonyms.yml")
    effective = _effective_date(clauses, folder / "plan.yml")
    not_covered = _load_not_covered(folder / "not_covered.yml", answers)
    return Knowledge(clauses, departments, banners, answers, benefits, facts, synonyms, effective, not_covered)


@lru_cache(maxsize=4)
def get_knowledge(folder: str | None = None) -> Knowledge:
    from .config import load_settings

    return load_knowledge(folder or load_settings().knowledge_dir)

