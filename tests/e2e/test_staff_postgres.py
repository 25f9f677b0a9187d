"""Staff accounts, sessions, lock-out and the audit log on PostgreSQL: the same
code as on SQLite, only STAFF_DB_URL changes. Starts a throwaway PostgreSQL."""
import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from bot.auth import MAX_FAILURES, LoginGuard, SessionStore
from bot.config import ROOT
from bot.users import StaffStore

pytestmark = pytest.mark.e2e

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None) \
    if Path("/usr/lib/postgresql").exists() else None
PASSWORD = "correct horse battery"


def as_postgres(args):
    return (["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []) + args


@pytest.fixture(scope="module")
def pg_url():
    if PG_BIN is None:
        pytest.fail("PostgreSQL is not installed (make setup installs it)")
    tmp = Path(tempfile.mkdtemp(prefix="ordos-staff-pg-"))   # PostgreSQL runs as its own user
    tmp.chmod(0o755)
    data = tmp / "pg"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres")
        shutil.chown(data, "postgres")
    subprocess.run(as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "staff", "--auth=trust"]), check=True,
                   capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pg = subprocess.Popen(as_postgres([str(PG_BIN / "postgres"), "-D", str(data), "-p", str(port), "-k", str(tmp),
                                       "-c", "listen_addresses=127.0.0.1"]),
                          stdout=(tmp / "pg.log").open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for _ in range(60):
            if subprocess.run([str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)]).returncode == 0:
                break
            time.sleep(0.5)
        subprocess.run([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "staff", "staff"],
                       check=True)
        yield f"postgresql://staff@127.0.0.1:{port}/staff"
    finally:
        os.killpg(pg.pid, signal.SIGTERM)
        pg.wait(15)
        shutil.rmtree(tmp, ignore_errors=True)


def test_accounts_cli_sessions_and_lock_out_on_postgresql(pg_url, tmp_path):
    env = {**os.environ, "STAFF_DB_URL": pg_url, "VAR_DIR": str(tmp_path)}
    made = subprocess.run([sys.executable, "-m", "bot.users", "add", "pat", "--role", "policy"], input=PASSWORD,
                          text=True, capture_output=True, cwd=ROOT, env=env, timeout=120)
    assert made.returncode == 0, made.stderr
    store = StaffStore(pg_url)
    user = store.verify("pat", PASSWORD)
    assert user["role"] == "policy" and store.verify("pat", "wrong password") is None

    sessions = SessionStore(store, dt.timedelta(hours=8))
    token, csrf = sessions.create(user, "10.1.1.1")
    session, _ = sessions.lookup(token)
    assert (session.name, session.csrf_token) == ("pat", csrf)
    store.set_disabled("pat", True)
    assert sessions.lookup(token) == (None, False)

    guard = LoginGuard(store)
    for _ in range(MAX_FAILURES):
        guard.record("pat", "10.1.1.2", ok=False)
    assert guard.locked("pat", "10.1.1.3") and guard.locked("someone", "10.1.1.2")

    store.audit("pat", "flag", "paternity_leave", ip="10.1.1.1", detail={"flag": "wrong"})
    actions = [e["action"] for e in store.audit_entries()]
    assert actions == ["flag", "user_add"]
