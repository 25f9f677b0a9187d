"""Latency and capacity of a running Rasa REST channel.

    .venv/bin/python bench/rest_bench.py --url http://127.0.0.1:5005 [--label ours]

1. sequential: one message at a time, fresh senders, realistic questions;
2. a 50-message conversation: latency at message 1-10 vs 41-50 (flatness). It
   repeats one realistic 10-message block five times (questions, who handles,
   an eligibility check with a side question and a cancel, small talk), so the
   first and last ten messages do the same work and only the length differs;
3. closed loop: 20 senders each sending back to back for 30 s;
4. capacity: closed loops of 1, 2, 4, 6, 8, 12, 16 and 20 senders (8 s each);
   the capacity is the highest messages/s reached with p95 under 500 ms.
Prints p50/p95 and messages/s; --json writes them.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from nlu_eval import load_examples  # noqa: E402

QUESTIONS = [e["text"] for e in load_examples(ROOT / "tests" / "nlu") if e["intent"].startswith("ask_")]


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


async def send(session, url, sender, text):
    started = time.perf_counter()
    async with session.post(f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": text}) as resp:
        await resp.read()
        ok = resp.status == 200
    return (time.perf_counter() - started) * 1000, ok


async def sequential(session, url, n):
    out = []
    for i in range(n):
        ms, _ = await send(session, url, "seq-" + uuid.uuid4().hex, QUESTIONS[i % len(QUESTIONS)])
        out.append(ms)
    return out


# Nothing in the block fills a fact the check keeps, so every repetition takes
# the same dialogue path (the check starts and asks, is interrupted, is cancelled).
BLOCK = ["育儿假有几天", "生二孩有什么补贴", "育儿补贴归哪个部门管", "老二能跟哥哥同校吗", "产假有多少天",
         "算了", "托育补贴怎么领", "男方护理假几天", "你能干什么", "谢谢"]


async def conversation(session, url, length):
    sender = "conv-" + uuid.uuid4().hex
    return [(await send(session, url, sender, BLOCK[i % len(BLOCK)]))[0] for i in range(length)]


async def closed_loop(session, url, clients, seconds):
    latencies, errors = [], 0
    deadline = time.perf_counter() + seconds

    async def client(k):
        nonlocal errors
        sender, i = f"load-{k}-" + uuid.uuid4().hex, k
        while time.perf_counter() < deadline:
            ms, ok = await send(session, url, sender, QUESTIONS[i % len(QUESTIONS)])
            latencies.append(ms)
            errors += not ok
            i += clients

    started = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    return latencies, errors, time.perf_counter() - started


async def main_async(args):
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=100)) as session:
        await sequential(session, args.url, 5)  # warm up
        seq = await sequential(session, args.url, args.sequential)
        conv = await conversation(session, args.url, 50)
        load, errors, elapsed = await closed_loop(session, args.url, args.clients, args.seconds)
        sweep = []
        for clients in ([] if args.no_capacity else [1, 2, 4, 6, 8, 12, 16, 20]):
            lat, err, secs = await closed_loop(session, args.url, clients, 8)
            sweep.append({"clients": clients, "msgs_per_s": len(lat) / secs, "p95_ms": pct(lat, 95), "errors": err})
    figures = {
        "label": args.label,
        "sequential": {"n": len(seq), "p50_ms": statistics.median(seq), "p95_ms": pct(seq, 95)},
        "conversation_50": {"first10_median_ms": statistics.median(conv[:10]),
                            "last10_median_ms": statistics.median(conv[-10:])},
        "closed_loop": {"clients": args.clients, "seconds": round(elapsed, 1), "messages": len(load),
                        "msgs_per_s": len(load) / elapsed, "p50_ms": statistics.median(load),
                        "p95_ms": pct(load, 95), "errors": errors},
        "capacity_sweep": sweep,
        "capacity_msgs_per_s_p95_under_500ms": max([x["msgs_per_s"] for x in sweep if x["p95_ms"] < 500] or [0.0]),
    }
    s, c, l = figures["sequential"], figures["conversation_50"], figures["closed_loop"]
    print(f"[{args.label}] sequential n={s['n']}: p50 {s['p50_ms']:.0f} ms, p95 {s['p95_ms']:.0f} ms")
    print(f"[{args.label}] 50-message conversation: median of messages 1-10 {c['first10_median_ms']:.0f} ms, "
          f"41-50 {c['last10_median_ms']:.0f} ms")
    print(f"[{args.label}] closed loop {l['clients']} clients x {l['seconds']} s: {l['msgs_per_s']:.1f} msg/s, "
          f"p50 {l['p50_ms']:.0f} ms, p95 {l['p95_ms']:.0f} ms, errors {l['errors']}")
    for x in figures["capacity_sweep"]:
        print(f"[{args.label}]   {x['clients']:>2} senders: {x['msgs_per_s']:.1f} msg/s, p95 {x['p95_ms']:.0f} ms")
    if figures["capacity_sweep"]:
        print(f"[{args.label}] capacity at p95 < 500 ms: {figures['capacity_msgs_per_s_p95_under_500ms']:.1f} msg/s")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1), encoding="utf-8")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:5005")
    parser.add_argument("--label", default="ours")
    parser.add_argument("--sequential", type=int, default=200)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--json")
    parser.add_argument("--no-capacity", action="store_true", help="skip the capacity sweep")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
