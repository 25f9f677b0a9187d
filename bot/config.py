"""All settings, read from the environment in this one module.

Every setting has a default that runs on a single machine with nothing else
installed: SQLite files under var/, Rasa and the action server on localhost.
"""
from __future__ import annotations

import ipaddress
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    knowledge_dir: Path = field(default_factory=lambda: Path(_env("KNOWLEDGE_DIR", str(ROOT / "knowledge"))))
    var_dir: Path = field(default_factory=lambda: Path(_env("VAR_DIR", str(ROOT / "var"))))
    # SQLAlchemy URL of the review store (unanswered questions, feedback).
    review_db_url: str = field(default_factory=lambda: _env("REVIEW_DB_URL", ""))
    rasa_url: str = field(default_factory=lambda: _env("RASA_URL", "http://127.0.0.1:5005"))
    action_server_url: str = field(default_factory=lambda: _env("ACTION_SERVER_URL", "http://127.0.0.1:5055"))
    rasa_token: str = field(default_factory=lambda: _env("RASA_TOKEN", ""))
    rate_limit_per_minute: int = field(default_factory=lambda: int(_env("RATE_LIMIT_PER_MINUTE", "20")))
    # Days conversations and review items are kept; at least 1 (0 would delete everything).
    retention_days: int = field(default_factory=lambda: int(_env("RETENTION_DAYS", "30")))
    # Secret for the review store's sender hashes; empty: a random one created once in var/review-salt.
    review_salt: str = field(default_factory=lambda: _env("REVIEW_SALT", ""))
    # Host sites that may embed the chat (CSP frame-ancestors; Origin of chat requests): origins such as
    # "https://www.ordos.gov.cn", separated by spaces or commas. The chat's own site always may; "*" is refused.
    embed_origins: str = field(default_factory=lambda: _env("EMBED_ORIGINS", ""))
    # Reverse proxies (addresses or networks) whose X-Forwarded-For names the client, for rate limits.
    trusted_proxies: str = field(default_factory=lambda: _env("TRUSTED_PROXIES", ""))
    # Each of search, eligibility, departments, clauses, history and new conversations, per client.
    api_rate_limit_per_minute: int = field(default_factory=lambda: int(_env("API_RATE_LIMIT_PER_MINUTE", "60")))
    # Signs conversation ids; empty: a random key made once in var/secret_key (0600), shared by all workers.
    secret_key: str = field(default_factory=lambda: _env("SECRET_KEY", ""), repr=False)
    # How long the web app waits for Rasa's answer before telling the widget to retry.
    rasa_timeout_s: float = field(default_factory=lambda: float(_env("RASA_TIMEOUT_S", "5")))
    tracker_db_url: str = field(default_factory=lambda: _env("TRACKER_DB_URL", ""))
    hotline: str = field(default_factory=lambda: _env("HOTLINE", "12345"))
    hotline_name: str = field(default_factory=lambda: _env("HOTLINE_NAME", "政务服务便民热线"))
    web_host: str = field(default_factory=lambda: _env("WEB_HOST", "127.0.0.1"))
    web_port: int = field(default_factory=lambda: int(_env("WEB_PORT", "8000")))
    # Web app worker processes (python -m bot.web); more than one needs RATE_LIMIT_REDIS_URL.
    web_workers: int = field(default_factory=lambda: _at_least_one("WEB_WORKERS", _env("WEB_WORKERS", "1")))
    # Redis shared by every web worker and replica for the per-client rate limits, e.g.
    # redis://127.0.0.1:6379/2 (not Rasa's lock store database); empty: each process counts alone.
    rate_limit_redis_url: str = field(default_factory=lambda: _env("RATE_LIMIT_REDIS_URL", ""), repr=False)
    max_message_chars: int = field(default_factory=lambda: int(_env("MAX_MESSAGE_CHARS", "500")))
    max_body_bytes: int = field(default_factory=lambda: int(_env("MAX_BODY_BYTES", "65536")))
    # Staff accounts, sessions and audit log (desk, review); empty: the review store's database.
    staff_db_url: str = field(default_factory=lambda: _env("STAFF_DB_URL", ""))
    # A staff session ends after this many hours without a request (one working shift).
    session_idle_hours: float = field(default_factory=lambda: float(_env("SESSION_IDLE_HOURS", "8")))
    # Secure flag of the session cookie: "auto" (when the request came over HTTPS), "always" or "never".
    session_cookie_secure: str = field(default_factory=lambda: _env("SESSION_COOKIE_SECURE", "auto"))

    def __post_init__(self) -> None:
        if self.retention_days < 1:
            raise ValueError(f"RETENTION_DAYS must be at least 1 (got {self.retention_days}): "
                             "a smaller value would delete every conversation")
        if self.rate_limit_redis_url:
            check_redis_url("RATE_LIMIT_REDIS_URL", self.rate_limit_redis_url)

    def review_url(self) -> str:
        if self.review_db_url:
            return self.review_db_url
        return f"sqlite:///{self.var_dir / 'review.db'}"

    def staff_url(self) -> str:
        return self.staff_db_url or self.review_url()

    def embed_origin_list(self) -> tuple[str, ...]:
        """EMBED_ORIGINS as validated origins; SettingsError names a bad entry."""
        return parse_origins(self.embed_origins)

    def trusted_proxy_networks(self) -> tuple:
        """TRUSTED_PROXIES as ip networks; SettingsError names a bad entry."""
        networks = []
        for entry in _entries(self.trusted_proxies):
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise SettingsError(f"TRUSTED_PROXIES: {entry!r} is not an IP address or network "
                                    f"(e.g. 10.0.0.5 or 10.0.0.0/24)") from None
        return tuple(networks)

    def secret(self) -> bytes:
        """The key that signs conversation ids (SECRET_KEY, or var/secret_key made on first use)."""
        if self.secret_key:
            if len(self.secret_key) < 32:
                raise SettingsError("SECRET_KEY must be at least 32 characters (e.g. python -c "
                                    "'import secrets; print(secrets.token_urlsafe(48))')")
            return self.secret_key.encode()
        return _stored_secret(self.var_dir / "secret_key")


class SettingsError(ValueError):
    """A setting that cannot work; the message names it and says what is expected."""


def _at_least_one(name: str, value: str) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        number = 0
    if number < 1:
        raise SettingsError(f"{name} must be a whole number of at least 1 (got {value!r})")
    return number


def check_redis_url(name: str, url: str) -> None:
    """redis://[user:password@]host[:port][/db] (or rediss:// for TLS); SettingsError says what is wrong."""
    example = "redis://127.0.0.1:6379/2"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise SettingsError(f"{name}: not a Redis URL such as {example} (bad host or port)") from None
    if parts.scheme not in ("redis", "rediss"):
        raise SettingsError(f"{name}: must start with redis:// or rediss://, e.g. {example}")
    if not parts.hostname:
        raise SettingsError(f"{name}: names no host, e.g. {example}")
    if port == 0:
        raise SettingsError(f"{name}: port 0 is not a port, e.g. {example}")
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise SettingsError(f"{name}: the database after the last / must be a number (got {db!r}), e.g. {example}")
    if parts.query or parts.fragment:
        raise SettingsError(f"{name}: no query or fragment, e.g. {example}")


def _entries(value: str) -> list[str]:
    return [e for e in re.split(r"[\s,]+", value.strip()) if e]


_ORIGIN = re.compile(r"\Ahttps?://(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
                     r"|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?\Z")


def parse_origins(value: str) -> tuple[str, ...]:
    """Exact origins (scheme://host[:port]); wildcards, paths and anything else are refused."""
    origins = []
    for entry in _entries(value):
        origin = entry.lower()
        if "*" in origin or not _ORIGIN.match(origin):
            raise SettingsError(f"EMBED_ORIGINS: {entry!r} is not an origin such as https://www.example.gov.cn "
                                f"(scheme and host, optional port; no '*', path or query)")
        if origin not in origins:
            origins.append(origin)
    return tuple(origins)


def _stored_secret(path: Path) -> bytes:
    """Read the key file, creating it once (0600) if missing; every worker then reads the same key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)  # atomic: a worker that loses the race keeps the winner's key
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < 32:
        raise SettingsError(f"{path} holds no usable key (at least 32 characters); delete it to make a new one")
    return key.encode()


def load_settings() -> Settings:
    return Settings()
