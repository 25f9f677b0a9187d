"""Per-client request limits: who the client is, and how often it may call each endpoint.

Routes only see `@limited(bucket)` and the RateLimiter interface. One web
worker counts in its own memory (MemoryRateLimiter); several workers or
replicas count together in Redis (RedisRateLimiter, RATE_LIMIT_REDIS_URL), so
a client gets the same allowance however many processes serve it.
"""
from __future__ import annotations

import abc
import asyncio
import functools
import hashlib
import ipaddress
import logging
import os
import time
from collections import OrderedDict

from . import ApiError

log = logging.getLogger(__name__)

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


# GCRA in one step, atomic in Redis. KEYS[1]: the client's key in a bucket;
# ARGV: one request's share of the window, how far ahead the allowance may be
# spent, and (tests only) the time, all in integer microseconds. The key holds
# the time its allowance is next full, and expires at that time: an absent key
# and an expired one mean the same (full allowance), so memory stays bounded.
# Time comes from Redis, so workers on machines whose clocks differ agree.
GCRA_SCRIPT = """
if redis.replicate_commands then redis.replicate_commands() end
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local due = tonumber(redis.call('GET', KEYS[1])) or now
if due < now then due = now end
if due - now > burst then return due - now - burst end
local next_due = due + interval
redis.call('SET', KEYS[1], string.format('%.0f', next_due), 'PX', math.ceil((next_due - now) / 1000))
return 0
"""
GCRA_SHA = hashlib.sha1(GCRA_SCRIPT.encode()).hexdigest()

KEY_PREFIX = "ordos:ratelimit:"
REDIS_TIMEOUT_S = 1.0       # one call; past it the request is counted in memory instead
RETRY_REDIS_AFTER_S = 2.0   # after a failure, this process counts in memory this long before trying Redis again
WARN_EVERY_S = 300.0        # while Redis stays unreachable, one warning per process this often


class RedisConnection:
    """One Redis client per process and event loop, made on first use.

    Sanic forks its workers after the app (and its limiters) is built: a
    connection made before the fork would be shared by every worker, so none
    is made until a worker needs it. Also tracks whether Redis is reachable,
    for the limiters' fallback and its (rate-limited) log lines.
    """

    def __init__(self, url: str, timeout_s: float = REDIS_TIMEOUT_S):
        self.url, self.timeout_s = url, timeout_s
        self._client = None
        self._owner: tuple[int, object] | None = None
        self.down_since: float | None = None
        self._retry_at = 0.0
        self._warned_at = float("-inf")

    def client(self):
        owner = (os.getpid(), asyncio.get_running_loop())
        if self._client is None or self._owner != owner:
            import redis.asyncio

            self._client = redis.asyncio.Redis.from_url(self.url, socket_timeout=self.timeout_s,
                                                        socket_connect_timeout=self.timeout_s)
            self._owner = owner
        return self._client

    def usable(self) -> bool:
        return self.down_since is None or time.monotonic() >= self._retry_at

    def failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self.down_since is None:
            self.down_since = now
        self._retry_at = now + RETRY_REDIS_AFTER_S
        if now - self._warned_at >= WARN_EVERY_S:
            self._warned_at = now
            log.warning("rate limits: Redis at %s is unreachable (%s: %s); counting in this process's memory "
                        "until it is back", _without_password(self.url), exc.__class__.__name__, exc)

    def succeeded(self) -> None:
        if self.down_since is not None:
            log.warning("rate limits: Redis at %s is back after %.0f s; counting there again",
                        _without_password(self.url), time.monotonic() - self.down_since)
            self.down_since = None
            self._warned_at = float("-inf")


def _without_password(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{parts.username or ''}:***@{netloc}").geturl()


class RedisRateLimiter(RateLimiter):
    """The same limits as MemoryRateLimiter, counted in Redis for every worker and replica.

    When Redis fails or cannot be reached, the request is not refused: it is
    counted in this process's MemoryRateLimiter instead (a warning is logged,
    not one per request), and Redis is tried again a moment later.
    """

    def __init__(self, connection: RedisConnection, bucket: str, limit: int, window_s: float,
                 prefix: str = KEY_PREFIX, max_clients: int = MAX_CLIENTS):
        if limit < 1 or window_s <= 0:
            raise ValueError("a rate limit needs limit >= 1 and a positive window")
        self.connection, self.limit, self.window_s = connection, limit, window_s
        self.prefix = f"{prefix}{bucket}:"
        self._interval_us = round(window_s / limit * 1e6)
        self._burst_us = round(window_s * 1e6) - self._interval_us
        self.fallback = MemoryRateLimiter(limit, window_s, max_clients)

    def key(self, key: str) -> str:
        return self.prefix + key

    async def wait_s(self, key: str, now: float | None = None) -> float:
        """Count one request in Redis (at Redis's time, or `now` in seconds: tests only); raises a Redis error."""
        from redis.exceptions import NoScriptError

        args = (self._interval_us, self._burst_us, "" if now is None else round(now * 1e6))
        client = self.connection.client()
        try:
            wait_us = await client.evalsha(GCRA_SHA, 1, self.key(key), *args)
        except NoScriptError:  # a restarted or new Redis: EVAL loads the script again
            wait_us = await client.eval(GCRA_SCRIPT, 1, self.key(key), *args)
        return int(wait_us) / 1e6

    async def acquire(self, key: str) -> float:
        from redis.exceptions import RedisError

        connection = self.connection
        if connection.usable():
            try:
                wait = await self.wait_s(key)
            except (RedisError, OSError, asyncio.TimeoutError) as exc:
                connection.failed(exc)
            else:
                connection.succeeded()
                return wait
        return self.fallback.wait_s(key)


def make_limiters(settings) -> dict[str, RateLimiter]:
    """Each endpoint bucket's limiter: in Redis when RATE_LIMIT_REDIS_URL is set, else in memory."""
    limits = {CHAT: settings.rate_limit_per_minute, **{b: settings.api_rate_limit_per_minute for b in API_BUCKETS}}
    url = settings.rate_limit_redis_url
    if url:
        connection = RedisConnection(url)
        return {bucket: RedisRateLimiter(connection, bucket, limit, 60.0) for bucket, limit in limits.items()}
    return {bucket: MemoryRateLimiter(limit, 60.0) for bucket, limit in limits.items()}


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
