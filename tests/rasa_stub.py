"""A stand-in for Rasa on a local port, for web-app tests that must not need a model.

It speaks the two Rasa APIs the web app uses (the REST channel and the tracker
API) plus the health URLs /ready probes, records what it received, and can be
told to answer, fail, stall or answer nothing.
"""
from __future__ import annotations

import asyncio
import threading

from aiohttp import web


class RasaStub:
    ANSWER, FAIL, SLOW, EMPTY = "answer", "fail", "slow", "empty"

    def __init__(self, slow_s: float = 3.0):
        self.mode = self.ANSWER
        self.slow_s = slow_s
        self.received: list[dict] = []
        self.tracker_requests: list[dict] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "RasaStub":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/", self._root)
        app.router.add_get("/health", self._root)
        app.router.add_post("/webhooks/rest/webhook", self._webhook)
        app.router.add_get("/conversations/{sender}/tracker", self._tracker)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def _root(self, request):
        return web.json_response({"status": "ok"})

    async def _webhook(self, request):
        if self.mode == self.FAIL:
            return web.json_response({"error": "boom"}, status=500)
        if self.mode == self.SLOW:
            await asyncio.sleep(self.slow_s)
        payload = await request.json()
        self.received.append(payload)
        if self.mode == self.EMPTY:
            return web.json_response([])
        return web.json_response([{"recipient_id": payload["sender"], "text": f"收到：{payload['message']}",
                                   "buttons": [{"title": "有帮助", "payload": "有帮助"}]},
                                  {"recipient_id": payload["sender"], "custom": {"clauses": ["2.4.1"]}}])

    async def _tracker(self, request):
        sender = request.match_info["sender"]
        self.tracker_requests.append({"sender": sender, "query": dict(request.query)})
        if self.mode == self.FAIL:
            return web.json_response({"error": "boom"}, status=500)
        events = []
        for i, p in enumerate(m for m in self.received if m["sender"] == sender):
            events.append({"event": "user", "text": p["message"], "timestamp": 1_700_000_000 + 2 * i})
            events.append({"event": "bot", "text": f"收到：{p['message']}", "timestamp": 1_700_000_001 + 2 * i,
                           "data": {"custom": {"clauses": ["2.4.1"]}}})
        return web.json_response({"sender_id": sender, "events": events})
