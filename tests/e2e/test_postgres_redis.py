"""The same code on PostgreSQL (tracker store and review store) with a Redis
lock store and two Rasa worker processes (RASA_WORKERS=2 in `make run`): only
environment settings change. Starts throwaway local servers."""
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import BIN, MODEL, start, stop, wait_until

pytestmark = pytest.mark.e2e

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None) \
    if Path("/usr/lib/postgresql").exists() else None
PG_PORT, REDIS_PORT, RASA_PORT = 15432, 16379, 15006


def run_as_postgres(args, **kw):
    # initdb and postgres refuse to run as root.
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--"] + args
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def servers(tmp_path_factory, stack):
    if PG_BIN is None or not shutil.which("redis-server"):
        pytest.fail("PostgreSQL and Redis are not installed (make setup installs them)")
    # Not under pytest's tmp folder: that one is private to root, and
    # PostgreSQL runs as its own user.
    tmp = Path(tempfile.mkdtemp(prefix="ordos-scaleout-"))
    tmp.chmod(0o755)
    data = tmp / "pg"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres")
        shutil.chown(data, "postgres")
    run_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "rasa", "--auth=trust"])
    pg_args = [str(PG_BIN / "postgres"), "-D", str(data), "-p", str(PG_PORT), "-k", str(tmp), "-c", "listen_addresses=127.0.0.1"]
    pg = subprocess.Popen((["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []) + pg_args,
                          stdout=(tmp / "pg.log").open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    redis = subprocess.Popen(["redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"],
                             stdout=(tmp / "redis.log").open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    for _ in range(60):
        if subprocess.run([str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(PG_PORT)]).returncode == 0:
            break
        time.sleep(0.5)
    subprocess.run([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "rasa", "rasa"], check=True)
    url = f"postgresql://rasa@127.0.0.1:{PG_PORT}/rasa"
    env = {**stack.env, "TRACKER_DB_DIALECT": "postgresql", "TRACKER_DB_URL": url, "REVIEW_DB_URL": url,
           "LOCK_STORE_TYPE": "redis", "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(REDIS_PORT),
           "SANIC_WORKERS": "2"}
    actions = start([str(BIN / "rasa"), "run", "actions", "--actions", "actions.actions", "--port", "15056"],
                    {**env, "ACTION_SERVER_URL": "http://127.0.0.1:15056", "SANIC_HOST": "127.0.0.1"},
                    tmp / "actions.log")
    rasa = start([str(BIN / "rasa"), "run", "--model", str(MODEL), "--endpoints", "endpoints.yml",
                  "--credentials", "credentials.yml", "--port", str(RASA_PORT), "--interface", "127.0.0.1"],
                 {**env, "ACTION_SERVER_URL": "http://127.0.0.1:15056"}, tmp / "rasa.log")
    try:
        wait_until("http://127.0.0.1:15056/health", 120, actions)
        wait_until(f"http://127.0.0.1:{RASA_PORT}/", 240, rasa)
        yield url
    finally:
        for proc in (rasa, actions, redis):
            stop(proc)
        stop(pg)
        shutil.rmtree(tmp, ignore_errors=True)


def test_conversation_is_stored_in_postgres_with_a_redis_lock(servers):
    import sqlalchemy as sa

    sender = "pg-" + uuid.uuid4().hex
    hook = f"http://127.0.0.1:{RASA_PORT}/webhooks/rest/webhook"
    answer = requests.post(hook, json={"sender": sender, "message": "育儿假有几天"}, timeout=30).json()
    assert "10天育儿假" in " ".join(m.get("text", "") for m in answer)
    requests.post(hook, json={"sender": sender, "message": "明天天气怎么样，13912345678"}, timeout=30)
    engine = sa.create_engine(servers)
    with engine.connect() as conn:
        events = conn.execute(sa.text("select count(*) from events where sender_id = :s"), {"s": sender}).scalar()
        questions = [r[0] for r in conn.execute(sa.text("select question from review_items"))]
        stored = " ".join(r[0] for r in conn.execute(sa.text("select data from events where sender_id = :s"),
                                                     {"s": sender}))
    engine.dispose()
    assert events > 4
    assert any("天气" in q for q in questions)
    assert "13912345678" not in stored and "13912345678" not in " ".join(questions)


def test_two_workers_share_one_conversation_without_losing_or_doubling_events(servers):
    """Messages of one conversation land on either worker; the Redis lock orders
    them, and each message's events are stored once, across a session split."""
    from concurrent.futures import ThreadPoolExecutor

    import sqlalchemy as sa

    sender = "workers-" + uuid.uuid4().hex
    hook = f"http://127.0.0.1:{RASA_PORT}/webhooks/rest/webhook"
    questions = ["育儿假有几天", "男方护理假几天", "托育补贴怎么领", "谢谢"] * 3  # 12: past the 10-message session split

    def send(text):
        return requests.post(hook, json={"sender": sender, "message": text}, timeout=60).json()

    with ThreadPoolExecutor(max_workers=4) as pool:  # several at once for the same conversation
        replies = list(pool.map(send, questions))
    assert all(replies), replies
    engine = sa.create_engine(servers)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select type_name, data from events where sender_id = :s order by id"),
                            {"s": sender}).all()
    engine.dispose()
    import json

    users = [json.loads(d)["text"] for t, d in rows if t == "user"]
    assert sorted(users) == sorted(questions)  # every message stored exactly once
    sessions = sum(t == "session_started" for t, _ in rows)
    timestamps = [json.loads(d)["timestamp"] for _, d in rows]
    assert len(set(timestamps)) == len(timestamps)  # no event written twice
    # The Rasa server really runs two workers (the main process and its two children).
    procs = subprocess.run(["pgrep", "-f", f"rasa run --model .* --port {RASA_PORT}"], capture_output=True, text=True)
    assert len(procs.stdout.split()) >= 3, procs.stdout
    if sessions != 2:
        # Known open defect (issue 13): once, on a loaded machine, a third session_started was
        # stored for a conversation sent to two workers at once; nothing was lost or doubled.
        pytest.xfail(f"{sessions} sessions stored instead of 2 (open: session start across workers)")
    assert sessions == 2
