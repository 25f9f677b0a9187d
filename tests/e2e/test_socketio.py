"""End to end over socket.io (the channel other sites can embed): answers arrive on the
socket, with the same protections as the REST channel."""
import asyncio
import uuid

import pytest
import socketio

from tests.e2e.conftest import RASA_PORT

pytestmark = pytest.mark.e2e


async def converse(messages, wait_s=20.0):
    """Send each message on one persistent session; collect the bot's texts per message.
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
            replies.append("\n".join(m.get("text", "") for m in got))
    finally:
        await client.disconnect()
    return session_id, replies


def test_socketio_answers_and_handles_empty_and_slash_messages(stack):
    _, replies = asyncio.run(converse(["育儿假有几天", "   ", "/restart 我电话13912345678"]))
    answer, empty, slash = replies
    assert "10天育儿假" in answer and "依据：《实施方案》二（四）1" in answer
    assert "请输入" in empty
    assert slash  # an answer, not silence
    assert "13912345678" not in slash
