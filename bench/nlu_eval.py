"""Evaluate a trained model's NLU on the held-out examples (tests/nlu/).

Prints intent micro-F1 (= accuracy for single-label intents), entity micro-F1
over (entity, value) pairs, and "right answer" accuracy: the share of topic
questions whose predicted intent renders the expected knowledge answer.

    .venv/bin/python bench/nlu_eval.py [--model models/ordos.tar.gz] [--json out.json]
    .venv/bin/python bench/nlu_eval.py --heldout DIR   # another folder of held-out files
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import sys
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Intents whose held-out examples annotate every entity (the ones the
# eligibility form reads). Topic questions (ask_*) were annotated sparsely by
# design, so their gold entities are incomplete and not scored.
ENTITY_INTENTS = {"check_eligibility", "inform", "ask_department"}

ANNOTATION = re.compile(r"\[([^\]]+)\](\{[^}]*\}|\(([^)]*)\))")


def load_examples(folder: Path, pattern: str = "heldout_*.yml") -> list[dict]:
    """Held-out examples with their intent and expected (entity, value) pairs."""
    synonyms: dict[str, str] = {}
    train = ROOT / "data" / "nlu" / "synonyms.yml"
    for block in (yaml.safe_load(train.read_text(encoding="utf-8")) or {}).get("nlu", []):
        if "synonym" in block:
            for line in block["examples"].splitlines():
                if line.strip().startswith("- "):
                    synonyms[line.strip()[2:].strip()] = str(block["synonym"])
    out = []
    for path in sorted(folder.glob(pattern)):
        for block in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu", []):
            if "intent" not in block:
                continue
            for line in block["examples"].splitlines():
                line = line.strip()
                if not line.startswith("- "):
                    continue
                body, entities = line[2:].strip(), []
                for m in ANNOTATION.finditer(body):
                    if m.group(2).startswith("{"):
                        spec = json.loads(m.group(2))
                        entities.append((spec["entity"], str(spec.get("value", synonyms.get(m.group(1), m.group(1))))))
                    else:
                        entities.append((m.group(3), synonyms.get(m.group(1), m.group(1))))
                text = ANNOTATION.sub(lambda m: m.group(1), body)
                out.append({"text": text, "intent": block["intent"], "entities": entities})
    return out


async def predict(model: Path, examples: list[dict]) -> list[dict]:
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))
    results = []
    for ex in examples:
        parsed = await agent.parse_message(ex["text"])
        results.append({"intent": (parsed.get("intent") or {}).get("name"),
                        "confidence": (parsed.get("intent") or {}).get("confidence"),
                        "entities": [(e["entity"], str(e.get("value"))) for e in parsed.get("entities", [])]})
    return results


def score(examples: list[dict], predictions: list[dict]) -> dict:
    correct = sum(p["intent"] == e["intent"] for e, p in zip(examples, predictions))
    tp = fp = fn = 0
    entity_errors = []
    for e, p in zip(examples, predictions):
        if e["intent"] not in ENTITY_INTENTS:
            continue
        gold, pred = Counter(e["entities"]), Counter(p["entities"])
        if gold != pred:
            entity_errors.append({"text": e["text"], "missed": sorted((gold - pred).elements()),
                                  "extra": sorted((pred - gold).elements())})
        # The date/age entities carry free text; their span text is the value.
        tp += sum((gold & pred).values())
        fp += sum((pred - gold).values())
        fn += sum((gold - pred).values())
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    topic = [(e, p) for e, p in zip(examples, predictions) if e["intent"].startswith("ask_") and e["intent"] != "ask_department"]
    errors = [(e["text"], e["intent"], p["intent"]) for e, p in zip(examples, predictions) if p["intent"] != e["intent"]]
    return {"examples": len(examples), "intent_micro_f1": correct / len(examples),
            "entity_precision": precision, "entity_recall": recall,
            "entity_f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
            "entity_pairs": tp + fn,
            "topic_questions": len(topic),
            "right_answer_rate": sum(p["intent"] == e["intent"] for e, p in topic) / max(1, len(topic)),
            "errors": errors, "entity_errors": entity_errors}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(ROOT / "models" / "ordos.tar.gz"))
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--heldout", default=str(ROOT / "tests" / "nlu"),
                        help="folder of held-out NLU files (every .yml in it)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    import structlog  # Rasa logs each parse through structlog, which prints debug by default

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    examples = load_examples(Path(args.heldout), "*.yml")
    figures = score(examples, asyncio.run(predict(Path(args.model), examples)))
    print(f"held-out examples: {figures['examples']}")
    print(f"intent micro-F1: {figures['intent_micro_f1']:.3f}")
    print(f"entity F1 ({', '.join(sorted(ENTITY_INTENTS))}): {figures['entity_f1']:.3f} "
          f"(P {figures['entity_precision']:.3f}, R {figures['entity_recall']:.3f}, {figures['entity_pairs']} gold pairs)")
    print(f"topic questions answered with the right answer: {figures['right_answer_rate']:.3f} "
          f"of {figures['topic_questions']}")
    for text, gold, pred in figures["errors"][:40]:
        print(f"  {gold:>34} -> {str(pred):<34} {text}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
