"""Search benchmark: latency per query and top-k accuracy, in-process.

Queries are the held-out NLU examples (tests/nlu/heldout_*.yml) of every topic
intent `ask_<answer_id>`: realistic phrasings with typos, traditional
characters and dialect words, never used to tune the index.

    .venv/bin/python bench/search_bench.py [--repeat 5]
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.knowledge import load_knowledge  # noqa: E402
from bot.search import SearchIndex  # noqa: E402

ENTITY = re.compile(r"\[([^\]]+)\](?:\{[^}]*\}|\([^)]*\))")


def heldout_queries(kb) -> list[tuple[str, str]]:
    pairs = []
    for path in sorted((ROOT / "tests" / "nlu").glob("heldout_*.yml")):
        for block in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu", []):
            intent = block.get("intent", "")
            answer_id = intent.removeprefix("ask_")
            if not intent.startswith("ask_") or answer_id not in kb.answers:
                continue
            for line in block["examples"].splitlines():
                text = ENTITY.sub(r"\1", line.strip().removeprefix("- ").strip())
                if text:
                    pairs.append((text, answer_id))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    kb = load_knowledge(ROOT / "knowledge")
    t0 = time.perf_counter()
    index = SearchIndex(kb)
    build_s = time.perf_counter() - t0
    queries = heldout_queries(kb)
    for q, _ in queries:  # warm caches (jieba, pinyin) once
        index.search(q)
    times, top1, top3 = [], 0, 0
    for _ in range(args.repeat):
        for q, expected in queries:
            t = time.perf_counter()
            found = index.search(q)
            times.append((time.perf_counter() - t) * 1000)
    for q, expected in queries:
        ids = [h.id for h in index.search(q)["answers"]]
        top1 += ids[:1] == [expected]
        top3 += expected in ids[:3]
    times.sort()
    q = statistics.quantiles(times, n=100)
    n = len(queries)
    print(f"queries: {n} (x{args.repeat} runs)   index build: {build_s * 1000:.0f} ms")
    print(f"latency per query: p50 {q[49]:.2f} ms   p95 {q[94]:.2f} ms   max {times[-1]:.2f} ms")
    print(f"top-1 answer accuracy: {top1 / n:.3f}   top-3: {top3 / n:.3f}")


if __name__ == "__main__":
    main()
