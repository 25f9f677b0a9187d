"""Shared by the review workspace tests: an app on temporary databases with a
tracker store seeded as Rasa writes it, and items recorded the way the
assistant and the desk record them."""
from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
from urllib.parse import parse_qs, urlparse

import sqlalchemy as sa

from bot.reviewing import export
from bot.reviewing.conversations import events
from desk_helpers import make_app

RASA_TOKEN = "review-test-token"
# A moment a few days ago (inside the retention period: the app purges older items
# when it starts), on a Beijing afternoon, so dates and days are predictable.
_BEIJING_TODAY = (dt.datetime.utcnow() + dt.timedelta(hours=8)).date()
T0 = dt.datetime.combine(_BEIJING_TODAY - dt.timedelta(days=2), dt.time(6, 0, 0))   # UTC; 14:00 in Beijing


def day(days_before_t0: int) -> str:
    """The Beijing date `days_before_t0` days before T0, as the date filters take it."""
    return (T0.date() - dt.timedelta(days=days_before_t0)).isoformat()


def review_app(tmp_path, **overrides):
    # Built once per process (a few seconds on a busy machine): never inside a request's 5 s client timeout.
    export.checker_for()
    tracker = tmp_path / "tracker.db"
    app = make_app(tmp_path, tracker_db_url=f"sqlite:///{tracker}", rasa_token=RASA_TOKEN, **overrides)
    engine = sa.create_engine(f"sqlite:///{tracker}", future=True)
    events.metadata.create_all(engine)
    app.ctx.test_tracker = engine
    return app


class Conversation:
    """Writes a conversation into the tracker store's events table as Rasa does."""

    def __init__(self, engine, sender: str, start: dt.datetime):
        self.engine, self.sender, self.at = engine, sender, start

    def _add(self, type_name: str, data: dict, intent: str | None = None, action: str | None = None,
             gap_s: float = 1.0) -> float:
        self.at += dt.timedelta(seconds=gap_s)
        ts = self.at.replace(tzinfo=dt.timezone.utc).timestamp()
        with self.engine.begin() as conn:
            conn.execute(events.insert().values(sender_id=self.sender, type_name=type_name, timestamp=ts,
                                                intent_name=intent, action_name=action,
                                                data=json.dumps({"event": type_name, "timestamp": ts, **data},
                                                                ensure_ascii=False)))
        return ts

    def user(self, text: str, intent: str = "nlu_fallback", gap_s: float = 20.0) -> "Conversation":
        self._add("user", {"text": text, "parse_data": {"intent": {"name": intent}}, "input_channel": "rest"},
                  intent=intent, gap_s=gap_s)
        return self

    def bot(self, text: str, kind: str = "answer") -> "Conversation":
        self._add("bot", {"text": text, "data": {"custom": {"kind": kind}}}, gap_s=0.5)
        return self

    def slot(self, name: str, value) -> "Conversation":
        self._add("slot", {"name": name, "value": value}, gap_s=0.1)
        return self

    def restart(self) -> "Conversation":
        self._add("restart", {}, gap_s=0.1)
        return self


def record(app, kind: str, sender: str, question: str, at: dt.datetime, **kwargs) -> int:
    """A review item as the assistant records it, at a chosen moment; returns its id."""
    store = app.ctx.review
    store.record_at(at, kind, sender, question, **kwargs)
    return store.items(limit=1)[0]["id"]


class ParseStub:
    """Rasa's POST /model/parse on a local port: texts map to (intent, confidence); checks the token."""

    def __init__(self, answers: dict[str, tuple[str, float]]):
        stub = self
        self.answers, self.seen = answers, []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                url = urlparse(self.path)
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                stub.seen.append((url.path, parse_qs(url.query).get("token", [""])[0], body.get("text")))
                if url.path != "/model/parse" or parse_qs(url.query).get("token") != [RASA_TOKEN]:
                    self.send_response(401)
                    self.end_headers()
                    return
                name, confidence = stub.answers.get(body["text"], ("nlu_fallback", 0.3))
                data = json.dumps({"text": body["text"], "intent": {"name": name, "confidence": confidence},
                                   "intent_ranking": [], "entities": []}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
