"""The REST channel, hardened for citizens.

Same URL and payload as Rasa's `rest` channel (/webhooks/rest/webhook), plus:
- a message starting with "/" is text, never an intent or a command;
- personal data (ID-card, phone and bank-card numbers, e-mail addresses) is
  masked before Rasa (and its tracker store) sees it, in the text and in the
  request's `metadata`; lone surrogates and control characters are replaced;
- empty or over-long messages get a clear answer without reaching the model;
- a message may carry the client's `message_id` (the same on every resend):
  a message already in the conversation is answered again from it, never
  handled and stored twice (rasa_addons/serving.py);
- if no reply comes within the deadline, or the action server failed and
  nothing was said, the citizen gets an apology and the hotline, never silence.

The product has no socket.io channel: the widget talks to the web app, which
uses this one.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.config import load_settings
from bot.render import busy_apology
from bot.text import is_message_id, mask_personal_data, mask_structure, strip_unsafe

log = logging.getLogger(__name__)

REPLY_DEADLINE_S = 4.5
# Metadata is kept only while small and shallow (nothing in the product sends any).
METADATA_MAX_DEPTH = 4
METADATA_MAX_ITEMS = 20
METADATA_MAX_CHARS = 2000


def apology(settings=None) -> Text:
    return busy_apology(settings or load_settings())


def sanitise(text: Text) -> Text:
    text = mask_personal_data(text)
    stripped = text.lstrip()
    if stripped.startswith("/"):
        # Full-width slash: read as text by NLU, never as "/intent" or "/restart".
        text = "／" + stripped[1:]
    return text


def masked_metadata(value: Any) -> Optional[Dict[Text, Any]]:
    """The request's metadata with its personal data masked, or None when it is
    not a small JSON object (it is then dropped, never stored)."""
    if not isinstance(value, dict):
        return None
    try:
        masked = mask_structure(value, max_depth=METADATA_MAX_DEPTH, max_items=METADATA_MAX_ITEMS)
        if len(json.dumps(masked, ensure_ascii=False)) > METADATA_MAX_CHARS:
            raise ValueError("too large")
    except (ValueError, TypeError, RecursionError) as exc:
        log.info("rest: metadata dropped (%s)", exc)
        return None
    return masked


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


def conversation_store_failed(sender: Text, started: float) -> bool:
    try:
        from rasa_addons.tracker_store import failed_since
    except Exception:  # noqa: BLE001 - another tracker store is configured
        return False
    return failed_since(sender, started)


class WholeMessageCollector(CollectingOutputChannel):
    """Rasa's collector sends a message's custom data as a message of its own, so REST
    clients got bubbles with no text; here the custom data stays on its message."""

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        if isinstance(message.get("custom"), dict) and (message.get("text") or message.get("buttons")):
            await self._persist_message(self._message(recipient_id, text=message.get("text"),
                                                      buttons=message.get("buttons") or None,
                                                      custom=message["custom"]))
            return
        await super().send_response(recipient_id, message)


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
            if (not isinstance(sender, str) or not sender.strip() or len(sender) > 128
                    or strip_unsafe(sender) != sender):
                return response.json({"error": "sender 必须是非空字符串（最多128个字符，不含控制字符） / sender must be a printable string"},
                                     status=400)
            message_id = body.get("message_id")
            if message_id is not None and not is_message_id(message_id):
                return response.json({"error": "message_id 须为8到64个字母、数字或 - _ . : / message_id must be "
                                               "8-64 letters, digits or - _ . :"}, status=400)
            refused = refusal(text, settings)
            if refused:
                return response.json([{"recipient_id": sender, "text": refused}])
            metadata = masked_metadata(body.get("metadata"))
            collector = WholeMessageCollector()
            message = UserMessage(sanitise(text), collector, sender, input_channel=self.name(), metadata=metadata,
                                  message_id=message_id)
            started = time.monotonic()
            handled = await handled_in_time(on_new_message, message)
            if conversation_store_failed(sender, started):
                # The conversation could not be read or stored: answering as if nothing
                # happened would lose the message and its facts. 503 tells the web app to retry.
                return response.json({"error": "conversation store unavailable", "retry": True,
                                      "text": apology(settings)}, status=503)
            if not handled:
                return response.json(collector.messages + [{"recipient_id": sender, "text": apology(settings)}])
            messages: List[Dict[Text, Any]] = collector.messages
            if not messages:
                messages = [{"recipient_id": sender, "text": apology(settings)}]
            return response.json(messages)

        return hook
