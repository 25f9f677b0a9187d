"""Where a Rasa serving process's memory goes.

Loads the trained model the way `rasa run` does (rasa.core.agent.load_agent)
in this process and prints the resident memory after each stage: Python and
Rasa's imports, TensorFlow, each graph component as it loads (the growth
while that component loaded), the first parsed message, and after a batch of
held-out questions. Resident memory is read from /proc: RSS (what `ps` shows),
and USS (private pages only: what another replica of the same image would not
share through the page cache, e.g. shared libraries).

    .venv/bin/python bench/serving_memory.py [--model models/ordos.tar.gz] [--messages 300] [--json out.json]

Run it with the same environment as serving (scripts/env.sh is not needed: only
the model is loaded, no channel or tracker store).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def memory_mib(pid: str = "self") -> dict:
    """RSS and USS (private clean + dirty) of a process, in MiB."""
    out = {"rss": 0.0, "uss": 0.0}
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                kb = float(value.split()[0]) if value.split() else 0.0
                if key == "Rss":
                    out["rss"] = kb / 1024
                elif key in ("Private_Clean", "Private_Dirty"):
                    out["uss"] += kb / 1024
    except OSError:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    out["rss"] = out["uss"] = float(line.split()[1]) / 1024
    return out


class Stages:
    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.last = memory_mib()
        self.add("python started")

    def add(self, stage: str) -> None:
        now = memory_mib()
        self.rows.append({"stage": stage, "rss_mib": round(now["rss"], 1), "uss_mib": round(now["uss"], 1),
                          "rss_growth_mib": round(now["rss"] - self.last["rss"], 1)})
        self.last = now
        print(f"{now['rss']:8.0f} MiB RSS {now['uss']:8.0f} MiB USS  {self.rows[-1]['rss_growth_mib']:+7.0f}  {stage}",
              flush=True)


def questions(limit: int) -> list[str]:
    """Held-out messages (tests/nlu), annotations removed, as the NLU evaluation reads them."""
    from nlu_eval import load_examples

    return [ex["text"] for ex in load_examples(ROOT / "tests" / "nlu", "*.yml")][:limit]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "ordos.tar.gz"))
    ap.add_argument("--messages", type=int, default=300)
    ap.add_argument("--json")
    args = ap.parse_args()

    stages = Stages()
    import rasa.core.agent  # noqa: F401  (Rasa's own imports, as `rasa run` has them)
    import rasa.engine.graph as graph
    stages.add("import rasa.core.agent")
    import tensorflow  # noqa: F401
    stages.add("import tensorflow")

    # Each graph node loads its component once: note the growth per component.
    original = graph.GraphNode._load_component

    def load_component(node, **kwargs):
        original(node, **kwargs)
        stages.add(f"loaded {node._node_name} ({node._component_class.__name__})")

    graph.GraphNode._load_component = load_component
    t0 = time.perf_counter()
    agent = asyncio.run(rasa.core.agent.load_agent(model_path=args.model))
    load_s = time.perf_counter() - t0
    graph.GraphNode._load_component = original
    stages.add(f"model loaded ({load_s:.1f} s)")

    texts = questions(args.messages)

    async def parse_all():
        await agent.parse_message(texts[0])
        stages.add("first message parsed")
        for text in texts[1:]:
            await agent.parse_message(text)
        stages.add(f"{len(texts)} messages parsed")

    asyncio.run(parse_all())
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"model": args.model, "stages": stages.rows,
                                               "env": {k: os.environ.get(k) for k in ("MALLOC_ARENA_MAX",
                                                                                      "TF_NUM_INTRAOP_THREADS")}},
                                              ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
