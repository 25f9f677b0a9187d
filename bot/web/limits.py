"""Per-client request limits: who the client is, and how often it may call each endpoint.

Routes only see `@limited(bucket)` and the RateLimiter interface, so a limiter
shared by several web workers (Redis, say) can replace the in-memory one by
changing `make_limiters` alone.
"""
from __future__ import annotations

import abc
import functools
import ipaddress
import time
from collections import OrderedDict

from . import ApiError

# Clients remembered per endpoint; the least recently seen is forgotten first.
# A forgotten client has, at worst, its full allowance again.
MAX_CLIENTS = 100_000

# Endpoint buckets; each has its own allowance per client.
CHAT = "chat"
API_BUCKETS = ("session", "history", "search", "eligibility", "departments", "clauses", "welcome")


class RateLimiter(abc.ABC):
    @abc.abstractmethod
    async def acquire(self, key: str) -> float:
        """Count one request from `key`: 0.0 when it may go ahead, else the seconds until it may."""


class MemoryRateLimiter(RateLimiter):
    """At most `limit` requests per `window_s` per key, in one process.

    Generic cell rate algorithm: one timestamp per key (the time its allowance is
    next full), so a call is O(1) however many keys there are; keys live in an
    LRU table of at most `max_clients`.
    """

    def __init__(self, limit: int, window_s: float, max_clients: int = MAX_CLIENTS):
        if limit < 1 or window_s <= 0:
            raise ValueError("a rate limit needs limit >= 1 and a positive window")
        self.limit, self.window_s, self.max_clients = limit, window_s, max_clients
        self._interval = window_s / limit           # one request's share of the window
        self._burst = window_s - self._interval     # how far ahead of now the allowance may be spent
        self._due: OrderedDict[str, float] = OrderedDict()

    def wait_s(self, key: str, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        due = max(self._due.get(key, now), now)
        if due - now > self._burst:
            return due - now - self._burst
        self._due[key] = due + self._interval
        self._due.move_to_end(key)
        if len(self._due) > self.max_clients:
            self._due.popitem(last=False)
        return 0.0

    def allow(self, key: str, now: float | None = None) -> bool:
        return self.wait_s(key, now) == 0.0

    async def acquire(self, key: str) -> float:
        return self.wait_s(key)

    def __len__(self) -> int:
        return len(self._due)


def make_limiters(settings) -> dict[str, RateLimiter]:
    limiters: dict[str, RateLimiter] = {CHAT: MemoryRateLimiter(settings.rate_limit_per_minute, 60.0)}
    for bucket in API_BUCKETS:
        limiters[bucket] = MemoryRateLimiter(settings.api_rate_limit_per_minute, 60.0)
    return limiters


def client_ip(request, trusted_proxies: tuple = ()) -> str:
    """The client's address: the peer, or, when the peer is a trusted proxy, the
    X-Forwarded-For hop just before the trusted proxies (a client can prepend
    anything to that header, but cannot change what our proxies appended)."""
    peer = request.ip or ""
    if not trusted_proxies or not _is_trusted(peer, trusted_proxies):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getall("x-forwarded-for", [])).split(",") if h.strip()]
    client = peer
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break  # not an address: keep the last hop a trusted proxy vouched for
        client = hop
        if not _is_trusted(hop, trusted_proxies):
            break
    return client


def _is_trusted(address: str, trusted_proxies: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted_proxies)


def limited(bucket: str, message_zh: str = "您的操作太频繁了，请稍等一会儿再试"):
    """Refuse the request with 429 (and Retry-After) when its client is over the bucket's limit."""

    def decorate(handler):
        @functools.wraps(handler)
        async def wrapper(request, *args, **kwargs):
            ctx = request.app.ctx
            wait = await ctx.limiters[bucket].acquire(client_ip(request, ctx.trusted_proxies))
            if wait > 0:
                raise ApiError(429, None, message_zh, "too many requests, slow down", retry_after=wait)
            return await handler(request, *args, **kwargs)

        return wrapper

    return decorate
