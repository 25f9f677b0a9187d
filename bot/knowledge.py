"""Load knowledge/*.yml into one validated, read-only Knowledge object.

Any broken reference raises KnowledgeError naming the file and the entry, so
a typo in the data fails at start-up (and in the tests), never in a reply.
"""
from __future__ import annotations

import datetime as dt
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
class Condition:
    fact: str
    op: str
    value: Any
    clause: str
    text: str


@dataclass(frozen=True)
class Benefit:
    id: str
    name: str
    clause: str
    amount: str
    answer: str
    conditions: tuple[Condition, ...]
    note: str = ""

    @property
    def facts(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.fact for c in self.conditions))


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
class Knowledge:
    clauses: dict[str, Clause]
    departments: dict[str, Department]   # by full name
    banners: dict[str, tuple[str, ...]]  # full name -> aliases
    answers: dict[str, Answer]
    benefits: dict[str, Benefit]
    facts: dict[str, Fact]               # input and derived facts
    synonyms: dict[str, tuple[str, ...]]  # canonical term -> variants
    effective_date: dt.date

    def department_by_alias(self, text: str) -> Department | None:
        for dept in self.departments.values():
            if text == dept.name or text in dept.aliases:
                return dept
        return None

    def lead_of(self, clause_ids: tuple[str, ...] | list[str]) -> tuple[str, ...]:
        for cid in clause_ids:
            if self.clauses[cid].lead:
                return self.clauses[cid].lead
        return ()

    def responsible_of(self, clause_ids: tuple[str, ...] | list[str]) -> tuple[str, ...]:
        for cid in clause_ids:
            if self.clauses[cid].lead:
                return self.clauses[cid].responsible
        return ()

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


def _load_benefits(folder: Path, clauses, facts) -> dict[str, Benefit]:
    benefits: dict[str, Benefit] = {}
    for path in sorted(folder.glob("*.yml")):
        raw = _load_yaml(path)
        bid = str(raw.get("id"))
        _require(path, bid, raw, ("id", "name", "clause", "amount", "answer", "conditions"))
        if path.stem != bid:
            raise KnowledgeError(path, bid, "file name must equal the benefit id")
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
            conditions.append(Condition(fact.name, ops[0], value,
                                        _check_clause(path, entry, cond["clause"], clauses), cond["text"]))
        benefits[bid] = Benefit(bid, raw["name"], _check_clause(path, bid, raw["clause"], clauses),
                                raw["amount"], raw["answer"], tuple(conditions), raw.get("note", ""))
    return benefits


def _load_answers(path: Path, clauses, benefits) -> dict[str, Answer]:
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
        answers[aid] = Answer(aid, raw["title"], tuple(raw["questions"]), raw["text"].strip(), cited,
                              tuple(raw.get("follow_ups", [])), tuple(raw.get("keywords", [])),
                              raw.get("benefit"))
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
    benefits = _load_benefits(folder / "benefits", clauses, facts)
    answers = _load_answers(folder / "answers.yml", clauses, benefits)
    synonyms = _load_synonyms(folder / "synonyms.yml")
    effective = _effective_date(clauses, folder / "plan.yml")
    return Knowledge(clauses, departments, banners, answers, benefits, facts, synonyms, effective)


@lru_cache(maxsize=4)
def get_knowledge(folder: str | None = None) -> Knowledge:
    from .config import load_settings

    return load_knowledge(folder or load_settings().knowledge_dir)

