"""NLU on the held-out files, never trained on: fails below the bar.

The bar: intent micro-F1 0.95 and entity F1 0.90 (fail below), and the right
answer for 97 in 100 topic questions (the goal; the test fails below 0.95).
Measured with this data (bench/nlu_eval.py): 0.957, 1.000 and 0.966.
"""
import asyncio
import json
import sys

import pytest

from bot.config import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import nlu_eval  # noqa: E402

MODEL = ROOT / "models" / "ordos.tar.gz"
GOAL = {"intent_micro_f1": 0.95, "entity_f1": 0.90, "right_answer_rate": 0.97}
FLOOR = {"intent_micro_f1": 0.95, "entity_f1": 0.90, "right_answer_rate": 0.95}


@pytest.fixture(scope="module")
def figures():
    if not MODEL.exists():
        pytest.fail(f"no trained model at {MODEL}: run `bash scripts/train.sh`")
    examples = nlu_eval.load_examples(ROOT / "tests" / "nlu")
    result = nlu_eval.score(examples, asyncio.run(nlu_eval.predict(MODEL, examples)))
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    (ROOT / "test-artifacts" / "nlu_heldout.json").write_text(json.dumps(result, ensure_ascii=False, indent=1),
                                                              encoding="utf-8")
    return result


def test_heldout_is_big_enough(figures):
    assert figures["examples"] >= 500 and figures["entity_pairs"] >= 50


def test_intent_micro_f1(figures):
    assert figures["intent_micro_f1"] >= FLOOR["intent_micro_f1"], figures["errors"][:20]


def test_entity_f1(figures):
    assert figures["entity_f1"] >= FLOOR["entity_f1"]


def test_topic_questions_get_the_right_answer(figures):
    assert figures["right_answer_rate"] >= FLOOR["right_answer_rate"], \
        [e for e in figures["errors"] if e[1].startswith("ask_")][:20]
