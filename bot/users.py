"""Staff accounts: who may use the desk and the review pages, with which role.

Accounts, sessions, login attempts and the audit log live in one database
(SQLite by default, PostgreSQL by URL; the same SQLAlchemy Core code), by
default the review store's. Passwords are hashed with argon2id.

    python -m bot.users add NAME --role staff|policy|admin   # password from a prompt or stdin
    python -m bot.users list
    python -m bot.users disable NAME | enable NAME
    python -m bot.users reset-password NAME
    python -m bot.users set-role NAME --role policy
"""
from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import re
import sys
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .schema import create_tables
from .text import mask_personal_data

ROLES = ("staff", "policy", "admin")   # each role may do everything the ones before it may
ROLE_NAMES = {"staff": "坐席", "policy": "政策审核", "admin": "管理员"}
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,31}$")
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 256

metadata = sa.MetaData()
staff_users = sa.Table(
    "staff_users", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(32), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("password_changed_at", sa.DateTime, nullable=False),
)
staff_sessions = sa.Table(
    "staff_sessions", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),   # sha256 of the cookie value, never the value
    sa.Column("user_id", sa.Integer, sa.ForeignKey("staff_users.id"), nullable=False, index=True),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("last_seen", sa.DateTime, nullable=False),
    sa.Column("ip", sa.String(64)),
)
login_attempts = sa.Table(
    "login_attempts", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime, nullable=False, index=True),
    sa.Column("account", sa.String(64), nullable=False, index=True),   # as typed (lower case), existing or not
    sa.Column("ip", sa.String(64), nullable=False, index=True),
    sa.Column("ok", sa.Boolean, nullable=False),
)
audit_log = sa.Table(
    "audit_log", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime, nullable=False, index=True),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("action", sa.String(32), nullable=False, index=True),
    sa.Column("target", sa.String(120)),
    sa.Column("ip", sa.String(64)),
    sa.Column("detail", sa.Text),
)


class AccountError(ValueError):
    """A refused account change, with a message for the person at the keyboard."""


def utcnow() -> dt.datetime:
    return dt.datetime.utcnow().replace(microsecond=0)


def role_at_least(role: str, needed: str) -> bool:
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def check_password(name: str, password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"密码至少需要 {MIN_PASSWORD_CHARS} 个字符")
    if len(password) > MAX_PASSWORD_CHARS:
        raise AccountError(f"密码不能超过 {MAX_PASSWORD_CHARS} 个字符")
    if password.strip().lower() == name.lower():
        raise AccountError("密码不能与账号相同")


class StaffStore:
    """Accounts and the audit log; sessions and lock-out (bot.auth) use the same engine."""

    def __init__(self, url: str, hasher: PasswordHasher | None = None):
        self.url = url
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            # Every staff request reads its session: keep connections open (SQLAlchemy 1.4 opens
            # a new SQLite connection per use otherwise); worker threads share the pool.
            self.engine = sa.create_engine(url, connect_args={"timeout": 5, "check_same_thread": False},
                                           poolclass=sa.pool.QueuePool, pool_size=4, max_overflow=8, future=True)
        else:
            self.engine = sa.create_engine(url, pool_pre_ping=True, future=True)
        self.hasher = hasher or PasswordHasher()   # argon2id, RFC 9106 low-memory profile
        # Verified against when an account does not exist, so a wrong name takes as long as a wrong password.
        self._dummy_hash = self.hasher.hash("not a password of anyone")
        self._schema_lock = threading.Lock()
        self._ready = False

    def ensure_schema(self) -> None:
        with self._schema_lock:
            if not self._ready:
                create_tables(metadata, self.engine)
                self._ready = True

    # -- accounts ------------------------------------------------------------
    def add_user(self, name: str, role: str, password: str) -> dict[str, Any]:
        name = name.strip().lower()
        if not NAME.match(name):
            raise AccountError("账号只能使用 2–32 位小写字母、数字、点、下划线或短横线，并以字母或数字开头")
        if role not in ROLES:
            raise AccountError(f"角色只能是：{'、'.join(ROLES)}")
        check_password(name, password)
        self.ensure_schema()
        now = utcnow()
        with self.engine.begin() as conn:
            if conn.execute(sa.select(staff_users.c.id).where(staff_users.c.name == name)).first():
                raise AccountError(f"账号 {name} 已存在")
            conn.execute(staff_users.insert().values(name=name, role=role, password_hash=self.hasher.hash(password),
                                                     disabled=False, created_at=now, password_changed_at=now))
        return self.get_user(name)

    def get_user(self, name: str) -> dict[str, Any] | None:
        self.ensure_schema()
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(staff_users).where(staff_users.c.name == name.strip().lower())).first()
        return dict(row._mapping) if row else None

    def users(self) -> list[dict[str, Any]]:
        self.ensure_schema()
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(staff_users).order_by(staff_users.c.name))
            return [{k: v for k, v in r._mapping.items() if k != "password_hash"} for r in rows]

    def _existing(self, name: str) -> dict[str, Any]:
        user = self.get_user(name)
        if user is None:
            raise AccountError(f"没有账号 {name}")
        return user

    def set_disabled(self, name: str, disabled: bool) -> None:
        user = self._existing(name)
        with self.engine.begin() as conn:
            conn.execute(staff_users.update().where(staff_users.c.id == user["id"]).values(disabled=disabled))
            if disabled:
                conn.execute(staff_sessions.delete().where(staff_sessions.c.user_id == user["id"]))

    def set_role(self, name: str, role: str) -> None:
        if role not in ROLES:
            raise AccountError(f"角色只能是：{'、'.join(ROLES)}")
        user = self._existing(name)
        with self.engine.begin() as conn:
            conn.execute(staff_users.update().where(staff_users.c.id == user["id"]).values(role=role))

    def set_password(self, name: str, password: str) -> None:
        user = self._existing(name)
        check_password(user["name"], password)
        with self.engine.begin() as conn:
            conn.execute(staff_users.update().where(staff_users.c.id == user["id"])
                         .values(password_hash=self.hasher.hash(password), password_changed_at=utcnow()))
            # A new password ends every session opened with the old one.
            conn.execute(staff_sessions.delete().where(staff_sessions.c.user_id == user["id"]))

    def verify(self, name: str, password: str) -> dict[str, Any] | None:
        """The account when the name and password match an enabled account, else None."""
        user = self.get_user(name) if NAME.match(name.strip().lower()) else None
        try:
            self.hasher.verify(user["password_hash"] if user else self._dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        if user is None or user["disabled"]:
            return None
        if self.hasher.check_needs_rehash(user["password_hash"]):
            with self.engine.begin() as conn:
                conn.execute(staff_users.update().where(staff_users.c.id == user["id"])
                             .values(password_hash=self.hasher.hash(password)))
        return user

    # -- audit log -------------------------------------------------------------
    def audit(self, actor: str, action: str, target: str | None = None, *, ip: str | None = None,
              detail: dict[str, Any] | None = None) -> None:
        self.ensure_schema()
        text = mask_personal_data(json.dumps(detail, ensure_ascii=False)) if detail else None
        with self.engine.begin() as conn:
            conn.execute(audit_log.insert().values(at=utcnow(), actor=actor[:64], action=action[:32],
                                                   target=mask_personal_data(target)[:120] if target else None,
                                                   ip=(ip or "")[:64] or None, detail=text))

    def audit_entries(self, limit: int = 100, action: str | None = None) -> list[dict[str, Any]]:
        self.ensure_schema()
        query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if action:
            query = query.where(audit_log.c.action == action)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]


_stores: dict[str, StaffStore] = {}


def get_staff_store(settings=None) -> StaffStore:
    from .config import load_settings

    settings = settings or load_settings()
    url = settings.staff_url()
    if url not in _stores:
        _stores[url] = StaffStore(url)
    return _stores[url]


# -- command line ----------------------------------------------------------------
def _read_password(stdin=None) -> str:
    """From a prompt (asked twice) on a terminal, else the first line of stdin; never from argv."""
    stdin = stdin or sys.stdin
    if stdin.isatty():
        first = getpass.getpass("新密码：")
        if getpass.getpass("再输入一次：") != first:
            raise AccountError("两次输入的密码不一致")
        return first
    return stdin.readline().rstrip("\r\n")


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name in some containers
        return "cli"


def main(argv: list[str] | None = None, stdin=None, out=None) -> int:
    out = out or sys.stdout
    parser = argparse.ArgumentParser(prog="python -m bot.users", description="Staff accounts for the desk and review.")
    parser.add_argument("--db", help="SQLAlchemy URL (default: STAFF_DB_URL, else the review store)")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="add an account (password from a prompt or stdin)")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True)
    sub.add_parser("list", help="list accounts")
    for command in ("disable", "enable", "reset-password"):
        sub.add_parser(command).add_argument("name")
    set_role = sub.add_parser("set-role")
    set_role.add_argument("name")
    set_role.add_argument("--role", choices=ROLES, required=True)
    args = parser.parse_args(argv)

    if args.db:
        store = StaffStore(args.db)
    else:
        store = get_staff_store()
    actor = _actor()
    try:
        if args.command == "add":
            user = store.add_user(args.name, args.role, _read_password(stdin))
            store.audit(actor, "user_add", user["name"], detail={"role": user["role"]})
            print(f"已添加账号 {user['name']}（{ROLE_NAMES[user['role']]}）", file=out)
        elif args.command == "list":
            for u in store.users():
                state = "已停用" if u["disabled"] else "正常"
                print(f"{u['name']}\t{u['role']}\t{state}\t创建于 {u['created_at']:%Y-%m-%d %H:%M} UTC", file=out)
        elif args.command in ("disable", "enable"):
            store.set_disabled(args.name, args.command == "disable")
            store.audit(actor, f"user_{args.command}", args.name.lower())
            print(f"账号 {args.name.lower()} {'已停用（已退出所有登录）' if args.command == 'disable' else '已启用'}", file=out)
        elif args.command == "reset-password":
            store.set_password(args.name, _read_password(stdin))
            store.audit(actor, "password_reset", args.name.lower())
            print(f"账号 {args.name.lower()} 的密码已重置（已退出所有登录）", file=out)
        elif args.command == "set-role":
            store.set_role(args.name, args.role)
            store.audit(actor, "user_role", args.name.lower(), detail={"role": args.role})
            print(f"账号 {args.name.lower()} 的角色已改为 {ROLE_NAMES[args.role]}", file=out)
    except AccountError as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
