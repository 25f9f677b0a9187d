"""The web app as several worker processes (WEB_WORKERS=2) counting rate limits in Redis.

The real app (python -m bot.web) against a throwaway redis-server and the
Rasa stub. Which worker accepted a connection is read from /proc (the
process holding the server side of that TCP connection), so the app exposes
nothing new. Shown: two workers answer; a client's per-endpoint limit holds
across them (over fresh connections, the first L requests pass and every one
after is refused with Retry-After, by either worker); a conversation id issued by one worker
is accepted by the other (one signing key, made once in VAR_DIR).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest
import redis
from rasa_stub import RasaStub
from redis_server import redis_server
from web_server import web_app

from bot.web.conversations import HEADER

LIMIT = 8      # requests per minute per client on each API endpoint
LISTEN, ESTABLISHED = "0A", "01"


def tcp_sockets() -> list[tuple[int, int, str, int]]:
    """(local port, remote port, state, inode) of every TCP socket of this machine."""
    rows = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            rows.append((int(f[1].rsplit(":", 1)[1], 16), int(f[2].rsplit(":", 1)[1], 16), f[3], int(f[9])))
    return rows


def holders(inode: int, pids) -> set[int]:
    target = f"socket:[{inode}]"
    found = set()
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    found.add(int(pid))
                    break
            except OSError:
                continue
    return found


def parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


class Workers:
    """The web app's processes, found by its listening port."""

    def __init__(self, port: int):
        self.port = port
        (listening,) = [inode for lport, _r, state, inode in tcp_sockets() if lport == port and state == LISTEN]
        every = holders_all(listening)
        self.workers = {pid for pid in every if parent(pid) in every}
        self.main = every - self.workers

    def serving(self, client_port: int) -> int:
        """The worker holding the server side of the connection from `client_port`."""
        inodes = [inode for lport, rport, state, inode in tcp_sockets()
                  if lport == self.port and rport == client_port and state == ESTABLISHED and inode]
        assert len(inodes) == 1, inodes
        (pid,) = holders(inodes[0], self.workers)
        return pid


def holders_all(inode: int) -> set[int]:
    return holders(inode, [p for p in os.listdir("/proc") if p.isdigit()])


def served_by(base: str, workers: Workers, method: str, path: str, **kwargs) -> tuple[httpx.Response, int]:
    """One request over a new connection: the response, and the worker that answered it."""
    with httpx.Client(base_url=base, timeout=30) as client:
        response = client.request(method, path, **kwargs)
        client_port = response.extensions["network_stream"].get_extra_info("client_addr")[1]
        return response, workers.serving(client_port)   # while the connection is still open


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("workers")
    stub = RasaStub().start()
    try:
        with redis_server() as url:
            rate_url = url + "/2"
            # No SECRET_KEY: the key made once in VAR_DIR must be every worker's.
            with web_app(tmp, RASA_URL=stub.url, ACTION_SERVER_URL=stub.url, SECRET_KEY="", WEB_WORKERS="2",
                         RATE_LIMIT_REDIS_URL=rate_url, RATE_LIMIT_PER_MINUTE="1000",
                         API_RATE_LIMIT_PER_MINUTE=str(LIMIT)) as base:
                yield base, Workers(int(base.rsplit(":", 1)[1])), redis.Redis.from_url(rate_url)
    finally:
        stub.stop()


def test_two_worker_processes_answer(stack):
    base, workers, _db = stack
    assert len(workers.main) == 1 and len(workers.workers) == 2, (workers.main, workers.workers)
    seen = set()
    for _ in range(40):   # not rate limited: the page itself
        response, pid = served_by(base, workers, "GET", "/")
        assert response.status_code == 200
        seen.add(pid)
        if seen == workers.workers:
            break
    assert seen == workers.workers


def test_a_clients_limit_holds_across_workers(stack):
    """Once one client has spent its allowance, every worker refuses it. The kernel
    decides which worker accepts a connection, so requests go on (over new
    connections) until both workers have refused this client at least once."""
    base, workers, db = stack
    started = time.monotonic()
    results = [served_by(base, workers, "GET", "/api/search", params={"q": "产假多少天"}) for _ in range(LIMIT)]
    while len({pid for r, pid in results[LIMIT:]}) < 2 and len(results) < LIMIT + 150:
        results.append(served_by(base, workers, "GET", "/api/search", params={"q": "产假多少天"}))
    refill_s = 60 / LIMIT
    assert time.monotonic() - started < refill_s, "too slow to test: the allowance refilled meanwhile"
    statuses = [r.status_code for r, _pid in results]
    assert statuses == [200] * LIMIT + [429] * (len(results) - LIMIT)
    for response, _pid in results[LIMIT:]:
        assert 1 <= int(response.headers["retry-after"]) <= 60 // LIMIT + 1
        assert response.json()["retry"] is True
    refused_by = {pid for _r, pid in results[LIMIT:]}
    assert refused_by == workers.workers, f"only {refused_by} of {workers.workers} took a connection"
    assert db.exists("ordos:ratelimit:search:127.0.0.1")


def test_a_conversation_started_on_one_worker_goes_on_on_the_other(stack):
    base, workers, _db = stack
    ids = {}
    for _ in range(LIMIT):
        response, pid = served_by(base, workers, "POST", "/api/session")
        assert response.status_code == 201, response.text
        ids.setdefault(pid, response.json()["conversation_id"])
        if len(ids) == 2:
            break
    assert ids, "no conversation could be started"
    issued_by, conversation = next(iter(ids.items()))
    for _ in range(40):
        response, pid = served_by(base, workers, "POST", "/api/chat", json={"message": "产假多少天"},
                                  headers={HEADER: conversation})
        if pid != issued_by:
            assert response.status_code == 200, response.text
            assert response.json()["messages"]
            return
    pytest.fail("no chat request reached the other worker")


def test_background_work_is_done_by_one_process_at_a_time(tmp_path):
    """The retention purge and the review scan run in every worker; each round, one does the work."""
    import subprocess
    import sys

    from bot.config import ROOT
    from bot.web.background import alone

    other = [sys.executable, "-c", "import sys; from pathlib import Path; from bot.web.background import alone\n"
             f"with alone(Path({str(tmp_path)!r}), 'retention') as mine: print(mine)"]
    with alone(tmp_path, "retention") as first:
        assert first
        assert subprocess.run(other, cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip() == "False"
        with alone(tmp_path, "review-maintenance") as different_work:
            assert different_work
    assert subprocess.run(other, cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip() == "True"


def test_deployments_of_several_web_processes_count_rate_limits_in_redis():
    """Compose (2 workers) and Kubernetes (2 replicas) name a Redis for the rate limits, not Rasa's lock database."""
    import yaml

    from bot.config import ROOT, check_redis_url

    deploy = ROOT / "deploy"
    lock_db = yaml.safe_load((ROOT / "endpoints.yml").read_text(encoding="utf-8"))["lock_store"]["db"]
    compose = yaml.safe_load((deploy / "compose.yaml").read_text(encoding="utf-8"))["services"]["web"]["environment"]
    example = dict(line.split("=", 1) for line in (deploy / "example.env").read_text(encoding="utf-8").splitlines()
                   if line and not line.startswith("#"))
    assert compose["WEB_WORKERS"] == "${WEB_WORKERS:-%s}" % example["WEB_WORKERS"]
    assert compose["RATE_LIMIT_REDIS_URL"] == "${RATE_LIMIT_REDIS_URL:-%s}" % example["RATE_LIMIT_REDIS_URL"]
    check_redis_url("RATE_LIMIT_REDIS_URL", example["RATE_LIMIT_REDIS_URL"])
    assert example["RATE_LIMIT_REDIS_URL"].startswith("redis://redis:6379/")
    assert not example["RATE_LIMIT_REDIS_URL"].endswith(f"/{lock_db}")

    docs = list(yaml.safe_load_all((deploy / "k8s" / "web.yaml").read_text(encoding="utf-8")))
    (web,) = [d for d in docs if d["kind"] == "Deployment"]
    (container,) = web["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert web["spec"]["replicas"] >= 2
    key = env["RATE_LIMIT_REDIS_URL"]["secretKeyRef"]["key"]
    secret = yaml.safe_load((deploy / "k8s" / "secret.example.yaml").read_text(encoding="utf-8"))["stringData"]
    check_redis_url("RATE_LIMIT_REDIS_URL", secret[key])
    assert not secret[key].endswith(f"/{lock_db}")
