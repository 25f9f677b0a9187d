"""Review workspace timings: inbox page queries at 100,000 items, grouping of 10,000 questions.

    .venv/bin/python bench/review_bench.py                      # SQLite in a temporary folder
    .venv/bin/python bench/review_bench.py --db postgresql://user@host/db   # an empty PostgreSQL database
    .venv/bin/python bench/review_bench.py --items 20000 --questions 2000   # smaller

Seeds the review store with generated items (kinds, intents, confidences,
statuses, tags and 30 days of times in realistic proportions), then times one
inbox page (the page query, its count up to 1,000, its tags and what the
page shows of each row: bot.reviewing.inbox.page) for each filter and sort,
on the first page and after walking deep with the keyset cursor (those pages
carry the first page's count, as the page's links do). Prints p50/p95 per case
and over all; the target is p95 < 200 ms. Then times grouping
(bot.grouping.group_questions) of 10,000 generated questions, cold (a fresh
normaliser) and warm (texts seen before, as when a page is reloaded).
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from bot.config import ROOT  # noqa: E402
from bot.grouping import Normaliser, Question, group_questions  # noqa: E402
from bot.knowledge import load_knowledge  # noqa: E402
from bot.review import ReviewStore, review_items, review_tags  # noqa: E402
from bot.reviewing import inbox  # noqa: E402
from bot.reviewing.labels import departments_in_use, today_local  # noqa: E402

KINDS = [("unanswered", 30), ("low_confidence", 25), ("out_of_scope", 10), ("unhelpful", 10), ("helpful", 12),
         ("handoff", 6), ("desk_no_result", 4), ("desk_flag", 2), ("abandoned_check", 1)]
STATUSES = [("new", 70), ("pending", 8), ("done", 10), ("ignored", 6), ("accepted", 5), ("new_topic", 1)]
TOPICS = ["生育津贴", "育儿补贴", "分娩补贴", "公租房", "独生子女证", "护理假", "育儿假", "产假", "托育机构", "公积金",
          "入园", "孕检", "二孩", "三孩", "双胞胎", "户口", "医保报销", "出生证明", "疫苗", "幼儿园", "陪产假",
          "入托补贴", "个税扣除", "奖励扶助", "暖心家园"]
ASKS = ["怎么领", "在哪里申请", "什么时候发", "需要什么材料", "给多少钱", "能不能享受", "怎么办理", "去哪办", "有啥条件",
        "到账了吗", "谁来领", "外地的能领吗", "能补办吗", "网上能办吗", "有期限吗", "怎么查进度"]
PREFIXES = ["", "请问", "我想问一下", "你好，", "东胜区", "达旗", "俺家", "老二的", "第三个孩子的", "刚生完孩子，",
            "我是外地户口，", "孩子两岁了，"]
ENDINGS = ["", "吗", "？", "呢", "啊", "呀", "，急", "，谢谢"]


def question(rng: random.Random) -> str:
    return rng.choice(PREFIXES) + rng.choice(TOPICS) + rng.choice(ASKS) + rng.choice(ENDINGS)


def weighted(rng: random.Random, table):
    return rng.choices([k for k, _ in table], weights=[w for _, w in table])[0]


def seed(store: ReviewStore, kb, n: int, rng: random.Random) -> None:
    intents = [f"ask_{a}" for a in kb.answers] + ["out_of_scope", "human_handoff"]
    answers = list(kb.answers)
    now = dt.datetime.utcnow().replace(microsecond=0)
    store._ensure_schema()
    batch = []
    with store.engine.begin() as conn:
        for i in range(n):
            kind = weighted(rng, KINDS)
            feedback = kind in ("helpful", "unhelpful", "handoff")
            batch.append({
                "created_at": now - dt.timedelta(seconds=rng.randrange(30 * 86400)), "kind": kind,
                "sender": f"{rng.getrandbits(128):032x}", "question": question(rng),
                "intent": None if feedback or kind.startswith("desk") else rng.choice(intents),
                "confidence": None if feedback or kind.startswith("desk") else round(rng.random(), 3),
                "answer_id": rng.choice(answers) if feedback else None, "detail": None,
                "status": weighted(rng, STATUSES)})
            if len(batch) == 5000:
                conn.execute(review_items.insert(), batch)
                batch = []
        if batch:
            conn.execute(review_items.insert(), batch)
        tags = [{"item_id": i, "tag": rng.choice(["跟进", "津贴", "材料", "政策外"])}
                for i in rng.sample(range(1, n + 1), n // 20)]
        conn.execute(review_tags.insert(), tags)


def cases(kb, today: dt.date) -> dict[str, inbox.Filters]:
    dept = departments_in_use(kb)[1]
    return {
        "default (open gaps, newest)": inbox.Filters(),
        "all statuses": inbox.Filters(statuses=()),
        "reason = 未能回答": inbox.Filters(kinds=("unanswered",)),
        "last 7 days": inbox.Filters(date_from=today - dt.timedelta(days=6), date_to=today),
        "one day, 30 days ago": inbox.Filters(date_from=today - dt.timedelta(days=29),
                                              date_to=today - dt.timedelta(days=29)),
        "confidence 0.3-0.5": inbox.Filters(conf_min=0.3, conf_max=0.5),
        "sorted by confidence": inbox.Filters(sort="conf_asc"),
        "predicted intent": inbox.Filters(intent="ask_delivery_subsidy"),
        f"department {dept}": inbox.Filters(department=dept),
        "status 已归入意图": inbox.Filters(statuses=("accepted",)),
        "tag 跟进": inbox.Filters(tag="跟进", statuses=()),
        "text 公积金": inbox.Filters(q="公积金"),
        "text, rare (暖心家园 有期限)": inbox.Filters(q="暖心家园有期限"),
        "200 a page": inbox.Filters(size=200),
    }


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def time_pages(store: ReviewStore, kb, repeats: int, depth: int) -> list[float]:
    all_times = []
    print(f"\n{'case':38} {'rows':>7} {'first p50':>10} {'first p95':>10} {'deep p50':>9} {'deep p95':>9}  (ms)")
    for name, f in cases(kb, today_local()).items():
        first, deep = [], []
        with store.engine.connect() as conn:
            total = 0
            for _ in range(repeats):
                t = time.perf_counter()
                page = inbox.page(conn, kb, f)
                first.append((time.perf_counter() - t) * 1000)
                total = page.total
            cursor = page.next_cursor
            for _ in range(depth):     # walk deep, one page at a time, as a reviewer would
                if not cursor:
                    break
                t = time.perf_counter()
                page = inbox.page(conn, kb, f, after=cursor, known_total=total)   # as the page's links pass it
                deep.append((time.perf_counter() - t) * 1000)
                cursor = page.next_cursor
        all_times += first + deep
        deep_text = (f"{statistics.median(deep):9.1f} {percentile(deep, 95):9.1f}" if deep else f"{'-':>9} {'-':>9}")
        print(f"{name:38} {total:7d} {statistics.median(first):10.1f} {percentile(first, 95):10.1f} {deep_text}")
    return all_times


def time_grouping(kb, n: int, rng: random.Random) -> None:
    questions = [Question(i + 1, question(rng)) for i in range(n)]
    normaliser = Normaliser(kb)
    t = time.perf_counter()
    groups = group_questions(questions, normaliser)
    cold = time.perf_counter() - t
    t = time.perf_counter()
    group_questions(questions, normaliser)
    warm = time.perf_counter() - t
    distinct = len({q.text for q in questions})
    print(f"\ngrouping {n} questions ({distinct} distinct texts): cold {cold:.2f} s, warm {warm:.2f} s, "
          f"{len(groups)} groups, biggest {groups[0].count}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", help="SQLAlchemy URL of an empty database (default: SQLite in a temporary folder)")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--questions", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--depth", type=int, default=40, help="pages walked with the keyset cursor per case")
    args = parser.parse_args()
    rng = random.Random(20231122)
    kb = load_knowledge(ROOT / "knowledge")
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'review.db'}"
        store = ReviewStore(url)
        t = time.perf_counter()
        seed(store, kb, args.items, rng)
        inbox.refresh_statistics(store.engine)   # as the web app does at start and every hour
        print(f"seeded {args.items} items in {time.perf_counter() - t:.1f} s ({store.engine.dialect.name})")
        times = time_pages(store, kb, args.repeats, args.depth)
        print(f"\nall page queries: n={len(times)} p50 {statistics.median(times):.1f} ms, "
              f"p95 {percentile(times, 95):.1f} ms, max {max(times):.1f} ms (target p95 < 200 ms)")
        store.engine.dispose()
    time_grouping(kb, args.questions, rng)
    return 0


if __name__ == "__main__":
    sys.exit(main())
