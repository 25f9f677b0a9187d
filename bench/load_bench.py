"""Announcement-day load through the front door: simulated citizens talking to the
web app's POST /api/chat, in steps of concurrent users, then a check that every
message is in the tracker store exactly once.

    .venv/bin/python bench/load_bench.py --quick               # 10 users, 30 s: proves the setup works
    .venv/bin/python bench/load_bench.py                       # 10 -> 50 -> 100 -> 200 users, 90 s each
    .venv/bin/python bench/load_bench.py --steps 10,50 --step-seconds 60 --json build/bench/load.json

By default it starts its own action server, Rasa (models/ordos.tar.gz) and web
app on loopback ports 25055 / 25005 / 28000, with a fresh SQLite tracker store
in a temporary folder (--tracker-db-url postgresql://... for PostgreSQL, which
must be empty or throwaway). --url points it at a web app that is already
running instead (then --tracker-db-url must name that stack's tracker store).
Loopback only: it refuses any other address.

Each citizen gets a conversation id the way the widget does (POST /api/session,
then the X-Conversation-Id header) and holds a real conversation: a topic
question, a follow-up, an eligibility check answered question by question (the
answer chosen by the fact the assistant asks for), and 没帮助, pausing 5-10 s
before each message; then starts another conversation until the step's time is
up. Every citizen sends from its own address (X-Forwarded-For, with the web
app trusting loopback as its proxy), so the per-client rate limits apply to
each citizen as they would behind nginx.

Per step: messages/s, p50/p95/p99 latency of /api/chat, errors by kind and
replies that were the busy apology instead of an answer. Afterwards: each
message the web app accepted (HTTP 200) is read back from the events table,
per conversation and in order: lost, duplicated, or stored although refused.
Also the resident memory of each server process after the load (when started here).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bot.config import load_settings  # noqa: E402
from bot.render import busy_apology  # noqa: E402

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
PORTS = {"actions": 25055, "rasa": 25005, "web": 28000}

# Conversation plans: (topic question, follow-up, the question that starts a check).
PLANS = [
    ("育儿假有几天", "这个找哪个部门", "我想问问能不能领育儿补贴"),
    ("生二孩有什么补贴", "找哪个部门办", "入托补贴我能申请吗"),
    ("男方护理假几天", "那产假呢", "我家能享受公积金贷款额度上浮吗"),
    ("分娩补贴给多少钱", "这个归哪个部门管", "分娩补贴我能领吗"),
    ("三孩家庭租房提取公积金有什么政策", "找哪个部门", "我能多提取公积金付房租吗"),
    ("二孩能跟哥哥在一个学校上学吗", "这个找谁", "我家老二能跟哥哥同校吗"),
]
# What a citizen answers when the assistant asks for a fact (custom.fact of an "ask").
ANSWERS = {
    "hukou_ordos": "是的，我们家是鄂尔多斯户口",
    "mother_hukou_ordos": "孩子妈妈是鄂尔多斯户口",
    "child_order": "是第二个孩子",
    "children_count": "家里有三个孩子",
    "birth_date": "孩子是2024年3月出生的",
    "born_under_policy": "是的，夫妻俩都是按政策生的",
    "delivered_at_midwifery_institution": "在医院生的",
    "prenatal_check_at_medical_institution": "在医院做的产检",
    "enrolled_in_childcare": "已经上幼儿园了",
    "zoning_changed": "是因为划片变了",
    "sibling_school_choice": "哥哥不是择校进去的",
    "sibling_currently_enrolled": "哥哥还在那里读书",
    "first_home_purchase": "是首套房",
    "housing_fund_contributor": "我一直交公积金",
    "owns_home_locally": "本地没有自己的房子",
    "renting": "现在租房住",
    "applicant_is_only_child": "我不是独生子女",
    "maternity_insured_employee": "孩子妈妈参加了生育保险",
}
MAX_CHECK_ANSWERS = 6
FEEDBACK = "没帮助"


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


@dataclass
class Step:
    users: int
    seconds: float
    latencies_ms: list = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    apologies: int = 0
    conversations_done: int = 0
    session_errors: int = 0

    def summary(self) -> dict:
        lat = self.latencies_ms
        return {"users": self.users, "seconds": round(self.seconds, 1), "messages": len(lat),
                "msgs_per_s": round(len(lat) / self.seconds, 2) if self.seconds else 0.0,
                "p50_ms": round(pct(lat, 50), 1), "p95_ms": round(pct(lat, 95), 1), "p99_ms": round(pct(lat, 99), 1),
                "errors": sum(self.errors.values()), "errors_by_kind": dict(self.errors),
                "apologies": self.apologies, "conversations_completed": self.conversations_done,
                "session_errors": self.session_errors}


class Ledger:
    """What each conversation sent: accepted (HTTP 200) and refused messages, in order."""

    def __init__(self):
        self.accepted: dict[str, list[str]] = defaultdict(list)
        self.refused: dict[str, list[str]] = defaultdict(list)


class Citizen:
    def __init__(self, http, web_url, address, step: Step, ledger: Ledger, rng: random.Random, pause, apology):
        self.http, self.web_url, self.step, self.ledger, self.rng = http, web_url, step, ledger, rng
        self.pause, self.apology = pause, apology
        self.headers = {"X-Forwarded-For": address}

    async def new_conversation(self) -> tuple[dict, str] | None:
        """A conversation id from the server, as the widget gets one: the headers
        that carry it, and Rasa's sender id (the id's value part)."""
        try:
            async with self.http.post(f"{self.web_url}/api/session", json={}, headers=self.headers) as resp:
                body = await resp.json(content_type=None)
                if resp.status != 201:
                    self.step.session_errors += 1
                    return None
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            self.step.session_errors += 1
            return None
        token = body["conversation_id"]
        return {**self.headers, body["header"]: token}, token.split(".", 1)[0]

    async def say(self, headers: dict, sender: str, text: str) -> list[dict] | None:
        started = time.perf_counter()
        try:
            async with self.http.post(f"{self.web_url}/api/chat", json={"message": text}, headers=headers) as resp:
                payload = await resp.json(content_type=None)
                status = resp.status
        except asyncio.TimeoutError:
            self.step.errors["timeout"] += 1
            self.ledger.refused[sender].append(text)
            return None
        except (aiohttp.ClientError, ValueError) as exc:
            self.step.errors[type(exc).__name__] += 1
            self.ledger.refused[sender].append(text)
            return None
        if status != 200:
            self.step.errors[f"http {status}"] += 1
            self.ledger.refused[sender].append(text)
            return None
        self.step.latencies_ms.append((time.perf_counter() - started) * 1000)
        self.ledger.accepted[sender].append(text)
        messages = payload.get("messages") or []
        if not messages or any(m.get("text") == self.apology for m in messages):
            self.step.apologies += 1
        return messages

    async def wait(self, deadline: float) -> bool:
        """Pause like a person typing; False when the step ends first."""
        delay = self.rng.uniform(*self.pause)
        if time.monotonic() + delay >= deadline:
            return False
        await asyncio.sleep(delay)
        return True

    async def run(self, deadline: float, first_delay: float) -> None:
        await asyncio.sleep(first_delay)
        while time.monotonic() < deadline:
            conversation = await self.new_conversation()
            if conversation is not None and not await self.converse(*conversation, deadline):
                return
            if not await self.wait(deadline):  # the next citizen on this seat arrives
                return

    async def converse(self, headers: dict, sender: str, deadline: float) -> bool:
        """One conversation; False when the step ended during it. A refused
        message ends the conversation (the citizen leaves)."""
        topic, follow_up, check = self.rng.choice(PLANS)
        replies = None
        for i, text in enumerate((topic, follow_up, check)):
            if i and not await self.wait(deadline):
                return False
            replies = await self.say(headers, sender, text)
            if replies is None:
                return True
        for _ in range(MAX_CHECK_ANSWERS):  # the check, answered question by question
            asked = [m["custom"]["fact"] for m in replies if isinstance(m.get("custom"), dict)
                     and m["custom"].get("kind") == "ask" and m["custom"].get("fact")]
            if not asked:
                break
            if not await self.wait(deadline):
                return False
            replies = await self.say(headers, sender, ANSWERS.get(asked[-1], "不知道"))
            if replies is None:
                return True
        if not await self.wait(deadline):
            return False
        if await self.say(headers, sender, FEEDBACK) is not None:
            self.step.conversations_done += 1
        return True


async def run_step(web_url, users, seconds, pause, ledger, rng, apology, first_address) -> Step:
    step = Step(users, seconds)
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
        started = time.monotonic()
        deadline = started + seconds
        citizens = [Citizen(http, web_url, address(first_address + i), step, ledger, random.Random(rng.random()),
                            pause, apology) for i in range(users)]
        # Arrivals spread over the first pause, as people open the page one after another.
        await asyncio.gather(*(c.run(deadline, rng.uniform(0, pause[1])) for c in citizens))
        step.seconds = max(seconds, time.monotonic() - started)
    return step


def address(n: int) -> str:
    """A distinct documentation-range address per simulated citizen (198.18.0.0/15)."""
    return f"198.{18 + n // 65536 % 2}.{n // 256 % 256}.{n % 256}"


def verify(tracker_db_url: str, ledger: Ledger) -> dict:
    """Every accepted message stored once and in order; refused ones reported apart.

    A conversation's refused message is its last (the citizen leaves), so the
    stored user messages must be exactly the accepted ones, in order, followed
    by at most the refused ones that Rasa still handled after the web app gave up."""
    import sqlalchemy as sa

    engine = sa.create_engine(tracker_db_url)
    stored: dict[str, list[str]] = defaultdict(list)
    senders = set(ledger.accepted) | set(ledger.refused)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT sender_id, data FROM events WHERE type_name = 'user' ORDER BY id"))
        for sender, data in rows:
            if sender in senders:
                stored[sender].append(json.loads(data).get("text"))
    engine.dispose()
    lost = duplicated = out_of_order = stored_although_refused = 0
    for sender in senders:
        accepted, refused, have = ledger.accepted.get(sender, []), ledger.refused.get(sender, []), stored.get(sender, [])
        missing = Counter(accepted) - Counter(have)
        lost += sum(missing.values())
        extra = Counter(have) - Counter(accepted)
        late = sum((extra & Counter(refused)).values())
        stored_although_refused += late
        duplicated += sum(extra.values()) - late
        if not missing and have[:len(accepted)] != accepted:
            out_of_order += 1
    return {"conversations": len(senders), "accepted_messages": sum(len(v) for v in ledger.accepted.values()),
            "refused_messages": sum(len(v) for v in ledger.refused.values()),
            "stored_user_messages": sum(len(v) for v in stored.values()), "lost": lost, "duplicated": duplicated,
            "conversations_out_of_order": out_of_order, "stored_although_refused": stored_although_refused}


class Servers:
    """Action server, Rasa and web app on loopback, as scripts/serve.sh starts them."""

    def __init__(self, tmp: Path, tracker_db_url: str):
        self.tmp = tmp
        dialect = "postgresql" if tracker_db_url.startswith("postgresql") else "sqlite"
        self.env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "VAR_DIR": str(tmp),
                    "ACTION_SERVER_URL": f"http://127.0.0.1:{PORTS['actions']}",
                    "RASA_URL": f"http://127.0.0.1:{PORTS['rasa']}", "RASA_TOKEN": secrets.token_urlsafe(24),
                    "TRACKER_DB_DIALECT": dialect, "TRACKER_DB_URL": tracker_db_url,
                    "LOCK_STORE_TYPE": "in_memory", "REVIEW_DB_URL": f"sqlite:///{tmp / 'review.db'}",
                    "WEB_HOST": "127.0.0.1", "WEB_PORT": str(PORTS["web"]),
                    # The load generator plays the reverse proxy: its X-Forwarded-For names each citizen.
                    "TRUSTED_PROXIES": "127.0.0.1"}
        for opened in ("RASA_INTERFACE", "ACTION_SERVER_INTERFACE"):
            self.env.pop(opened, None)
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self) -> None:
        serve = str(ROOT / "scripts" / "serve.sh")
        self._start("actions", ["bash", serve, "actions", str(PORTS["actions"])], f"{PORTS['actions']}/health", 180)
        self._start("rasa", ["bash", serve, "rasa", str(PORTS["rasa"])], f"{PORTS['rasa']}/", 300)
        self._start("web", [sys.executable, "-m", "bot.web"], f"{PORTS['web']}/ready", 120)

    def _start(self, name, cmd, probe, deadline_s) -> None:
        import urllib.error
        import urllib.request

        log = (self.tmp / f"{name}.log").open("w")
        proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}: see {self.tmp / (name + '.log')}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{probe}", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(1)
        raise TimeoutError(f"{name} not ready after {deadline_s}s")

    def rss_mib(self) -> dict:
        """Resident memory of each server: its process tree (Rasa's workers included)."""
        out = {}
        for name, proc in self.procs.items():
            pids = tree(proc.pid)
            total_kb = 0
            for pid in pids:
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            total_kb += int(line.split()[1])
                except OSError:
                    pass
            out[name] = round(total_kb / 1024)
        return out

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            children = []
        todo.extend(int(c) for c in children)
    return pids


def check_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host not in LOOPBACK:
        sys.exit(f"load_bench: {url} is not a loopback address; this benchmark only runs against this machine")


async def warm_up(web_url: str, apology: str) -> None:
    """One conversation before measuring: Rasa loads the segmenter's dictionary on
    its first message (seconds). Not counted, not checked."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        citizen = Citizen(http, web_url, "198.19.255.254", Step(1, 0), Ledger(), random.Random(0), (0, 0), apology)
        conversation = await citizen.new_conversation()
        if conversation is not None:
            for text in ("你好", PLANS[0][0]):
                await citizen.say(*conversation, text)


async def main_async(args) -> dict:
    settings = load_settings()
    apology = busy_apology(settings)
    rng = random.Random(args.seed)
    ledger = Ledger()
    await warm_up(args.url, apology)
    results = []
    first_address = 1
    for users in args.steps:
        step = await run_step(args.url, users, args.step_seconds, tuple(args.pause), ledger, rng, apology, first_address)
        first_address += users
        summary = step.summary()
        summary["load_avg_1m"] = round(os.getloadavg()[0], 2)  # the machine is shared: say how busy it was
        results.append(summary)
        print(f"{users:>4} users  {summary['seconds']:>6.1f} s  {summary['messages']:>5} msgs  "
              f"{summary['msgs_per_s']:>6.2f} msg/s  p50 {summary['p50_ms']:>7.1f}  p95 {summary['p95_ms']:>7.1f}  "
              f"p99 {summary['p99_ms']:>7.1f} ms  errors {summary['errors']} {summary['errors_by_kind'] or ''}  "
              f"apologies {summary['apologies']}  conversations {summary['conversations_completed']}  "
              f"load avg {summary['load_avg_1m']}", flush=True)
    return {"steps": results, "ledger": ledger}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one step of 10 users for 30 s")
    parser.add_argument("--steps", default="10,50,100,200", help="concurrent users per step")
    parser.add_argument("--step-seconds", type=float, default=90)
    parser.add_argument("--pause", type=float, nargs=2, default=(5.0, 10.0), metavar=("MIN", "MAX"))
    parser.add_argument("--url", help="a running web app on loopback (default: start one here)")
    parser.add_argument("--tracker-db-url", help="tracker store to verify (default: a fresh SQLite file)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    args.steps = [10] if args.quick else [int(s) for s in args.steps.split(",")]
    if args.quick:
        args.step_seconds = 30
    if args.url and not args.tracker_db_url:
        parser.error("--url needs --tracker-db-url (the running stack's tracker store) for the check")

    servers = None
    tmp = Path(tempfile.mkdtemp(prefix="load-bench-"))
    try:
        if args.url is None:
            if not (ROOT / "models" / "ordos.tar.gz").exists():
                sys.exit("load_bench: no model at models/ordos.tar.gz (bash scripts/train.sh)")
            args.tracker_db_url = args.tracker_db_url or f"sqlite:///{tmp / 'tracker.db'}"
            servers = Servers(tmp, args.tracker_db_url)
            print("starting the action server, Rasa and the web app on loopback ...", flush=True)
            started = time.monotonic()
            servers.start()
            print(f"ready after {time.monotonic() - started:.0f} s; resident memory (MiB): {servers.rss_mib()}", flush=True)
            args.url = f"http://127.0.0.1:{PORTS['web']}"
        check_loopback(args.url)
        print(f"load: steps {args.steps} users, {args.step_seconds:.0f} s each, pauses "
              f"{args.pause[0]:.0f}-{args.pause[1]:.0f} s, against {args.url}", flush=True)
        out = asyncio.run(main_async(args))
        check = verify(args.tracker_db_url, out["ledger"])
        print(f"tracker store: {check['accepted_messages']} accepted messages in {check['conversations']} conversations; "
              f"{check['stored_user_messages']} stored; lost {check['lost']}, duplicated {check['duplicated']}, "
              f"conversations out of order {check['conversations_out_of_order']}, "
              f"stored although refused {check['stored_although_refused']}")
        report = {"steps": out["steps"], "tracker_check": check, "pause_s": list(args.pause)}
        if servers:
            report["rss_mib_after_load"] = servers.rss_mib()
            print(f"resident memory after the load (MiB): {report['rss_mib_after_load']}")
            report["cpu_count"] = os.cpu_count()
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
        ok = check["lost"] == 0 and check["duplicated"] == 0 and check["conversations_out_of_order"] == 0
        sys.exit(0 if ok else 1)
    finally:
        if servers:
            servers.stop()


if __name__ == "__main__":
    main()
