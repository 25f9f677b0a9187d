"""All settings, read from the environment in this one module.

Every setting has a default that runs on a single machine with nothing else
installed: SQLite files under var/, Rasa and the action server on localhost.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

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
    # Which sites may embed the chat in an iframe (CSP frame-ancestors).
    embed_origins: str = field(default_factory=lambda: _env("EMBED_ORIGINS", "*"))
    tracker_db_url: str = field(default_factory=lambda: _env("TRACKER_DB_URL", ""))
    hotline: str = field(default_factory=lambda: _env("HOTLINE", "12345"))
    hotline_name: str = field(default_factory=lambda: _env("HOTLINE_NAME", "政务服务便民热线"))
    web_host: str = field(default_factory=lambda: _env("WEB_HOST", "127.0.0.1"))
    web_port: int = field(default_factory=lambda: int(_env("WEB_PORT", "8000")))
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

    def review_url(self) -> str:
        if self.review_db_url:
            return self.review_db_url
        return f"sqlite:///{self.var_dir / 'review.db'}"

    def staff_url(self) -> str:
        return self.staff_db_url or self.review_url()


def load_settings() -> Settings:
    return Settings()
