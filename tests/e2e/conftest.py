"""Start the real action server and Rasa (with the trained model) for e2e tests.

Both start through scripts/serve.sh, as `make run` starts them: on loopback
unless RASA_INTERFACE / ACTION_SERVER_INTERFACE say otherwise."""
from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from bench.stack import stop_process
from bot.config import ROOT

MODEL = ROOT / "models" / "ordos.tar.gz"
# E2E_PORT_OFFSET lets two test runs on one machine use separate servers.
_OFFSET = int(os.environ.get("E2E_PORT_OFFSET", "0"))
RASA_PORT, ACTIONS_PORT, WEB_PORT = 15005 + _OFFSET, 15055 + _OFFSET, 18000 + _OFFSET
RASA_TOKEN = "e2e-" + os.urandom(8).hex()
BIN = ROOT / ".venv" / "bin"
SERVE = ROOT / "scripts" / "serve.sh"


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


def ensure_free(port: int) -> None:
    """Refuse to start on a port something already answers on: a server left over from
    another run would pass the readiness check and serve these tests from its own
    (perhaps deleted) temporary folder."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            raise RuntimeError(f"port {port} is already in use (a server left from another test run?); "
                               "stop it or set E2E_PORT_OFFSET") from exc


def start(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    stop_process(proc, 15)


class Stack:
    """Action server, Rasa and web app on their own ports and a temporary var dir."""

    def __init__(self, tmp: Path, rasa_port: int = RASA_PORT, actions_port: int = ACTIONS_PORT,
                 web_port: int = WEB_PORT):
        self.tmp = tmp
        self.rasa_port, self.actions_port, self.web_port = rasa_port, actions_port, web_port
        self.env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "VAR_DIR": str(tmp),
                    "ACTION_SERVER_URL": f"http://127.0.0.1:{actions_port}",
                    "TRACKER_DB_DIALECT": "sqlite", "TRACKER_DB_URL": f"sqlite:///{tmp / 'tracker.db'}",
                    "LOCK_STORE_TYPE": "in_memory", "REDIS_HOST": "127.0.0.1", "REDIS_PORT": "6379",
                    "REVIEW_DB_URL": f"sqlite:///{tmp / 'review.db'}",
                    "RASA_URL": f"http://127.0.0.1:{rasa_port}", "RASA_TOKEN": RASA_TOKEN,
                    "WEB_HOST": "127.0.0.1", "WEB_PORT": str(web_port),
                    # Browser tests send many messages from one client.
                    "RATE_LIMIT_PER_MINUTE": "200", "API_RATE_LIMIT_PER_MINUTE": "1000",
                    # The host page of the widget test (test_browser_widget.py) may frame the chat.
                    "EMBED_ORIGINS": "http://127.0.0.1:18001"}
        for opened_on_purpose in ("RASA_INTERFACE", "ACTION_SERVER_INTERFACE"):
            self.env.pop(opened_on_purpose, None)  # the defaults are what the tests check
        self.actions = None
        self.rasa = None
        self.web = None
        self.web_url = f"http://127.0.0.1:{web_port}"
        self.rasa_url = f"http://127.0.0.1:{rasa_port}"
        self.actions_url = f"http://127.0.0.1:{actions_port}"

    def start_web(self) -> None:
        ensure_free(self.web_port)
        self.web = start([str(BIN / "python"), "-m", "bot.web"], self.env, self.tmp / "web.log")
        wait_until(f"{self.web_url}/api/welcome", 60, self.web)

    def start_actions(self) -> None:
        ensure_free(self.actions_port)
        self.actions = start(["bash", str(SERVE), "actions", str(self.actions_port)], self.env,
                             self.tmp / "actions.log")
        wait_until(f"{self.actions_url}/health", 120, self.actions)

    def start_rasa(self) -> None:
        ensure_free(self.rasa_port)
        self.rasa = start(["bash", str(SERVE), "rasa", str(self.rasa_port)], self.env, self.tmp / "rasa.log")
        # /status answers only with this run's token: a Rasa from another run is never taken for ours.
        wait_until(f"{self.rasa_url}/status?token={self.env['RASA_TOKEN']}", 240, self.rasa)

    def say(self, sender: str, text: str, timeout: float = 30, message_id: str | None = None) -> list[dict]:
        body = {"sender": sender, "message": text, **({"message_id": message_id} if message_id else {})}
        resp = requests.post(f"{self.rasa_url}/webhooks/rest/webhook", json=body, timeout=timeout)
        resp.raise_for_status()
        return resp.json()

    def tracker(self, sender: str) -> dict:
        """The conversation as Rasa stores it, through its token-protected HTTP API."""
        resp = requests.get(f"{self.rasa_url}/conversations/{sender}/tracker",
                            params={"token": RASA_TOKEN}, timeout=30)
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


# Debian's chromium, driven by Playwright (no downloaded browsers); the flags keep it
# off the network this machine does not have.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed (make setup installs it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()
