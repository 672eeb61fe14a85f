"""Per-client rate limits, counted in Redis by the `limits` library (moving
window), so every API process and replica shares one count per client.

The client is the API key's id when the request carries one, else its IP
address. Writes are limited by DUCATS_API_WRITE_LIMIT (default 50/second);
reads only when DUCATS_API_READ_LIMIT is set, because a Redis round trip per
read would cost the cached endpoints their budget (README, "The HTTP API").
Over the limit the answer is 429 with Retry-After. Counting goes through the
Redis guard; when Redis cannot count, the request is let through and
``ducats_api_rate_limit_skipped_total`` says so: protection fails open, the
pipeline's correctness never depends on it.
"""
from __future__ import annotations

import time
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from ducats.errors import ConfigError
from ducats.keys import RedisKeys
from ducats.settings import Settings
from serving.errors import ApiError, Unavailable
from serving.guard import Guard
from serving.observability import LIMITER_SKIPPED, RATE_LIMITED


def _limit(text: str, name: str) -> RateLimitItem | None:
    if not text.strip():
        return None
    try:
        return parse(text)
    except ValueError as exc:
        raise ConfigError(f"{name}={text!r} is not a rate limit like '50/second'") from exc


def _storage_uri(redis_url: str) -> str:
    parts = urlsplit(redis_url)
    return urlunsplit(("async+" + parts.scheme, parts.netloc, parts.path, parts.query, ""))


def check_limits(settings: Settings) -> None:
    """Raise ConfigError for a limit setting that does not parse."""
    _limit(settings.api_write_limit, "DUCATS_API_WRITE_LIMIT")
    _limit(settings.api_read_limit, "DUCATS_API_READ_LIMIT")


class RateLimits:
    def __init__(self, *, settings: Settings, guard: Guard, keys: RedisKeys, client: aioredis.Redis) -> None:
        self.guard = guard
        self.write = _limit(settings.api_write_limit, "DUCATS_API_WRITE_LIMIT")
        self.read = _limit(settings.api_read_limit, "DUCATS_API_READ_LIMIT")
        # the API's own client's connection pool: no second set of connections, one place to close
        self.storage = RedisStorage(_storage_uri(settings.redis_url), implementation="redispy",
                                    key_prefix=keys.ratelimit,
                                    connection_pool=client.connection_pool)  # type: ignore[arg-type]
        self.limiter = MovingWindowRateLimiter(self.storage)

    async def check(self, scope: str, client: str) -> None:
        """Count one request of ``client``; 429 if it is over the ``scope`` ("read"/"write") limit."""
        item = self.write if scope == "write" else self.read
        if item is None:
            return
        try:
            async with self.guard():
                allowed = await self.limiter.hit(item, scope, client)
                if allowed:
                    return
                stats = await self.limiter.get_window_stats(item, scope, client)
        except Unavailable:
            LIMITER_SKIPPED.labels(scope).inc()
            return
        RATE_LIMITED.labels(scope).inc()
        retry = max(1.0, stats.reset_time - time.time())
        raise ApiError(429, f"over the {scope} limit of {item}; slow down", code="rate_limited",
                       retry_after=retry)
