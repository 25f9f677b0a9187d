"""The plan is covered: every paragraph of it has a clause entry, verbatim,
with every lead and responsible department the plan lists.

This walks the plan text kept in the repository (knowledge/source/) with its
own simple reading, independent of the script that generated
knowledge/clauses.yml, and checks that copy against its metadata.
"""
import datetime as dt
import hashlib
import re

import pytest
import yaml

from bot.config import ROOT

CN = "一二三四五六七八九十"


def squash(s: str) -> str:
    return re.sub(r"\s+", "", s)


def plan_paragraphs(plan_text):
    """(label, paragraph) for every clause-bearing paragraph of the plan."""
    out, part, section = [], None, None
    for line in (ln.strip().replace("\u3000", "") for ln in plan_text.splitlines()):
        if not line:
            continue
        if m := re.match(rf"^([{CN}])、", line):
            part, section = m.group(1), None
        elif m := re.match(rf"^（([{CN}])）", line):
            section = m.group(1)
            if part == "三":
                out.append((f"三（{section}）", line))
        elif part == "一" and section and not line.startswith("（"):
            out.append((f"一（{section}）", line))
        elif part == "二" and section and (m := re.match(r"^(\d+)\.", line)):
            out.append((f"二（{section}）{m.group(1)}", line))
        elif line.startswith("本方案自印发之日起实施"):
            out.append(("施行日期", line))
        elif re.match(r"^鄂尔多斯市人民政府办公室\s+\d{4}年.*印发$", line):
            out.append(("印发日期", line))
        elif line.startswith("为深入贯彻落实"):
            out.append(("序言", line))
    return out


def test_plan_has_the_expected_shape(plan_text):
    labels = [label for label, _ in plan_paragraphs(plan_text)]
    # 序言, 一（一）（二）, 19 tasks, 三（一）…（五）, 施行日期, 印发日期
    assert len(labels) == 29
    assert "二（五）3" in labels and "三（五）" in labels


def test_every_plan_paragraph_has_a_verbatim_clause(kb, plan_text):
    by_label = {c.label: c for c in kb.clauses.values()}
    for label, paragraph in plan_paragraphs(plan_text):
        assert label in by_label, f"plan paragraph {label} has no clause entry"
        assert squash(by_label[label].text) == squash(paragraph), f"clause {label} is not the plan's text"


def test_every_task_lists_all_its_departments(kb, plan_text):
    by_label = {c.label: c for c in kb.clauses.values()}
    tasks = [(label, p) for label, p in plan_paragraphs(plan_text) if label.startswith("二")]
    assert len(tasks) == 19
    for label, paragraph in tasks:
        m = re.search(r"（([^（）]+)牵头，([^（）]+)按职责分工负责）\s*$", paragraph)
        assert m, f"{label}: no department line in the plan"
        lead = [d for d in m.group(1).split("、")]
        responsible = [d for d in m.group(2).split("、")]
        clause = by_label[label]
        assert list(clause.lead) == lead, label
        assert list(clause.responsible) == responsible, label


@pytest.mark.parametrize("clause_id", ["0", "1.1", "1.2", "3.1", "3.5", "effective", "issued"])
def test_non_task_clauses_exist(kb, clause_id):
    assert clause_id in kb.clauses


SOURCE = ROOT / "knowledge" / "source"


@pytest.fixture(scope="module")
def source_meta():
    return yaml.safe_load((SOURCE / "ordos-fertility-plan-2023.yml").read_text(encoding="utf-8"))


def test_the_plan_text_is_the_copy_kept_in_the_repository(plan_text, source_meta):
    text_file = SOURCE / source_meta["file"]
    assert plan_text == text_file.read_text(encoding="utf-8")
    assert hashlib.sha256(text_file.read_bytes()).hexdigest() == source_meta["sha256"], (
        "the official plan text was changed: it must stay as received")


def test_source_metadata_agrees_with_the_text_and_plan_yml(plan_text, source_meta):
    plan = yaml.safe_load((ROOT / "knowledge" / "plan.yml").read_text(encoding="utf-8"))
    flat = squash(plan_text)
    assert source_meta["title"] == plan["title"] and source_meta["title"] in flat
    assert source_meta["issuer"] == plan["issuer"]
    issued = source_meta["issued_date"]
    assert issued == plan["issued_date"] and isinstance(issued, dt.date)
    assert f"{source_meta['issuer']}{issued.year}年{issued.month}月{issued.day}日印发" in flat
    for said in (source_meta["notice"], source_meta["effective"], source_meta["published"]["to"],
                 source_meta["published"]["copies_to"]):
        assert squash(said) in flat, said
