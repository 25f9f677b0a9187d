"""End to end over socket.io (the channel other sites can embed): answers arrive on the
socket, with the same protections as the REST channel."""
import asyncio
import uuid

import pytest
import requests
import socketio

from tests.e2e.conftest import RASA_PORT

pytestmark = pytest.mark.e2e


async def converse(messages, wait_s=20.0):
    """Send each message on one persistent session; collect the bot's messages per message.
    (Long polling: the websocket transport of this engineio client needs a newer aiohttp
    than Rasa pins; the server side is the same.)"""
    session_id = "sio-" + uuid.uuid4().hex
    client = socketio.AsyncClient()
    inbox: asyncio.Queue = asyncio.Queue()
    confirmed = asyncio.Event()
    client.on("session_confirm", lambda *_: confirmed.set())
    client.on("bot_uttered", lambda data: inbox.put_nowait(data))
    await client.connect(f"http://127.0.0.1:{RASA_PORT}", socketio_path="/socket.io", transports=["polling"])
    replies = []
    try:
        await client.emit("session_request", {"session_id": session_id})
        await asyncio.wait_for(confirmed.wait(), wait_s)
        for text in messages:
            await client.emit("user_uttered", {"message": text, "session_id": session_id})
            got = [await asyncio.wait_for(inbox.get(), wait_s)]
            while True:  # the rest of this turn's messages
                try:
                    got.append(await asyncio.wait_for(inbox.get(), 1.5))
                except asyncio.TimeoutError:
                    break
            replies.append(got)
    finally:
        await client.disconnect()
    return session_id, replies


def test_socketio_answers_and_handles_empty_and_slash_messages(stack):
    session_id, replies = asyncio.run(converse(["育儿假有几天", "   ", "/restart 我电话13912345678"]))
    answer, empty, slash = ["\n".join(m.get("text", "") for m in got) for got in replies]
    # The answer's clause data arrives as {"custom": ...}, as over REST (Rasa's own
    # socket.io output crashed on it), and no apology follows a good answer.
    assert {"clauses": ["2.4.1"], "answer_id": "parental_leave"} in [m.get("custom") for m in replies[0]]
    assert "抱歉" not in answer
    assert "10天育儿假" in answer and "依据：《实施方案》二（四）1" in answer
    assert "请输入" in empty
    assert slash  # an answer, not silence
    assert "13912345678" not in slash

    # The conversation is stored under the socket.io session id. Read all of it: the
    # tracker endpoint's default view starts after the last restart.
    tracker = requests.get(f"http://127.0.0.1:{RASA_PORT}/conversations/{session_id}/tracker",
                           params={"token": stack.env["RASA_TOKEN"], "include_events": "ALL"}, timeout=10).json()
    said = [e for e in tracker["events"] if e["event"] == "user"]
    assert [e["text"] for e in said] == ["育儿假有几天", "／restart 我电话139****5678"]  # the empty one never reached Rasa
    assert said[0]["parse_data"]["intent"]["name"] == "ask_parental_leave"
    assert said[1]["parse_data"]["intent"]["name"] != "restart"  # text, never Rasa's /restart command
    assert "13912345678" not in str(tracker["events"])
