"""Connections to PostgreSQL and Redis, with their failures in the project's
error tree: one place decides whether a failure is worth retrying.

- The service did not answer (down, restarting, unreachable): ServiceUnavailable,
  retriable.
- It answered and refused us (a wrong password or user, a database or table that
  does not exist): ServiceRefused, permanent: retrying cannot cure it.

psycopg gives no SQLSTATE for a failed connection attempt (psycopg#1188), so the
decision never reads the message: after a failed connect, libpq's PQping asks the
server whether it accepts connections at all. OK means it does, so the refusal
was ours to fix; REJECT (starting up, shutting down) and NO_RESPONSE are outages.
A server that finishes starting between the failed attempt and the ping answers OK
to a refusal that was an outage ("not yet accepting connections"): so an OK is
checked by one more connection attempt, and only a second refusal is ours to fix.
Every message names the service, the URL with its password masked, and the fix.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg
import redis.asyncio as aioredis
import redis.exceptions as redis_errors
from psycopg import pq
from psycopg_pool import AsyncConnectionPool

from ducats.errors import ConfigError, DucatsError, ServiceRefused, ServiceUnavailable, mask_url

CONNECT_TIMEOUT = 5  # seconds for one connection attempt (libpq connect_timeout, redis socket timeout)
PG_FIX = "start it (`ducats up postgres`) or set DATABASE_URL"
REDIS_FIX = "start it (`ducats up redis`) or set REDIS_URL"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def pg_error(exc: psycopg.Error, url: str, *, session: bool = False) -> DucatsError:
    """The project's error for a psycopg failure talking to ``url``.

    ``session``: the failure came from an established connection, not from a
    connection attempt. A connection that breaks there (no SQLSTATE) went away in
    an outage: PQping cannot tell a refusal then, the server may be back already."""
    where = f"PostgreSQL at {mask_url(url)}"
    if isinstance(exc, psycopg.errors.UndefinedTable | psycopg.errors.UndefinedFunction
                  | psycopg.errors.UndefinedColumn):
        return ServiceRefused(f"{where}: {_first_line(exc)}; fix: run `ducats migrate`")
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return ServiceRefused(f"{where}: {_first_line(exc)}; fix: grant the role what it needs")
    if isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None and not session:
        return _pg_connect_error(exc, url, where)
    if isinstance(exc, psycopg.OperationalError):  # 57P01 admin shutdown, 57P03 cannot connect now, ...
        return ServiceUnavailable(f"{where} went away: {_first_line(exc)}; fix: {PG_FIX}")
    return ServiceRefused(f"{where}: {_first_line(exc)}")


def _pg_connect_error(exc: psycopg.OperationalError, url: str, where: str) -> DucatsError:
    try:
        ping = pq.Ping(pq.PGconn.ping(psycopg.conninfo.make_conninfo(url, connect_timeout=2).encode()))
    except psycopg.ProgrammingError:
        ping = pq.Ping.NO_ATTEMPT
    if ping is pq.Ping.NO_ATTEMPT:
        return ConfigError(f"DATABASE_URL {mask_url(url)} is not a valid PostgreSQL URL; fix: set DATABASE_URL")
    if ping is pq.Ping.OK and _connects(url):  # it came up after our attempt: that was an outage
        return ServiceUnavailable(f"{where} was starting: {_first_line(exc)}; fix: {PG_FIX}")
    if ping is pq.Ping.OK:  # it accepts connections, just not ours
        return ServiceRefused(f"{where} refused the connection: {_first_line(exc)}; "
                              "fix: check the user, password and database in DATABASE_URL")
    state = "is starting or stopping" if ping is pq.Ping.REJECT else "is not answering"
    return ServiceUnavailable(f"{where} {state}; fix: {PG_FIX}")


def _connects(url: str) -> bool:
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.Error:
        return False
    return True


@contextlib.contextmanager
def pg_errors(url: str, *, session: bool = False) -> Iterator[None]:
    """Inside: a psycopg error leaves as the project's error (see :func:`pg_error`);
    ``session=True`` around statements on a connection that was established."""
    try:
        yield
    except psycopg.Error as exc:
        raise pg_error(exc, url, session=session) from exc


async def pg_connect(url: str, **kwargs: Any) -> psycopg.AsyncConnection[Any]:
    """An async connection to ``url``; failures are ServiceUnavailable or ServiceRefused."""
    kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT)
    with pg_errors(url):
        return await psycopg.AsyncConnection.connect(url, **kwargs)


def pg_sync_connect(url: str, **kwargs: Any) -> psycopg.Connection[Any]:
    """The blocking twin of :func:`pg_connect` (migrations, CLI checks)."""
    kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT)
    with pg_errors(url):
        return psycopg.connect(url, **kwargs)


async def pg_pool(url: str, *, min_size: int = 1, max_size: int = 4, **kwargs: Any) -> AsyncConnectionPool:
    """An opened pool; a first connection that fails is classified like :func:`pg_connect`'s.

    The pool reconnects on demand afterwards: with ``reconnect_timeout=0`` a failed
    background connect gives up at once (psycopg_pool then shrinks the pool), and the
    next ``connection()`` that has to wait grows it again with a fresh attempt. So an
    outage never closes the pool, and no backoff is left to wait out once the server
    is back; a caller's wait is bounded by its own ``timeout``."""
    await (await pg_connect(url, **kwargs)).close()  # a classified error now, not a pool timeout
    pool = AsyncConnectionPool(url, min_size=min_size, max_size=max_size, open=False, reconnect_timeout=0,
                               kwargs={"connect_timeout": CONNECT_TIMEOUT, **kwargs})
    await pool.open(wait=True, timeout=30)
    return pool


def redis_error(exc: redis_errors.RedisError, url: str) -> DucatsError:
    """The project's error for a redis-py failure talking to ``url``."""
    where = f"Redis at {mask_url(url)}"
    # AuthenticationError derives from ConnectionError: test it first.
    if isinstance(exc, redis_errors.AuthenticationError | redis_errors.AuthenticationWrongNumberOfArgsError
                  | redis_errors.NoPermissionError):
        return ServiceRefused(f"{where} refused us: {_first_line(exc)}; fix: check the password in REDIS_URL")
    if isinstance(exc, redis_errors.ConnectionError | redis_errors.TimeoutError):  # BusyLoadingError too
        return ServiceUnavailable(f"{where} is not answering; fix: {REDIS_FIX}")
    return ServiceRefused(f"{where}: {_first_line(exc)}")


@contextlib.contextmanager
def redis_errors_of(url: str) -> Iterator[None]:
    """Inside: a redis-py error leaves as the project's error (see :func:`redis_error`)."""
    try:
        yield
    except redis_errors.RedisError as exc:
        raise redis_error(exc, url) from exc


def redis_client(url: str) -> aioredis.Redis:
    """A client for ``url``, not yet connected (for a writer that must start while Redis is
    down). redis-py reconnects by itself on the next command after an outage; it is built
    with timeouts so no call hangs."""
    try:
        return aioredis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT,
                                       socket_timeout=CONNECT_TIMEOUT, health_check_interval=10)
    except ValueError as exc:
        raise ConfigError(f"REDIS_URL {mask_url(url)} is not a valid Redis URL; fix: set REDIS_URL") from exc


async def redis_connect(url: str) -> aioredis.Redis:
    """A client for ``url`` (:func:`redis_client`) that answered PING."""
    client = redis_client(url)
    with redis_errors_of(url):
        try:
            await client.ping()
        except BaseException:
            await client.aclose()
            raise
    return client
