"""The ASGI application: ``create_app()`` for uvicorn (``ducats api``).

FastAPI on uvicorn with uvloop and httptools (README, "The HTTP API": why).
The lifespan opens the connections (serving/resources.py) and closes them.
"""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from ducats.logs import configure_logging, get_logger
from ducats.settings import Settings, load_settings
from serving import errors
from serving.observability import AccessLines, AccessLog
from serving.resources import Resources
from serving.routes import alerts, cached, ledger, network, site, writes

log = get_logger(__name__)

DESCRIPTION = """The Conscious Ducats pipeline over HTTP.

Cached endpoints answer from an in-process copy of the metric snapshot (Redis);
ledger endpoints from PostgreSQL indexes; writes publish to Kafka and the
ledger decides. Every error is `{"error": code, "detail": ...}`. Writes need
an API key (`Authorization: Bearer <key>`)."""


def build_app(settings: Settings) -> FastAPI:
    """The app for ``settings`` (tests build one per test database)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.res = await Resources.open(settings)
        app.state.pipeline_cache = {}
        log.info("api.ready", host=settings.api_host, port=settings.api_port)
        try:
            yield
        finally:
            await app.state.res.close()

    app = FastAPI(title="Conscious Ducats", version="1", description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    errors.install(app)
    # The routes themselves, not include_router: FastAPI matches an included router through a
    # wrapper that rebuilds its routes' version and scope per candidate, per request (about 60 µs
    # of CPU a request here, a tenth of the floor's; the OpenAPI document is the same).
    routers = [cached.router, ledger.router, network.router, alerts.router, writes.router, site.router, *([site.probes] if settings.api_probes else [])]
    for router in routers:
        app.router.routes.extend(router.routes)
    app.mount("/static", StaticFiles(directory=site.STATIC), name="static")
    info = logging.getLevelNamesMapping().get(settings.log_level.upper(), logging.INFO) <= logging.INFO
    app.add_middleware(AccessLog, lines=AccessLines(json_lines=settings.log_format == "json") if info else None)
    return app


def create_app() -> FastAPI:
    """uvicorn's factory: settings from the environment, logging configured, per worker process."""
    settings = load_settings()
    configure_logging(settings)
    return build_app(settings)
