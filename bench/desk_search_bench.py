"""Desk search benchmark: what staff type during a call, in-process and over HTTP.

Queries are generated from knowledge/answers.yml the way agents type: titles,
keywords, pinyin initials and full pinyin typed without the IME, every prefix
of a pinyin word as it is typed, traditional characters. Each query is labelled
with the answer it came from, so top-3 accuracy is printed too.

    .venv/bin/python bench/desk_search_bench.py [--repeat 3] [--browser]

Over HTTP it starts the real web app (python -m bot.web) on a free port with
temporary databases, signs in a staff account made with `python -m bot.users`,
and times GET /desk/api/search and the public GET /api/search with one
keep-alive connection. --browser also times loading /desk in Debian chromium.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from pypinyin import lazy_pinyin

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.knowledge import load_knowledge  # noqa: E402
from bot.search import SearchIndex  # noqa: E402
from bot.text import to_simplified  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python")
HAN = re.compile(r"^[\u4e00-\u9fff]{2,8}$")


def to_traditional(text: str) -> str:
    import opencc

    return opencc.OpenCC("s2t").convert(text)


def staff_queries(kb) -> list[tuple[str, str]]:
    """(query, answer id) pairs, as typed at the desk."""
    out: list[tuple[str, str]] = []
    for a in kb.answers.values():
        terms = [t for t in (a.title, *a.keywords) if HAN.match(t)]
        out.append((a.title, a.id))
        out += [(k, a.id) for k in a.keywords[:2]]
        if terms:
            term = terms[1] if len(terms) > 1 else terms[0]
            sounds = lazy_pinyin(term)
            out.append(("".join(s[0] for s in sounds), a.id))          # initials: pcj
            full = "".join(sounds)
            out.append((full, a.id))                                    # full pinyin: yuerjia
            out += [(full[:n], a.id) for n in range(3, len(full))][:3]  # while still typing
        traditional = to_traditional(a.title)
        if traditional != a.title and to_simplified(traditional) == a.title:
            out.append((traditional, a.id))
    return out


def percentiles(times_ms: list[float]) -> str:
    q = statistics.quantiles(sorted(times_ms), n=100)
    return f"p50 {q[49]:.2f} ms   p95 {q[94]:.2f} ms   max {max(times_ms):.2f} ms"


def in_process(kb, queries, repeat: int) -> None:
    from types import SimpleNamespace

    from bot.web.desk import answer_card, desk_search

    t0 = time.perf_counter()
    index = SearchIndex(kb)
    print(f"index build: {(time.perf_counter() - t0) * 1000:.0f} ms")
    app = SimpleNamespace(ctx=SimpleNamespace(kb=kb, search=index,
                                              desk_cards={aid: answer_card(kb, aid) for aid in kb.answers}))
    for q, _ in queries:   # warm caches (jieba, pinyin) once
        desk_search(app, q)
    search_ms, desk_ms = [], []
    best: dict[str, float] = {}
    for _ in range(repeat):
        for q, _ in queries:
            t = time.perf_counter()
            index.search(q, limit=8)
            elapsed = (time.perf_counter() - t) * 1000
            search_ms.append(elapsed)
            best[q] = min(best.get(q, elapsed), elapsed)
            t = time.perf_counter()
            desk_search(app, q)
            desk_ms.append((time.perf_counter() - t) * 1000)
    top1 = top3 = 0
    for q, expected in queries:
        ids = [h.id for h in index.search(q)["answers"]]
        top1 += ids[:1] == [expected]
        top3 += expected in ids[:3]
    n = len(queries)
    print(f"in-process search:            {percentiles(search_ms)}")
    # On a shared machine the scheduler adds pauses unrelated to the code: each query's fastest run shows the code.
    print(f"in-process search, each query's fastest of {repeat}: {percentiles(list(best.values()))}")
    print(f"in-process desk search+cards: {percentiles(desk_ms)}")
    print(f"answer the query came from: top-1 {top1 / n:.3f}   top-3 {top3 / n:.3f}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(tmp: Path) -> tuple[subprocess.Popen, str, dict]:
    port = free_port()
    env = {**os.environ, "VAR_DIR": str(tmp), "WEB_HOST": "127.0.0.1", "WEB_PORT": str(port),
           "REVIEW_DB_URL": f"sqlite:///{tmp / 'review.db'}", "STAFF_DB_URL": f"sqlite:///{tmp / 'staff.db'}",
           "RASA_URL": "http://127.0.0.1:9", "API_RATE_LIMIT_PER_MINUTE": "1000000"}
    subprocess.run([PYTHON, "-m", "bot.users", "add", "bench", "--role", "staff"], input="bench password 123\n",
                   text=True, check=True, cwd=ROOT, env=env, capture_output=True)
    proc = subprocess.Popen([PYTHON, "-m", "bot.web"], cwd=ROOT, env=env, stdout=(tmp / "web.log").open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/login", timeout=1).status_code == 200:
                return proc, url, env
        except requests.RequestException:
            time.sleep(0.3)
    raise SystemExit("the web app did not start: see " + str(tmp / "web.log"))


def sign_in(url: str) -> requests.Session:
    session = requests.Session()
    page = session.get(url + "/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    resp = session.post(url + "/login", data={"name": "bench", "password": "bench password 123", "csrf_token": token,
                                              "next": "/desk"}, allow_redirects=False)
    assert resp.status_code == 302, resp.text
    return session


def over_http(url: str, queries, repeat: int) -> None:
    session = sign_in(url)
    for path, label in (("/desk/api/search", "desk  GET /desk/api/search"), ("/api/search", "public GET /api/search")):
        for q, _ in queries[:20]:
            session.get(url + path, params={"q": q})
        times = []
        for _ in range(repeat):
            for q, _ in queries:
                t = time.perf_counter()
                resp = session.get(url + path, params={"q": q, "limit": 8})
                times.append((time.perf_counter() - t) * 1000)
                assert resp.status_code == 200, (path, q, resp.status_code)
        print(f"over HTTP, {label}: {percentiles(times)}")
    times = []
    for _ in range(20):
        t = time.perf_counter()
        for path in ("/desk", "/static/desk.js", "/static/desk.css"):
            assert session.get(url + path).status_code == 200
        times.append((time.perf_counter() - t) * 1000)
    print(f"page and its two files over HTTP (no browser): {percentiles(times)}")


def in_browser(url: str) -> None:
    from playwright.sync_api import sync_playwright

    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=args)
        page = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
        page.goto(url + "/login")
        page.fill("#name", "bench")
        page.fill("#password", "bench password 123")
        page.click("button[type=submit]")
        page.wait_for_url(url + "/desk")
        loads = []
        for _ in range(10):
            page.reload()
            page.wait_for_load_state("load")
            nav = page.evaluate("JSON.stringify(performance.getEntriesByType('navigation')[0])")
            import json

            loads.append(json.loads(nav)["loadEventEnd"])
        typed = []
        box = page.locator("#q")
        for q in ("pcj", "yuerjia", "保租房", "产假多少天"):
            box.fill("")
            t = time.perf_counter()
            box.fill(q)
            page.locator(f'#results[data-query="{q}"]').wait_for(state="attached")
            typed.append((time.perf_counter() - t) * 1000)
        browser.close()
    print(f"browser: /desk load event after {statistics.median(loads):.0f} ms (median of 10, max {max(loads):.0f} ms)")
    print(f"browser: keystroke to results shown (incl. 120 ms debounce): median {statistics.median(typed):.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--browser", action="store_true", help="also time /desk in Debian chromium")
    args = parser.parse_args()
    kb = load_knowledge(ROOT / "knowledge")
    queries = staff_queries(kb)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"staff-style queries: {len(queries)} (x{args.repeat} runs)   load average {load:.1f} on {os.cpu_count()} CPUs")
    in_process(kb, queries, args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        proc, url, _ = start_app(Path(tmp))
        try:
            over_http(url, queries, args.repeat)
            if args.browser:
                in_browser(url)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(15)


if __name__ == "__main__":
    main()
