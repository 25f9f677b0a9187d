"""Serve the web app: python -m bot.web"""
import sys

from ..config import SettingsError, load_settings
from . import create_app

if __name__ == "__main__":
    settings = load_settings()
    try:
        app = create_app()
    except SettingsError as exc:
        sys.exit(f"bot.web: cannot start: {exc}")
    app.run(host=settings.web_host, port=settings.web_port, access_log=False, workers=1)
