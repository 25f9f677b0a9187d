"""The assistant vs plain BM25 lookup over the same knowledge, side by side.

Both answer the same held-out topic questions (tests/nlu and tests/nlu_fresh:
every `ask_<answer>` example, written apart from the training data) from the
same knowledge/ answers:

- plain BM25: rank_bm25's BM25Okapi over each answer's title, sample questions
  and text, segmented by jieba's stock dictionary; the top answer is the reply.
  What a site search box without any of our work would give.
- the desk's search (bot.search.SearchIndex): BM25 plus the policy lexicon,
  synonyms, pinyin and homophones; its top answer.
- the assistant: the trained Rasa model's NLU (rasa.core.agent, in process, as
  `rasa run` parses) and the answer its intent names.

Prints, for each, the right-answer rate and the latency per question (p50 and
p95, in process, after a warm-up), and the ratios.

    .venv/bin/python bench/assistant_vs_bm25.py [--model models/ordos.tar.gz] [--json out.json]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from nlu_eval import load_examples  # noqa: E402


def topic_questions(kb) -> list[tuple[str, str]]:
    out = []
    for folder in ("nlu", "nlu_fresh"):
        for ex in load_examples(ROOT / "tests" / folder, "*.yml"):
            answer_id = ex["intent"].removeprefix("ask_")
            if ex["intent"].startswith("ask_") and answer_id in kb.answers:
                out.append((ex["text"], answer_id))
    return out


def timed(fn, questions) -> tuple[list, list[float]]:
    fn(questions[0][0])  # warm-up
    answers, ms = [], []
    for text, _ in questions:
        t0 = time.perf_counter()
        answers.append(fn(text))
        ms.append((time.perf_counter() - t0) * 1000)
    return answers, ms


def figures(name: str, questions, answers, ms) -> dict:
    right = sum(a == expected for a, (_, expected) in zip(answers, questions))
    q = statistics.quantiles(ms, n=100)
    row = {"name": name, "right_answer_rate": right / len(questions), "p50_ms": q[49], "p95_ms": q[94]}
    print(f"{name:28s} right answer {row['right_answer_rate']:.3f}   p50 {row['p50_ms']:7.2f} ms   "
          f"p95 {row['p95_ms']:7.2f} ms")
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "ordos.tar.gz"))
    ap.add_argument("--json")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    import jieba
    import structlog
    from rank_bm25 import BM25Okapi

    from bot.knowledge import load_knowledge
    from bot.search import SearchIndex

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    jieba.setLogLevel(logging.WARNING)
    kb = load_knowledge(ROOT / "knowledge")
    questions = topic_questions(kb)
    print(f"held-out topic questions: {len(questions)} over {len(kb.answers)} answers")

    ids = list(kb.answers)
    plain_tokenizer = jieba.Tokenizer()  # stock dictionary, nothing of ours

    def tokens(text: str) -> list[str]:
        return [w for w in plain_tokenizer.lcut(text) if w.strip()]

    docs = [tokens(" ".join([a.title, *a.questions, a.text])) for a in kb.answers.values()]
    bm25 = BM25Okapi(docs)

    def plain(text: str) -> str:
        scores = bm25.get_scores(tokens(text))
        return ids[max(range(len(ids)), key=scores.__getitem__)]

    index = SearchIndex(kb)

    def desk(text: str) -> str | None:
        hits = index.search(text, limit=1)["answers"]
        return hits[0].id if hits else None

    from rasa.core.agent import Agent

    agent = Agent.load(args.model)
    loop = asyncio.new_event_loop()

    def assistant(text: str) -> str | None:
        parsed = loop.run_until_complete(agent.parse_message(text))
        intent = (parsed.get("intent") or {}).get("name") or ""
        return intent.removeprefix("ask_") if intent.startswith("ask_") else None

    rows = [figures("plain BM25 (rank_bm25+jieba)", questions, *timed(plain, questions)),
            figures("desk search (bot.search)", questions, *timed(desk, questions)),
            figures("assistant (Rasa NLU)", questions, *timed(assistant, questions))]
    base = rows[0]
    for row in rows[1:]:
        print(f"{row['name']} / plain BM25: right-answer rate x{row['right_answer_rate'] / base['right_answer_rate']:.2f}, "
              f"p95 latency x{row['p95_ms'] / base['p95_ms']:.1f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"questions": len(questions), "rows": rows}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
