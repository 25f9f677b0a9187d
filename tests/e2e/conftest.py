"""Start the real action server and Rasa (with the trained model) for e2e tests."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from bot.config import ROOT

MODEL = ROOT / "models" / "ordos.tar.gz"
RASA_PORT, ACTIONS_PORT, WEB_PORT = 15005, 15055, 18000
RASA_TOKEN = "e2e-" + os.urandom(8).hex()
BIN = ROOT / ".venv" / "bin"


def wait_until(url: str, deadline_s: float, proc: subprocess.Popen) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not ready after {deadline_s}s")


def start(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


class Stack:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "VAR_DIR": str(tmp),
                    "ACTION_SERVER_URL": f"http://127.0.0.1:{ACTIONS_PORT}",
                    "TRACKER_DB_DIALECT": "sqlite", "TRACKER_DB_URL": f"sqlite:///{tmp / 'tracker.db'}",
                    "LOCK_STORE_TYPE": "in_memory", "REDIS_HOST": "127.0.0.1", "REDIS_PORT": "6379",
                    "REVIEW_DB_URL": f"sqlite:///{tmp / 'review.db'}",
                    "RASA_URL": f"http://127.0.0.1:{RASA_PORT}", "RASA_TOKEN": RASA_TOKEN,
                    "WEB_HOST": "127.0.0.1", "WEB_PORT": str(WEB_PORT),
                    # Browser tests send many messages from one client.
                    "RATE_LIMIT_PER_MINUTE": "200"}
        self.actions = None
        self.rasa = None
        self.web = None
        self.web_url = f"http://127.0.0.1:{WEB_PORT}"

    def start_web(self) -> None:
        self.web = start([str(BIN / "python"), "-m", "bot.web"], self.env, self.tmp / "web.log")
        wait_until(f"{self.web_url}/api/welcome", 60, self.web)

    def start_actions(self) -> None:
        self.actions = start([str(BIN / "rasa"), "run", "actions", "--actions", "actions.actions",
                              "--port", str(ACTIONS_PORT)], self.env, self.tmp / "actions.log")
        wait_until(f"http://127.0.0.1:{ACTIONS_PORT}/health", 120, self.actions)

    def start_rasa(self) -> None:
        self.rasa = start([str(BIN / "rasa"), "run", "--model", str(MODEL), "--endpoints", "endpoints.yml",
                           "--credentials", "credentials.yml", "--port", str(RASA_PORT),
                           "--enable-api", "--auth-token", RASA_TOKEN], self.env,
                          self.tmp / "rasa.log")
        wait_until(f"http://127.0.0.1:{RASA_PORT}/", 240, self.rasa)

    def say(self, sender: str, text: str, timeout: float = 30) -> list[dict]:
        resp = requests.post(f"http://127.0.0.1:{RASA_PORT}/webhooks/rest/webhook",
                             json={"sender": sender, "message": text}, timeout=timeout)
        resp.raise_for_status()
        return resp.json()

    def stop(self) -> None:
        for proc in (self.web, self.rasa, self.actions):
            if proc is not None:
                stop(proc)


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    if not MODEL.exists():
        pytest.fail(f"no trained model at {MODEL}: run `bash scripts/train.sh` (make test does)")
    s = Stack(tmp_path_factory.mktemp("stack"))
    try:
        s.start_actions()
        s.start_rasa()
        s.start_web()
        s.say("warm-up", "你好")  # jieba and the model load lazily on the first message
        yield s
    finally:
        s.stop()
