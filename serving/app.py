"""The ASGI application: ``create_app()`` for uvicorn (``ducats api``).

FastAPI on uvicorn with uvloop and httptools (README, "The HTTP API": why).
The lifespan opens the connections (serving/resources.py) and closes them.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from ducats.logs import configure_logging, get_logger
from ducats.settings import Settings, load_settings
from serving import errors
from serving.observability import AccessLog
from serving.resources import Resources
from serving.routes import cached, ledger, site, writes

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
    for router in (cached.router, ledger.router, writes.router, site.router):
        app.include_router(router)
    if settings.api_probes:
        app.include_router(site.probes)
    app.mount("/static", StaticFiles(directory=site.STATIC), name="static")
    app.add_middleware(AccessLog)
    return app


def create_app() -> FastAPI:
    """uvicorn's factory: settings from the environment, logging configured, per worker process."""
    settings = load_settings()
    configure_logging(settings)
    return build_app(settings)
