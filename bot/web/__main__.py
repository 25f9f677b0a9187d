"""Serve the web app: python -m bot.web (WEB_WORKERS processes on WEB_HOST:WEB_PORT)."""
import sys

from ..config import SettingsError, load_settings
from . import create_app


def check_workers(settings) -> None:
    """Several workers count rate limits together only in Redis; alone, each would allow the full limit."""
    if settings.web_workers > 1 and not settings.rate_limit_redis_url:
        raise SettingsError(f"WEB_WORKERS={settings.web_workers} needs RATE_LIMIT_REDIS_URL (e.g. "
                            "redis://127.0.0.1:6379/2): without it every worker counts the per-client rate limits "
                            f"alone, so clients could send {settings.web_workers} times the limit")


if __name__ == "__main__":
    try:
        settings = load_settings()
        check_workers(settings)
        app = create_app()
    except SettingsError as exc:
        sys.exit(f"bot.web: cannot start: {exc}")
    app.run(host=settings.web_host, port=settings.web_port, access_log=False, workers=settings.web_workers)
