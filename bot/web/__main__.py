"""Serve the web app: python -m bot.web"""
from ..config import load_settings
from . import create_app

if __name__ == "__main__":
    settings = load_settings()
    create_app().run(host=settings.web_host, port=settings.web_port, access_log=False, workers=1)
