from __future__ import annotations

import pytest

from bot.config import ROOT, load_settings
from bot.knowledge import load_knowledge

# The official plan text, kept in the repository (knowledge/source/ says where it comes from).
PLAN_TEXT = ROOT / "knowledge" / "source" / "ordos-fertility-plan-2023.txt"


@pytest.fixture(scope="session")
def kb():
    return load_knowledge(ROOT / "knowledge")


@pytest.fixture(scope="session")
def settings():
    return load_settings()


@pytest.fixture(scope="session")
def plan_text() -> str:
    assert PLAN_TEXT.exists(), f"the plan text is missing at {PLAN_TEXT}"
    return PLAN_TEXT.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def search_index(kb):
    from bot.search import SearchIndex

    return SearchIndex(kb)
