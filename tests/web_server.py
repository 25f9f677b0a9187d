"""Start the real web app (python -m bot.web) on a free local port, for tests that talk HTTP to it."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx

from bench.stack import free_port, stop_process
from bot.config import ROOT


@contextlib.contextmanager
def web_app(tmp: Path, **settings: str) -> Iterator[str]:
    """The app's base URL while it runs; settings are environment variables (RASA_URL=...)."""
    port = free_port()
    env = {**os.environ, "VAR_DIR": str(tmp), "WEB_HOST": "127.0.0.1", "WEB_PORT": str(port),
           "TRACKER_DB_URL": f"sqlite:///{tmp / 'tracker.db'}", "REVIEW_DB_URL": f"sqlite:///{tmp / 'review.db'}",
           **settings}
    log = tmp / f"web-{port}.log"
    proc = subprocess.Popen([sys.executable, "-m", "bot.web"], cwd=ROOT, env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the web app exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/api/welcome", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the web app did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        stop_process(proc, 15)
