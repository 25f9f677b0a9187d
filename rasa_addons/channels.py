"""The REST and socket.io channels, hardened for citizens.

Same URL and payload as Rasa's `rest` channel (/webhooks/rest/webhook), plus:
- a message starting with "/" is text, never an intent or a command;
- ID-card and phone numbers are masked before Rasa (and its tracker store) sees them;
- empty or over-long messages get a clear answer without reaching the model;
- if no reply comes within the deadline, or the action server failed and
  nothing was said, the citizen gets an apology and the hotline, never silence.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.core.channels.socketio import SocketIOInput, SocketIOOutput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.config import load_settings
from bot.render import busy_apology
from bot.text import mask_personal_data

log = logging.getLogger(__name__)

REPLY_DEADLINE_S = 4.5


def apology(settings=None) -> Text:
    return busy_apology(settings or load_settings())


def sanitise(text: Text) -> Text:
    text = mask_personal_data(text)
    stripped = text.lstrip()
    if stripped.startswith("/"):
        # Full-width slash: read as text by NLU, never as "/intent" or "/restart".
        text = "／" + stripped[1:]
    return text


def refusal(text: Any, settings) -> Optional[Text]:
    """What to answer, without asking the model, to an empty or over-long message."""
    if not isinstance(text, str) or not text.strip():
        return "请输入您想咨询的问题。"
    if len(text) > settings.max_message_chars:
        return f"消息太长了（最多{settings.max_message_chars}个字），请精简后再发送。"
    return None


async def handled_in_time(on_new_message: Callable[[UserMessage], Awaitable[Any]], message: UserMessage) -> bool:
    """Run the message through Rasa; False when it failed or missed the deadline
    (the handling itself goes on, so nothing is lost from the conversation)."""
    task = asyncio.ensure_future(on_new_message(message))
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout=REPLY_DEADLINE_S)
        return True
    except asyncio.TimeoutError:
        log.warning("%s: no reply within %.1fs for one message; sent the apology",
                    message.input_channel, REPLY_DEADLINE_S)
    except Exception:  # noqa: BLE001 - a citizen must get an answer whatever failed
        log.exception("%s: message handling failed", message.input_channel)
    return False


class SafeRestInput(InputChannel):
    @classmethod
    def name(cls) -> Text:
        return "rest"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        hook = Blueprint("safe_rest_webhook", __name__)
        settings = load_settings()

        @hook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @hook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            body = request.json if isinstance(request.json, dict) else {}
            sender = body.get("sender")
            text = body.get("message")
            if not isinstance(sender, str) or not sender.strip() or len(sender) > 128:
                return response.json({"error": "sender 必须是非空字符串（最多128个字符） / sender must be a string"},
                                     status=400)
            refused = refusal(text, settings)
            if refused:
                return response.json([{"recipient_id": sender, "text": refused}])
            metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else None
            collector = CollectingOutputChannel()
            message = UserMessage(sanitise(text), collector, sender, input_channel=self.name(), metadata=metadata)
            if not await handled_in_time(on_new_message, message):
                return response.json(collector.messages + [{"recipient_id": sender, "text": apology(settings)}])
            messages: List[Dict[Text, Any]] = collector.messages
            if not messages:
                messages = [{"recipient_id": sender, "text": apology(settings)}]
            return response.json(messages)

        return hook


class SafeSocketIOOutput(SocketIOOutput):
    """Rasa 3.6's socket.io output passes a custom JSON payload's keys to
    `AsyncServer.emit` as keyword arguments, so every answer carrying one (our
    clause, department and feedback data) raised TypeError, the turn was
    aborted and nothing was stored. Here the payload goes out as
    `{"custom": ...}` on the bot event, the shape the REST channel returns."""

    async def send_custom_json(self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any) -> None:
        await self._send_message(recipient_id, {"custom": json_message})


class SafeSocketIOInput(SocketIOInput):
    """Rasa's socket.io channel with the same protections as the REST channel.

    Same events and settings as `socketio` in credentials.yml. Before a message
    reaches Rasa: "/" is made text, ID-card and phone numbers are masked, and an
    empty or over-long message is answered on the socket without reaching the
    model. If no reply comes within the deadline, the apology with the hotline
    is sent on the socket.
    """

    @classmethod
    def name(cls) -> Text:
        return "socketio"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        settings = load_settings()

        async def guarded(message: UserMessage) -> None:
            stock = message.output_channel
            out = message.output_channel = SafeSocketIOOutput(stock.sio, stock.bot_message_evt)
            sender = message.sender_id
            refused = refusal(message.text, settings)
            if refused:
                await out.send_text_message(sender, refused)
                return
            message.text = sanitise(message.text)
            if not await handled_in_time(on_new_message, message):
                await out.send_text_message(sender, apology(settings))

        return super().blueprint(guarded)
