"""Re-check questions against the current model: Rasa's POST /model/parse, with the token.

A group whose questions the model now places confidently (not the fallback,
not out of scope, at or above the FallbackClassifier threshold of config.yml)
is marked 已覆盖, so nobody works on it twice. Each result is stored on the
items (recheck_intent, recheck_confidence, rechecked_at), so it survives
regrouping. When Rasa is down the answer says so and nothing fails.
"""
from __future__ import annotations

import asyncio
import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import aiohttp
import sqlalchemy as sa
import yaml

from ..config import ROOT
from ..review import review_items
from ..text import mask_personal_data

PARSE_TIMEOUT_S = 5.0
MAX_TEXTS = 40            # distinct questions re-parsed per group (the most asked first)
CONCURRENCY = 4
COVERED_SHARE = 0.8       # 已覆盖 needs this share of a group's items re-checked, all of them answered
NOT_ANSWERED = ("nlu_fallback", "out_of_scope")
UNAVAILABLE = "智能助手（Rasa）未启动或未响应，暂时无法复核；其他功能不受影响。"


@lru_cache(maxsize=2)
def fallback_threshold(config_path: str = str(ROOT / "config.yml")) -> float:
    """The FallbackClassifier threshold of the NLU pipeline: below it the assistant does not answer."""
    try:
        data = yaml.safe_load(Path(config_path).read_text(encoding="utf-8")) or {}
        for component in data.get("pipeline", []):
            if component.get("name") == "FallbackClassifier":
                return float(component.get("threshold", 0.3))
    except (OSError, ValueError, TypeError, AttributeError):
        pass
    return 0.3   # Rasa's own default


def answered(intent: str | None, confidence: float | None) -> bool:
    return bool(intent) and intent not in NOT_ANSWERED and (confidence or 0.0) >= fallback_threshold()


async def parse_texts(http: aiohttp.ClientSession | None, rasa_url: str, token: str,
                      texts: Iterable[str]) -> dict[str, tuple[str, float]] | None:
    """{text: (intent, confidence)} from the current model, or None when Rasa cannot be reached."""
    texts = list(dict.fromkeys(t for t in texts if t))[:MAX_TEXTS]
    if http is None:
        return None
    params = {"token": token} if token else {}
    limit = asyncio.Semaphore(CONCURRENCY)
    down = False

    async def one(text: str) -> tuple[str, tuple[str, float] | None]:
        nonlocal down
        if down:
            return text, None
        async with limit:
            try:
                async with http.post(f"{rasa_url}/model/parse", params=params, json={"text": mask_personal_data(text)},
                                     timeout=aiohttp.ClientTimeout(total=PARSE_TIMEOUT_S)) as resp:
                    data = await resp.json(content_type=None) if resp.status == 200 else None
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, OSError):
                data = None
        intent = data.get("intent") if isinstance(data, dict) else None
        if not isinstance(intent, dict) or not intent.get("name"):
            down = True
            return text, None
        return text, (str(intent["name"])[:80], float(intent.get("confidence") or 0.0))

    results = await asyncio.gather(*(one(t) for t in texts))
    parsed = {t: r for t, r in results if r is not None}
    return None if not parsed and texts else parsed


def store_results(engine: sa.engine.Engine, items: list[dict[str, Any]], parsed: dict[str, tuple[str, float]]) -> int:
    """Write each item's re-check result (items whose text was parsed); returns how many were updated."""
    now = dt.datetime.utcnow().replace(microsecond=0)
    updated = 0
    with engine.begin() as conn:
        for item in items:
            result = parsed.get(item["question"])
            if result is None:
                continue
            conn.execute(review_items.update().where(review_items.c.id == item["id"]).values(
                recheck_intent=result[0], recheck_confidence=result[1], rechecked_at=now))
            updated += 1
    return updated


def coverage(members: list[dict[str, Any]]) -> dict[str, Any]:
    """已覆盖 / 部分覆盖 / 未覆盖 / 未复核 for a group, from its items' stored re-check results."""
    checked = [m for m in members if m.get("rechecked_at") is not None]
    if not checked:
        return {"state": "unchecked", "label": "未复核", "checked": 0, "answered": 0}
    ok = [m for m in checked if answered(m.get("recheck_intent"), m.get("recheck_confidence"))]
    # Questions asked after the re-check are not checked yet: most of the group must be.
    if len(ok) == len(checked) and len(checked) >= COVERED_SHARE * len(members):
        state, label = "covered", "已覆盖"
    elif ok:
        state, label = "partial", f"部分覆盖（{len(ok)}/{len(members)}）"
    else:
        state, label = "uncovered", "未覆盖"
    intents: dict[str, int] = {}
    for m in ok:
        intents[m["recheck_intent"]] = intents.get(m["recheck_intent"], 0) + 1
    top = max(intents, key=intents.get) if intents else None
    return {"state": state, "label": label, "checked": len(checked), "answered": len(ok), "intent": top,
            "at": max(m["rechecked_at"] for m in checked)}
