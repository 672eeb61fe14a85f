"""Every error the API answers, as one JSON shape: ``{"error": code, "detail": ...}``.

Handlers raise :class:`ApiError` (or a subclass); :func:`install` turns it, and
the framework's own validation and routing errors, into that body with the
right status. A 503 carries ``Retry-After``.
"""
from __future__ import annotations

import time

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from ducats.logs import get_logger
from serving.observability import UNEXPECTED

log = get_logger(__name__)

# The codes a client can switch on (README, "The HTTP API": Errors).
_BY_STATUS = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "too_large",
              415: "unsupported_media_type", 422: "invalid", 429: "rate_limited", 503: "unavailable"}


class ApiError(Exception):
    """An answer other than success: ``status``, a stable ``code``, a human ``detail``."""

    def __init__(self, status: int, detail: Any, *, code: str | None = None, retry_after: float | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail
        self.code = code or _BY_STATUS.get(status, "error")
        self.headers = dict(headers or {})
        if retry_after is not None:
            self.headers["Retry-After"] = str(max(1, round(retry_after)))


class NotFound(ApiError):
    def __init__(self, detail: str) -> None:
        super().__init__(404, detail)


class Unavailable(ApiError):
    """A service the answer needs is down or over its budget: try again after ``retry_after``."""

    def __init__(self, service: str, detail: str, *, retry_after: float = 1.0) -> None:
        super().__init__(503, detail, code=f"{service}_unavailable", retry_after=retry_after)
        self.service = service


def error_response(status: int, code: str, detail: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps({"error": code, "detail": detail}), status_code=status,
                    media_type="application/json", headers=headers)


def install(app: FastAPI) -> None:
    """Register the JSON error handlers on ``app``."""

    async def api_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.detail, exc.headers)

    async def validation(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        detail = [{"in": ".".join(str(p) for p in e.get("loc", ())), "msg": e.get("msg")} for e in exc.errors()]
        body = any(e["in"].startswith("body") for e in detail)
        return error_response(422 if body else 400, "invalid" if body else "bad_request", detail)

    async def http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return error_response(exc.status_code, _BY_STATUS.get(exc.status_code, "error"), exc.detail,
                              dict(exc.headers or {}))

    tracebacks = TracebackBudget()

    async def unexpected(request: Request, exc: Exception) -> Response:
        UNEXPECTED.labels(type(exc).__name__).inc()
        if (repeats := tracebacks.take(type(exc).__name__)) is not None:
            log.exception("api.error", path=request.url.path, error=repr(exc), unlogged_since_last=repeats)
        return error_response(500, "internal", "an unexpected error; it was logged")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


class TracebackBudget:
    """At most one logged traceback per error type every ``every`` seconds.

    A storm of one error (bench api's unguarded probe at 1,000/s, a PoolTimeout
    each) logged a traceback per request: 970 MB of log, and the CPU to render
    it, which fed the storm. The others are counted in
    ``ducats_api_unexpected_errors_total`` and reported with the next traceback."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self.last: dict[str, float] = {}
        self.skipped: dict[str, int] = {}

    def take(self, kind: str) -> int | None:
        """The number of this kind left unlogged since the last traceback, if one may be logged now."""
        now = time.monotonic()
        if now - self.last.get(kind, -self.every) < self.every:
            self.skipped[kind] = self.skipped.get(kind, 0) + 1
            return None
        self.last[kind] = now
        return self.skipped.pop(kind, 0)
