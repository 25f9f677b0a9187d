"""Announcement-day load through the front door: simulated citizens talking to the
web app's POST /api/chat, in steps of concurrent users, then a closed loop that
finds the knee, then a check that every message is in the tracker store exactly once.

    .venv/bin/python bench/load_bench.py --quick               # 10 users 30 s, a short closed loop: proves the setup
    .venv/bin/python bench/load_bench.py                       # 10 -> 50 -> 100 -> 200 -> 400 users, then the knee
    .venv/bin/python bench/load_bench.py --tracker postgres    # the same on a throwaway PostgreSQL
    .venv/bin/python bench/load_bench.py --rasa-replicas 2     # 2 Rasa + 2 action servers behind nginx, PG + Redis
    .venv/bin/python bench/load_bench.py --compare --json build/bench/compare.json   # the three side by side

By default it starts its own servers on loopback: the action server(s) on
25055.., Rasa on 25005.., the web app on 28000, with a fresh SQLite tracker
store in a temporary folder. --tracker postgres starts a throwaway PostgreSQL
(port 25432) instead. --rasa-replicas N (N >= 2) starts N separate `rasa run`
processes with the same model, as separate pods run, and --action-replicas M
action servers (2 by default then), all behind one nginx (Rasa on 25080, the
action servers on 25081): the web app's RASA_URL and Rasa's ACTION_SERVER_URL
name nginx. Replicas share the tracker store and the conversation locks, so
they need PostgreSQL and a Redis lock store (started here, port 26379); SQLite
is refused for them. bench/stack.py starts and stops these servers.
--url points it at a web app that is already running instead (then
--tracker-db-url must name that stack's tracker store). Loopback only: it
refuses any other address.

Each citizen gets a conversation id the way the widget does (POST /api/session,
then the X-Conversation-Id header) and holds a real conversation: a topic
question, a follow-up, an eligibility check answered question by question (the
answer chosen by the fact the assistant asks for), and 没帮助, pausing 5-10 s
before each message; then starts another conversation until the step's time is
up. Every citizen sends from its own address (X-Forwarded-For, with the web
app trusting loopback as its proxy), so the per-client rate limits apply to
each citizen as they would behind nginx.

The paced steps are time-bounded (--step-seconds each). Then the closed loop:
the same conversations with no pause at all, at increasing concurrency
(--closed-levels, default 4, 8, 16, 32, 64, 128, --closed-seconds each), until
p95 passes --p95-limit-ms (1 s) or errors appear, or --closed-total-seconds is
spent; a closed-loop citizen takes a new address for each conversation (a new
person at the same seat). The knee: the highest msg/s of a level with p95
within the limit and no errors.

Each message carries a message_id; one answered 503 "retry" or not in time is
sent again (2, 4, 8 s later, same id), as the widget does. Per step and level:
messages/s, p50/p95/p99 latency of /api/chat, errors by kind, resends, and
replies that were the busy apology instead of an answer. Afterwards:
each message the web app accepted (HTTP 200) is read back from the events
table, per conversation and in order: lost, duplicated, or stored although
refused; every Rasa log is scanned for lock errors and tracebacks; and the
resident memory of each server process after the load (when started here).

--compare runs the same paced step (same seed, same citizens, same duration:
--compare-steps users for --compare-seconds, default 100 users for 60 s) and a
short closed-loop probe on (a) SQLite with one Rasa, (b) PostgreSQL with one
Rasa, (c) PostgreSQL + Redis with two Rasa replicas and two action servers
behind nginx, one after another, and prints them side by side with the ratios
b/a (the tracker store) and c/b (the replica). About 12-15 minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
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
from bench.stack import Nginx, Postgres, Redis, lock_errors, spawn, start_servers, stop_processes, wait_http  # noqa: E402

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# Replicas take the next ports up: Rasa 25005, 25006, ...; action servers 25055, 25056, ...
PORTS = {"actions": 25055, "rasa": 25005, "web": 28000, "nginx_rasa": 25080, "nginx_actions": 25081,
         "postgres": 25432, "redis": 26379}

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
# A message the web app answered 503 "retry" (or not in time) is sent again, as the widget
# does, after 2 s, 4 s, 8 s: with the same message_id, so Rasa handles it once.
RESENDS = 3
RESEND_PAUSE_S = 2.0
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
    resent: int = 0
    delivered_after_resend: int = 0

    def summary(self) -> dict:
        lat = self.latencies_ms
        return {"users": self.users, "seconds": round(self.seconds, 1), "messages": len(lat),
                "msgs_per_s": round(len(lat) / self.seconds, 2) if self.seconds else 0.0,
                "p50_ms": round(pct(lat, 50), 1), "p95_ms": round(pct(lat, 95), 1), "p99_ms": round(pct(lat, 99), 1),
                "errors": sum(self.errors.values()), "errors_by_kind": dict(self.errors),
                "apologies": self.apologies, "conversations_completed": self.conversations_done,
                "session_errors": self.session_errors, "resent": self.resent,
                "delivered_after_resend": self.delivered_after_resend}


class Ledger:
    """What each conversation sent: accepted (HTTP 200) and refused messages, in order."""

    def __init__(self):
        self.accepted: dict[str, list[str]] = defaultdict(list)
        self.refused: dict[str, list[str]] = defaultdict(list)


class Citizen:
    def __init__(self, http, web_url, address, step: Step, ledger: Ledger, rng: random.Random, pause, apology,
                 next_address=None):
        self.http, self.web_url, self.step, self.ledger, self.rng = http, web_url, step, ledger, rng
        self.pause, self.apology = pause, apology
        self.headers = {"X-Forwarded-For": address}
        self.next_address = next_address  # closed loop: a new person, a new address, per conversation

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
        """Send one message as the widget does: named with an id that stays the same on
        every resend, and sent again after a pause when the answer is 503 "retry" or
        does not come in time. None when it was never accepted."""
        message_id = secrets.token_hex(12)
        for attempt in range(RESENDS + 1):
            if attempt:
                self.step.resent += 1
                await asyncio.sleep(RESEND_PAUSE_S * 2 ** (attempt - 1) + self.rng.uniform(0, 0.5))
            started = time.perf_counter()
            try:
                async with self.http.post(f"{self.web_url}/api/chat", json={"message": text, "message_id": message_id},
                                          headers=headers) as resp:
                    payload = await resp.json(content_type=None)
                    status = resp.status
            except asyncio.TimeoutError:
                self.step.errors["timeout"] += 1
                continue
            except (aiohttp.ClientError, ValueError) as exc:
                self.step.errors[type(exc).__name__] += 1
                break
            if status != 200:
                self.step.errors[f"http {status}"] += 1
                if status == 503 and isinstance(payload, dict) and payload.get("retry"):
                    continue
                break
            self.step.latencies_ms.append((time.perf_counter() - started) * 1000)
            self.ledger.accepted[sender].append(text)
            if attempt:
                self.step.delivered_after_resend += 1
            messages = payload.get("messages") or []
            if not messages or any(m.get("text") == self.apology for m in messages):
                self.step.apologies += 1
            return messages
        self.ledger.refused[sender].append(text)
        return None

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
            if self.next_address is not None:
                self.headers = {"X-Forwarded-For": self.next_address()}
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


class Addresses:
    """Distinct documentation-range addresses (198.18.0.0/15), one per citizen."""

    def __init__(self):
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        n = self.n
        return f"198.{18 + n // 65536 % 2}.{n // 256 % 256}.{n % 256}"


async def run_step(http, web_url, users, seconds, pause, ledger, rng, apology, addresses: Addresses,
                   closed: bool = False) -> Step:
    """`users` citizens for `seconds`; paced (pauses between messages, arrivals
    spread over the first pause) or closed (no pause, a new address per conversation)."""
    step = Step(users, seconds)
    started = time.monotonic()
    deadline = started + seconds
    citizens = [Citizen(http, web_url, addresses(), step, ledger, random.Random(rng.random()), pause, apology,
                        next_address=addresses if closed else None) for _ in range(users)]
    # Arrivals spread over the first pause, as people open the page one after another.
    await asyncio.gather(*(c.run(deadline, rng.uniform(0, pause[1])) for c in citizens))
    step.seconds = max(seconds, time.monotonic() - started)
    return step


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


class Topology:
    """The servers of one run, on loopback: tracker store (a SQLite file or a
    throwaway PostgreSQL), Redis for the locks when Rasa has replicas, action
    server(s), Rasa replica(s), nginx in front of them when there is more than
    one of either, and the web app, as scripts/serve.sh and `python -m bot.web` start them."""

    def __init__(self, tmp: Path, tracker: str = "sqlite", rasa_replicas: int = 1, action_replicas: int = 1,
                 tracker_db_url: str | None = None):
        self.tmp, self.tracker = tmp, tracker
        self.rasa_ports = [PORTS["rasa"] + i for i in range(rasa_replicas)]
        self.action_ports = [PORTS["actions"] + i for i in range(action_replicas)]
        self.tracker_db_url = tracker_db_url
        self.pg: Postgres | None = None
        self.redis: Redis | None = None
        self.nginx: Nginx | None = None
        self.procs: dict[str, subprocess.Popen] = {}
        self.web_url = f"http://127.0.0.1:{PORTS['web']}"

    def describe(self) -> str:
        tracker = "PostgreSQL" if self.tracker == "postgres" else "SQLite"
        locks = "Redis locks" if len(self.rasa_ports) > 1 else "in-memory locks"
        front = " behind nginx" if self.nginx or len(self.rasa_ports) > 1 or len(self.action_ports) > 1 else ""
        return (f"{tracker}, {locks}, {len(self.rasa_ports)} Rasa + {len(self.action_ports)} action server(s)"
                f"{front}, 1 web app")

    def start(self) -> None:
        if self.tracker == "postgres" and not self.tracker_db_url:
            self.pg = Postgres(port=PORTS["postgres"])
            self.pg.start()
            self.tracker_db_url = self.pg.url
        self.tracker_db_url = self.tracker_db_url or f"sqlite:///{self.tmp / 'tracker.db'}"
        if len(self.rasa_ports) > 1:
            self.redis = Redis(port=PORTS["redis"])
            self.redis.start()
        actions_url = f"http://127.0.0.1:{self.action_ports[0]}"
        rasa_url = f"http://127.0.0.1:{self.rasa_ports[0]}"
        if len(self.rasa_ports) > 1 or len(self.action_ports) > 1:
            self.nginx = Nginx(self.rasa_ports, self.action_ports, rasa_port=PORTS["nginx_rasa"],
                               actions_port=PORTS["nginx_actions"])
            self.nginx.start()
            actions_url, rasa_url = self.nginx.actions_url, self.nginx.rasa_url
        dialect = "postgresql" if self.tracker_db_url.startswith("postgresql") else "sqlite"
        env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "VAR_DIR": str(self.tmp),
               "ACTION_SERVER_URL": actions_url, "RASA_URL": rasa_url, "RASA_TOKEN": secrets.token_urlsafe(24),
               "TRACKER_DB_DIALECT": dialect, "TRACKER_DB_URL": self.tracker_db_url,
               "LOCK_STORE_TYPE": "redis" if self.redis else "in_memory",
               "REVIEW_DB_URL": f"sqlite:///{self.tmp / 'review.db'}",
               "WEB_HOST": "127.0.0.1", "WEB_PORT": str(PORTS["web"]),
               # The load generator plays the reverse proxy: its X-Forwarded-For names each citizen.
               "TRUSTED_PROXIES": "127.0.0.1"}
        if self.redis:
            env.update({"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(self.redis.port)})
        # Loopback only; one process per server (replicas are separate processes); the
        # web app's rate limits in its own memory: nothing from the caller's shell changes that.
        for inherited in ("RASA_INTERFACE", "ACTION_SERVER_INTERFACE", "SANIC_WORKERS", "WEB_WORKERS",
                          "RATE_LIMIT_REDIS_URL"):
            env.pop(inherited, None)
        servers = [("actions", p) for p in self.action_ports] + [("rasa", p) for p in self.rasa_ports]
        # All at once: the Rasa replicas load the model in parallel.
        for (kind, port), proc in zip(servers, start_servers(servers, env, self.tmp, 420)):
            self.procs[f"{kind}-{port}"] = proc
        self.procs["web"] = spawn([sys.executable, "-m", "bot.web"], env, self.tmp / "web.log")
        wait_http({f"{self.web_url}/ready": self.procs["web"]}, 120, self.tmp)

    def rasa_logs(self) -> list[Path]:
        return [self.tmp / f"rasa-{p}.log" for p in self.rasa_ports]

    def rss_mib(self) -> dict:
        """Resident memory of each server: its process tree (Rasa's workers, PostgreSQL's backends included)."""
        procs = dict(self.procs)
        for name, server in (("postgres", self.pg), ("redis", self.redis), ("nginx", self.nginx)):
            if server is not None and server.proc is not None:
                procs[name] = server.proc
        out = {}
        for name, proc in procs.items():
            total_kb = 0
            for pid in tree(proc.pid):
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            total_kb += int(line.split()[1])
                except OSError:
                    pass
            out[name] = round(total_kb / 1024)
        return out

    def stop(self) -> None:
        stop_processes(list(self.procs.values()))
        for server in (self.nginx, self.redis, self.pg):
            if server is not None:
                server.stop()


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


async def warm_up(web_url: str, apology: str, rasa_ports: list[int]) -> None:
    """Before measuring: Rasa loads the segmenter's dictionary on its first message
    (seconds), in each replica, so each replica gets two messages of its own
    (their action calls reach the action servers in turn), then one conversation
    goes through the web app. Not counted, not checked."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        for port in rasa_ports:
            for text in ("你好", PLANS[0][0]):
                try:
                    async with http.post(f"http://127.0.0.1:{port}/webhooks/rest/webhook",
                                         json={"sender": f"warm-up-{port}", "message": text}) as resp:
                        await resp.read()
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    pass
        citizen = Citizen(http, web_url, "198.19.255.254", Step(1, 0), Ledger(), random.Random(0), (0, 0), apology)
        conversation = await citizen.new_conversation()
        if conversation is not None:
            for text in ("你好", PLANS[0][0]):
                await citizen.say(*conversation, text)


def show(kind: str, s: dict) -> None:
    who = f"{s['users']:>4} users " if kind == "paced" else f"{s['users']:>4} at once"
    print(f"{kind:<6} {who} {s['seconds']:>6.1f} s  {s['messages']:>5} msgs  {s['msgs_per_s']:>6.2f} msg/s  "
          f"p50 {s['p50_ms']:>7.1f}  p95 {s['p95_ms']:>7.1f}  p99 {s['p99_ms']:>7.1f} ms  "
          f"errors {s['errors']} {s['errors_by_kind'] or ''}  apologies {s['apologies']}  resent {s['resent']} "
          f"conversations {s['conversations_completed']}  load avg {s['load_avg_1m']}", flush=True)


async def drive(web_url: str, args, ledger: Ledger, rasa_ports: list[int]) -> dict:
    """The paced steps, then the closed loop up to the knee."""
    settings = load_settings()
    apology = busy_apology(settings)
    rng = random.Random(args.seed)
    addresses = Addresses()
    await warm_up(web_url, apology, rasa_ports)
    # One client session for the whole run; enough connections for every citizen at once.
    most = max(args.steps + args.closed_levels + [1])
    connector = aiohttp.TCPConnector(limit=most + 64, limit_per_host=0)
    paced, closed = [], []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30), connector=connector) as http:
        for users in args.steps:
            step = await run_step(http, web_url, users, args.step_seconds, tuple(args.pause), ledger, rng, apology,
                                  addresses)
            summary = step.summary()
            summary["load_avg_1m"] = round(os.getloadavg()[0], 2)  # the machine is shared: say how busy it was
            paced.append(summary)
            show("paced", summary)
        started = time.monotonic()
        stopped = "every level run"
        for users in args.closed_levels:
            if time.monotonic() - started + args.closed_seconds > args.closed_total_seconds:
                stopped = f"time bound ({args.closed_total_seconds:.0f} s) reached"
                break
            step = await run_step(http, web_url, users, args.closed_seconds, (0.0, 0.0), ledger, rng, apology,
                                  addresses, closed=True)
            summary = step.summary()
            summary["load_avg_1m"] = round(os.getloadavg()[0], 2)
            closed.append(summary)
            show("closed", summary)
            if summary["errors"]:
                stopped = f"errors at {users} at once"
                break
            if not summary["p95_ms"] <= args.p95_limit_ms:
                stopped = f"p95 over {args.p95_limit_ms:.0f} ms at {users} at once"
                break
    within = [s for s in closed if s["errors"] == 0 and s["p95_ms"] <= args.p95_limit_ms]
    knee = max(within, key=lambda s: s["msgs_per_s"], default=None)
    if closed:
        print(f"closed loop stopped: {stopped}; knee: " + (
            f"{knee['msgs_per_s']:.2f} msg/s at {knee['users']} at once (p95 {knee['p95_ms']:.0f} ms)" if knee
            else f"none (no level had p95 <= {args.p95_limit_ms:.0f} ms without errors)"), flush=True)
    return {"steps": paced, "closed_loop": closed, "closed_loop_stopped": stopped if closed else None, "knee": knee}


def run_once(args, tracker: str, rasa_replicas: int, action_replicas: int) -> dict:
    """One topology: start it (unless --url), drive the load, check the store, stop it."""
    topology = None
    tmp = Path(tempfile.mkdtemp(prefix="load-bench-"))
    ledger = Ledger()
    finished = False
    try:
        web_url, tracker_db_url, rasa_ports = args.url, args.tracker_db_url, []
        if web_url is None:
            topology = Topology(tmp, tracker, rasa_replicas, action_replicas, args.tracker_db_url)
            print(f"starting {topology.describe()} on loopback ...", flush=True)
            started = time.monotonic()
            topology.start()
            print(f"ready after {time.monotonic() - started:.0f} s; resident memory (MiB): {topology.rss_mib()}",
                  flush=True)
            web_url, tracker_db_url, rasa_ports = topology.web_url, topology.tracker_db_url, topology.rasa_ports
        check_loopback(web_url)
        print(f"load: paced steps {args.steps} users, {args.step_seconds:.0f} s each, pauses "
              f"{args.pause[0]:.0f}-{args.pause[1]:.0f} s; closed loop {args.closed_levels} at once, "
              f"{args.closed_seconds:.0f} s each (at most {args.closed_total_seconds:.0f} s); against {web_url}",
              flush=True)
        out = asyncio.run(drive(web_url, args, ledger, rasa_ports))
        check = verify(tracker_db_url, ledger)
        print(f"tracker store: {check['accepted_messages']} accepted messages in {check['conversations']} conversations; "
              f"{check['stored_user_messages']} stored; lost {check['lost']}, duplicated {check['duplicated']}, "
              f"conversations out of order {check['conversations_out_of_order']}, "
              f"stored although refused {check['stored_although_refused']}", flush=True)
        report = {**out, "tracker_check": check, "pause_s": list(args.pause), "p95_limit_ms": args.p95_limit_ms}
        if topology:
            report["topology"] = {"description": topology.describe(), "tracker": tracker,
                                  "rasa_replicas": rasa_replicas, "action_replicas": action_replicas,
                                  "nginx": topology.nginx is not None}
            report["lock_errors"] = lock_errors(topology.rasa_logs())
            print(f"Rasa logs: {sum(report['lock_errors'].values())} lock errors or tracebacks "
                  f"{report['lock_errors']}", flush=True)
            if topology.nginx:
                report["served_by"] = dict(topology.nginx.served_by())
                print(f"nginx: requests per replica {report['served_by']}", flush=True)
            report["rss_mib_after_load"] = topology.rss_mib()
            print(f"resident memory after the load (MiB): {report['rss_mib_after_load']}", flush=True)
            report["cpu_count"] = os.cpu_count()
        finished = True
        return report
    finally:
        if topology:
            topology.stop()
        if finished:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"load_bench: stopped early; the servers' logs are kept in {tmp}", file=sys.stderr, flush=True)


def sound(report: dict) -> bool:
    check = report["tracker_check"]
    return check["lost"] == 0 and check["duplicated"] == 0 and check["conversations_out_of_order"] == 0


COMPARED = {"a": ("SQLite, 1 Rasa", "sqlite", 1, 1),
            "b": ("PostgreSQL, 1 Rasa", "postgres", 1, 1),
            "c": ("PostgreSQL + Redis, 2 Rasa + 2 actions, nginx", "postgres", 2, 2)}


def figures(report: dict) -> dict:
    paced = report["steps"][0] if report["steps"] else {}
    knee = report["knee"] or {}
    check = report["tracker_check"]
    return {"paced_msgs_per_s": paced.get("msgs_per_s"), "paced_p95_ms": paced.get("p95_ms"),
            "paced_errors": paced.get("errors"), "paced_apologies": paced.get("apologies"),
            "knee_msgs_per_s": knee.get("msgs_per_s"), "knee_p95_ms": knee.get("p95_ms"),
            "knee_at_once": knee.get("users"),
            "errors": sum(s["errors"] for s in report["steps"] + report["closed_loop"]),
            "lost": check["lost"], "duplicated": check["duplicated"],
            "out_of_order": check["conversations_out_of_order"],
            "lock_errors": sum(report.get("lock_errors", {}).values()),
            "rss_mib": sum(report.get("rss_mib_after_load", {}).values())}


def ratio(x, y):
    return round(x / y, 2) if isinstance(x, (int, float)) and isinstance(y, (int, float)) and y else None


def compare(args) -> dict:
    reports = {}
    for key, (label, tracker, rasa, actions) in COMPARED.items():
        print(f"\n=== ({key}) {label} ===", flush=True)
        reports[key] = run_once(args, tracker, rasa, actions)
    rows = {k: figures(r) for k, r in reports.items()}
    columns = [("paced_msgs_per_s", "paced msg/s"), ("paced_p95_ms", "paced p95 ms"), ("paced_errors", "paced err"),
               ("knee_msgs_per_s", "knee msg/s"), ("knee_p95_ms", "knee p95 ms"), ("knee_at_once", "knee at once"),
               ("errors", "errors"), ("lost", "lost"), ("duplicated", "dup"), ("out_of_order", "order"),
               ("lock_errors", "lock err"), ("rss_mib", "RSS MiB")]
    print(f"\n{args.steps[0]} paced users for {args.step_seconds:.0f} s, then closed loop {args.closed_levels} "
          f"({args.closed_seconds:.0f} s each); knee = highest msg/s with p95 <= {args.p95_limit_ms:.0f} ms, no errors")
    print(f"{'':<48}" + "".join(f"{title:>13}" for _, title in columns))
    for key, row in rows.items():
        print(f"({key}) {COMPARED[key][0]:<44}" + "".join(f"{'-' if row[c] is None else row[c]:>13}" for c, _ in columns))
    ratios = {}
    for name, top, bottom in (("b/a (tracker store)", "b", "a"), ("c/b (replicas)", "c", "b")):
        ratios[name] = {c: ratio(rows[top][c], rows[bottom][c]) for c in
                        ("paced_msgs_per_s", "paced_p95_ms", "knee_msgs_per_s", "knee_p95_ms", "rss_mib")}
        ratios[name].update({c: [rows[bottom][c], rows[top][c]] for c in
                             ("errors", "lost", "duplicated", "out_of_order", "lock_errors")})
        print(f"{name:<22} knee msg/s x{ratios[name]['knee_msgs_per_s']}  paced msg/s "
              f"x{ratios[name]['paced_msgs_per_s']}  paced p95 x{ratios[name]['paced_p95_ms']}  "
              f"knee p95 x{ratios[name]['knee_p95_ms']}  errors {ratios[name]['errors'][0]} -> "
              f"{ratios[name]['errors'][1]}  lost {ratios[name]['lost'][0]} -> {ratios[name]['lost'][1]}  "
              f"duplicated {ratios[name]['duplicated'][0]} -> {ratios[name]['duplicated'][1]}")
    return {"compare": {k: {"label": COMPARED[k][0], **rows[k]} for k in rows}, "ratios": ratios,
            "runs": reports, "seed": args.seed}


def levels(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="one paced step of 10 users for 30 s, closed loop 4 and 8 at once for 10 s each")
    parser.add_argument("--steps", default="10,50,100,200,400", help="concurrent paced users per step")
    parser.add_argument("--step-seconds", type=float, default=90, help="length of each paced step")
    parser.add_argument("--pause", type=float, nargs=2, default=(5.0, 10.0), metavar=("MIN", "MAX"))
    parser.add_argument("--closed-levels", default="4,8,16,32,64,128",
                        help="closed loop: citizens at once, without pauses, per level ('' for none)")
    parser.add_argument("--closed-seconds", type=float, default=30, help="length of each closed-loop level")
    parser.add_argument("--closed-total-seconds", type=float, default=300, help="the closed loop's time bound")
    parser.add_argument("--p95-limit-ms", type=float, default=1000, help="the closed loop stops past this p95")
    parser.add_argument("--tracker", choices=("sqlite", "postgres"),
                        help="tracker store started here (default: sqlite; postgres with --rasa-replicas >= 2)")
    parser.add_argument("--rasa-replicas", type=int, default=1, help="separate Rasa processes behind nginx")
    parser.add_argument("--action-replicas", type=int, help="action servers (default: 2 with Rasa replicas, else 1)")
    parser.add_argument("--compare", action="store_true",
                        help="(a) SQLite 1 Rasa, (b) PostgreSQL 1 Rasa, (c) PostgreSQL + Redis 2+2 behind nginx")
    parser.add_argument("--compare-steps", type=int, default=100, help="--compare: paced users")
    parser.add_argument("--compare-seconds", type=float, default=60, help="--compare: the paced step's length")
    parser.add_argument("--url", help="a running web app on loopback (default: start one here)")
    parser.add_argument("--tracker-db-url", help="tracker store to verify (default: the one started here)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    args.steps = levels(args.steps)
    args.closed_levels = levels(args.closed_levels)
    if args.quick:
        args.steps, args.step_seconds = [10], 30
        args.closed_levels, args.closed_seconds, args.closed_total_seconds = [4, 8], 10, 30
    if args.rasa_replicas < 1 or (args.action_replicas is not None and args.action_replicas < 1):
        parser.error("--rasa-replicas and --action-replicas must be at least 1")
    if args.action_replicas is None:
        args.action_replicas = 2 if args.rasa_replicas >= 2 else 1
    if args.tracker is None:
        args.tracker = "postgres" if args.rasa_replicas >= 2 else "sqlite"
    if args.rasa_replicas >= 2 and args.tracker == "sqlite":
        parser.error("--rasa-replicas >= 2 needs --tracker postgres: replicas, like separate pods, share one "
                     "tracker store and a Redis lock store, and a SQLite file is neither shared nor locked across them")
    if args.url and not args.tracker_db_url:
        parser.error("--url needs --tracker-db-url (the running stack's tracker store) for the check")
    if args.compare:
        if args.url or args.tracker_db_url:
            parser.error("--compare starts its own servers: no --url or --tracker-db-url")
        if not args.quick:
            args.steps, args.step_seconds = [args.compare_steps], args.compare_seconds
            args.closed_levels, args.closed_seconds, args.closed_total_seconds = [4, 8, 16, 32], 15, 75
    if args.url is None and not (ROOT / "models" / "ordos.tar.gz").exists():
        sys.exit("load_bench: no model at models/ordos.tar.gz (bash scripts/train.sh)")
    raise_open_files_limit()

    if args.compare:
        report = compare(args)
        ok = all(sound(r) for r in report["runs"].values())
    else:
        report = run_once(args, args.tracker, args.rasa_replicas, args.action_replicas)
        ok = sound(report)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    sys.exit(0 if ok else 1)


def raise_open_files_limit() -> None:
    """Hundreds of citizens hold a connection each: as many open files as allowed (the servers inherit it)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))
        except (ValueError, OSError):
            pass


if __name__ == "__main__":
    main()
