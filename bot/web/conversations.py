"""Conversation ids the server issues and signs, so a client can only use ids it was given.

An id is "<value>.<signature>": 32 random hex characters, then the HMAC-SHA256
of the value under the secret key (base64url). Rasa knows the conversation by
the value alone. Ids carry no state, so every worker that shares the key
accepts them.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

HEADER = "X-Conversation-Id"
# \A...\Z: "$" would also accept an id followed by a newline.
ID_FORMAT = re.compile(r"\A([0-9a-f]{32})\.([A-Za-z0-9_-]{43})\Z")


class ConversationIds:
    def __init__(self, secret: bytes):
        self._secret = secret

    def _sign(self, value: str) -> str:
        digest = hmac.new(self._secret, b"conversation:" + value.encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")

    def issue(self) -> str:
        value = secrets.token_hex(16)
        return f"{value}.{self._sign(value)}"

    def verify(self, token: object) -> str | None:
        """The value part (Rasa's sender id) of an id this server issued, else None."""
        if not isinstance(token, str):
            return None
        m = ID_FORMAT.match(token)
        if m is None:
            return None
        value, signature = m.groups()
        return value if hmac.compare_digest(signature, self._sign(value)) else None
