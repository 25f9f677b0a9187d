"""Accepted review items as Rasa NLU training data, checked before they are offered.

An example is held back (a conflict) when its text is already in data/nlu/
(compared after normalisation), when the same text is assigned to two intents
in this export, when it still holds masked personal data, or when it is closer
to another intent's examples than to its own: the character n-gram (1-3)
tf-idf cosine with each intent's examples, averaged over the nearest few, is
highest for another intent. What passes is written as one NLU file for
data/nlu/, and `validate` runs `rasa data validate --fail-on-warnings` on a
copy of the project's data with the file added.
"""
from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..config import ROOT
from ..text import normalize
from .labels import LOCAL_TZ

EXPORT_FILE = "review_export.yml"
NEAREST = 3                    # examples of an intent averaged for its similarity
VALIDATE_TIMEOUT_S = 300
_ENTITY = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")
_NOISE = re.compile(r"[\s\W_]+", re.UNICODE)


def plain_example(text: str) -> str:
    """A training example as the model reads it: entity annotations reduced to their text."""
    return _ENTITY.sub(r"\1", text).strip()


def canonical(text: str) -> str:
    return _NOISE.sub("", normalize(text).lower())


def training_examples(data_dir: Path = ROOT / "data") -> dict[str, list[str]]:
    """{intent: [example text]} from every NLU file under data_dir."""
    out: dict[str, list[str]] = {}
    for path in sorted((data_dir / "nlu").glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for entry in data.get("nlu") or []:
            if not isinstance(entry, dict) or "intent" not in entry:
                continue
            for line in str(entry.get("examples") or "").splitlines():
                line = line.strip()
                if line.startswith("- "):
                    out.setdefault(entry["intent"], []).append(plain_example(line[2:]))
    return out


class ExampleChecker:
    """Conflict checks of new examples against the project's training data."""

    def __init__(self, examples: dict[str, list[str]]):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.intents = sorted(examples)
        self.owner: dict[str, set[str]] = {}
        texts, labels = [], []
        for k, intent in enumerate(self.intents):
            for text in examples[intent]:
                self.owner.setdefault(canonical(text), set()).add(intent)
                texts.append(text)
                labels.append(k)
        self.labels = np.array(labels)
        self.vectoriser = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True,
                                          preprocessor=canonical, dtype=np.float32)
        self.matrix = self.vectoriser.fit_transform(texts or [""]).T.tocsr()

    def similarities(self, text: str) -> dict[str, float]:
        """Each intent's similarity to `text`: the mean cosine of its NEAREST closest examples."""
        sims = np.asarray((self.vectoriser.transform([text]) @ self.matrix).todense()).ravel()
        out = {}
        for k, intent in enumerate(self.intents):
            own = np.sort(sims[self.labels == k])[::-1][:NEAREST]
            out[intent] = float(own.mean()) if own.size else 0.0
        return out

    def check(self, text: str, intent: str) -> list[str]:
        """Why this example must not be exported as `intent` (empty when it may)."""
        problems = []
        if "*" in text:
            problems.append("含有已遮盖的个人信息，请改写后再导出")
        owners = self.owner.get(canonical(text), set())
        if intent in owners:
            problems.append("训练数据中已有这句话（同一意图）")
        elif owners:
            problems.append("训练数据中这句话已归入：" + "、".join(sorted(owners)))
        if intent in self.intents:
            sims = self.similarities(text)
            best = max(sims, key=sims.get)
            if best != intent and sims[best] > sims[intent]:
                problems.append(f"更接近「{best}」的训练样例（相似度 {sims[best]:.2f}，本意图 {sims[intent]:.2f}）")
        return problems


_checkers: dict[tuple, ExampleChecker] = {}
_checker_lock = threading.Lock()


def checker_for(data_dir: Path = ROOT / "data") -> ExampleChecker:
    """The checker for the training data as it is now (rebuilt when a file under data/nlu changes)."""
    stamp = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted((data_dir / "nlu").glob("*.yml")))
    key = (str(data_dir), stamp)
    with _checker_lock:
        if key not in _checkers:
            _checkers.clear()
            _checkers[key] = ExampleChecker(training_examples(data_dir))
        return _checkers[key]


@dataclass
class Candidate:
    item_ids: list[int]
    text: str
    intent: str
    problems: list[str] = field(default_factory=list)


def candidates(items: list[dict[str, Any]], checker: ExampleChecker) -> list[Candidate]:
    """Accepted items as examples (one per text and intent), each with its conflicts."""
    by_key: dict[tuple[str, str], Candidate] = {}
    intents_of: dict[str, set[str]] = {}
    for item in items:
        text = _one_line(item["question"])
        if not text or not item.get("assigned_intent"):
            continue
        key = (canonical(text), item["assigned_intent"])
        if key in by_key:
            by_key[key].item_ids.append(item["id"])
            continue
        by_key[key] = Candidate([item["id"]], text, item["assigned_intent"])
        intents_of.setdefault(key[0], set()).add(item["assigned_intent"])
    out = []
    for (canon, intent), cand in by_key.items():
        cand.problems = checker.check(cand.text, intent)
        if len(intents_of[canon]) > 1:
            cand.problems.append("同一句话在本次导出中归入了多个意图：" + "、".join(sorted(intents_of[canon])))
        out.append(cand)
    out.sort(key=lambda c: (c.intent, c.text))
    return out


def _one_line(text: str) -> str:
    # Brackets followed by ( or { would read as an entity annotation; full-width ones never do.
    return " ".join(str(text or "").split()).replace("[", "［").replace("]", "］").strip()


def to_yaml(accepted: list[Candidate], now: dt.datetime | None = None) -> str:
    """One NLU file for data/nlu/: the examples that passed, by intent."""
    now = (now or dt.datetime.now(LOCAL_TZ)).astimezone(LOCAL_TZ)
    lines = [f"# Generated by the review workspace export (/review/export) on {now:%Y-%m-%d %H:%M} Beijing time.",
             "# Reviewed examples from citizens' questions; each passed the conflict checks against data/nlu/.",
             'version: "3.1"', "", "nlu:"]
    by_intent: dict[str, list[str]] = {}
    for c in accepted:
        if not c.problems:
            by_intent.setdefault(c.intent, []).append(c.text)
    if not by_intent:
        lines[-1] = "nlu: []"
    for intent in sorted(by_intent):
        lines += [f"- intent: {intent}", "  examples: |"]
        lines += [f"    - {text}" for text in by_intent[intent]]
    return "\n".join(lines) + "\n"


def validate(nlu_yaml: str, root: Path = ROOT, rasa: Path | None = None,
             timeout_s: float = VALIDATE_TIMEOUT_S) -> dict[str, Any]:
    """`rasa data validate --fail-on-warnings` on a copy of data/ with the export added.

    Runs the rasa command of the project's virtual environment in a child
    process (bot/ never imports Rasa). {"ok": bool, "output": last lines}."""
    rasa = rasa or root / ".venv" / "bin" / "rasa"
    if not rasa.exists():
        return {"ok": False, "output": "找不到 rasa 命令，无法校验。", "ran": False}
    with tempfile.TemporaryDirectory(prefix="review-export-") as tmp:
        data = Path(tmp) / "data"
        shutil.copytree(root / "data", data)
        (data / "nlu" / EXPORT_FILE).write_text(nlu_yaml, encoding="utf-8")
        cmd = [str(rasa), "data", "validate", "--fail-on-warnings", "--config", str(root / "config.yml"),
               "--domain", str(root / "domain.yml"), "--data", str(data), "--quiet"]
        try:
            done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=timeout_s,
                                  env=_env())
        except subprocess.TimeoutExpired:
            return {"ok": False, "output": f"校验超过 {int(timeout_s)} 秒未完成。", "ran": True}
    tail = "\n".join((done.stdout + "\n" + done.stderr).strip().splitlines()[-30:])
    return {"ok": done.returncode == 0, "output": tail, "ran": True}


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "RASA_TELEMETRY_ENABLED": "false"}
