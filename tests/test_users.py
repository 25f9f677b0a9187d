"""Staff accounts and `python -m bot.users`: the password comes from a prompt
or stdin (never the command line) and is stored as an argon2id hash."""
import io
import os
import sqlite3
import subprocess
import sys

import pytest
from argon2 import PasswordHasher

from bot.config import ROOT
from bot.users import AccountError, StaffStore, main, role_at_least

PASSWORD = "correct horse battery"
# Fast parameters for tests only; the store's default is argon2-cffi's RFC 9106 profile.
FAST = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite:///{tmp_path / 'staff.db'}"


@pytest.fixture
def store(db_url):
    return StaffStore(db_url, hasher=FAST)


def run_cli(db_url, *args, stdin=""):
    out, err = io.StringIO(), io.StringIO()
    sys_stderr, sys.stderr = sys.stderr, err
    try:
        code = main(["--db", db_url, *args], stdin=io.StringIO(stdin), out=out)
    finally:
        sys.stderr = sys_stderr
    return code, out.getvalue(), err.getvalue()


def test_add_reads_the_password_from_stdin_and_stores_argon2id(db_url, tmp_path):
    code, out, _ = run_cli(db_url, "add", "Anna", "--role", "staff", stdin=PASSWORD + "\n")
    assert code == 0 and "anna" in out
    store = StaffStore(db_url)
    user = store.get_user("anna")
    assert user["role"] == "staff" and user["password_hash"].startswith("$argon2id$")
    assert PASSWORD.encode() not in (tmp_path / "staff.db").read_bytes()
    assert store.verify("anna", PASSWORD)["name"] == "anna"
    assert store.verify("ANNA", PASSWORD) is not None   # names are case-insensitive


def test_password_is_never_an_argument(db_url):
    with pytest.raises(SystemExit):
        run_cli(db_url, "add", "anna", "--role", "staff", "--password", PASSWORD)


def test_the_real_command_reads_stdin(tmp_path):
    env = {**os.environ, "STAFF_DB_URL": f"sqlite:///{tmp_path / 'cli.db'}", "VAR_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "bot.users", "add", "lee", "--role", "policy"], input=PASSWORD + "\n",
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    listed = subprocess.run([sys.executable, "-m", "bot.users", "list"], capture_output=True, text=True, cwd=ROOT,
                            env=env, timeout=120)
    assert "lee\tpolicy\t正常" in listed.stdout
    assert StaffStore(env["STAFF_DB_URL"]).verify("lee", PASSWORD)


@pytest.mark.parametrize("name, password, message", [
    ("anna", "short", "至少需要 10 个字符"),
    ("anna", "anna", "至少需要"),
    ("an na", PASSWORD, "账号只能使用"),
    ("a", PASSWORD, "账号只能使用"),
    ("annaaaaaaa", "AnnaAaaaaa", "不能与账号相同"),
])
def test_refused_accounts_say_why(store, name, password, message):
    with pytest.raises(AccountError, match=message):
        store.add_user(name, "staff", password)


def test_duplicate_account_is_refused(db_url):
    run_cli(db_url, "add", "anna", "--role", "staff", stdin=PASSWORD)
    code, _, err = run_cli(db_url, "add", "anna", "--role", "admin", stdin=PASSWORD)
    assert code == 1 and "已存在" in err


def test_list_disable_enable_reset_password(db_url):
    run_cli(db_url, "add", "anna", "--role", "staff", stdin=PASSWORD)
    run_cli(db_url, "add", "bo", "--role", "admin", stdin=PASSWORD)
    code, out, _ = run_cli(db_url, "list")
    assert code == 0 and out.splitlines()[0].startswith("anna\tstaff\t正常") and "bo\tadmin" in out
    assert run_cli(db_url, "disable", "anna")[0] == 0
    store = StaffStore(db_url)
    assert store.verify("anna", PASSWORD) is None
    assert "anna\tstaff\t已停用" in run_cli(db_url, "list")[1]
    assert run_cli(db_url, "enable", "anna")[0] == 0
    assert store.verify("anna", PASSWORD) is not None
    assert run_cli(db_url, "reset-password", "anna", stdin="a new long password")[0] == 0
    assert store.verify("anna", PASSWORD) is None
    assert store.verify("anna", "a new long password") is not None
    assert run_cli(db_url, "set-role", "anna", "--role", "policy")[0] == 0
    assert store.get_user("anna")["role"] == "policy"
    assert run_cli(db_url, "disable", "nobody")[0] == 1


def test_account_changes_are_audited(db_url):
    run_cli(db_url, "add", "anna", "--role", "staff", stdin=PASSWORD)
    run_cli(db_url, "disable", "anna")
    run_cli(db_url, "reset-password", "anna", stdin="another long password")
    actions = [(e["action"], e["target"]) for e in StaffStore(db_url).audit_entries()]
    assert actions == [("password_reset", "anna"), ("user_disable", "anna"), ("user_add", "anna")]
    assert all(e["actor"].startswith("cli") for e in StaffStore(db_url).audit_entries())


def test_disabling_or_resetting_ends_sessions(store, db_url):
    import datetime as dt

    from bot.auth import SessionStore

    user = store.add_user("anna", "staff", PASSWORD)
    sessions = SessionStore(store, dt.timedelta(hours=8))
    token, _ = sessions.create(user, "10.0.0.1")
    assert sessions.lookup(token)[0].name == "anna"
    store.set_password("anna", "a brand new password")
    assert sessions.lookup(token)[0] is None
    token, _ = sessions.create(user, "10.0.0.1")
    store.set_disabled("anna", True)
    assert sessions.lookup(token)[0] is None


def test_wrong_password_unknown_and_disabled_accounts_all_fail(store):
    store.add_user("anna", "staff", PASSWORD)
    assert store.verify("anna", "wrong password!") is None
    assert store.verify("nobody", PASSWORD) is None
    assert store.verify("../etc", PASSWORD) is None
    store.set_disabled("anna", True)
    assert store.verify("anna", PASSWORD) is None


def test_roles_are_ordered():
    assert role_at_least("admin", "staff") and role_at_least("policy", "staff") and role_at_least("staff", "staff")
    assert not role_at_least("staff", "policy") and not role_at_least("policy", "admin")
    assert not role_at_least("root", "staff")


def test_one_database_holds_accounts_sessions_attempts_and_audit(store, tmp_path):
    store.ensure_schema()
    tables = {r[0] for r in sqlite3.connect(tmp_path / "staff.db").execute("select name from sqlite_master")}
    assert {"staff_users", "staff_sessions", "login_attempts", "audit_log"} <= tables
