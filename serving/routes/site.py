"""The site around the API: the dashboard at ``/``, the interactive docs at
``/docs`` (Swagger UI, vendored: no CDN), health, the pipeline's state for the
dashboard, Prometheus ``/metrics``, and the bench's floor and probes."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import FileResponse, HTMLResponse, Response

from reads import pipeline as pipeline_reads
from serving import models
from serving.observability import metrics_response
from serving.routes.common import json, read_gate, res

STATIC = Path(__file__).resolve().parent.parent / "static"
router = APIRouter()
PIPELINE_TTL = 2.0
_FLOOR = b'{"ok":true}'


@router.get("/", include_in_schema=False)
async def dashboard() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/docs", include_in_schema=False)
async def docs() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="Conscious Ducats API",
                               swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
                               swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css",
                               swagger_favicon_url="/static/favicon.svg")


@router.get("/healthz", tags=["site"], summary="Liveness: the process answers",
            responses={200: {"content": {"application/json": {}}}})
async def healthz() -> Response:
    return json(_FLOOR)


@router.get("/api/ping", tags=["site"], summary="The floor: a route that touches nothing (bench api's baseline)",
            responses={200: {"content": {"application/json": {}}}})
async def ping() -> Response:
    return Response(_FLOOR, media_type="application/json")


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return metrics_response()


@router.get("/api/pipeline", response_model=None, tags=["site"], dependencies=[Depends(read_gate)],
            summary="The pipeline's health: ledger lag, live workers, the API's breakers",
            responses={200: {"model": models.Pipeline}, **models.errors(400, 401, 403, 429)})
async def pipeline(request: Request) -> Response:
    r = res(request)
    cache: dict[str, Any] = request.app.state.pipeline_cache
    if time.monotonic() - cache.get("at", 0.0) > PIPELINE_TTL:
        lag = workers = None
        try:
            async with r.guards.kafka(3.0):
                lag = await pipeline_reads.ledger_lag(r.settings)
        except Exception:  # noqa: BLE001  the panel shows "unknown"; the breakers and the logs say why
            lag = None
        try:
            async with r.guards.redis(1.0):
                workers = await pipeline_reads.live_workers(r.settings)
        except Exception:  # noqa: BLE001
            workers = None
        cache.update(at=time.monotonic(), lag=lag, workers=workers)
    return json({"ledgerLag": cache["lag"], "workers": cache["workers"], "breakers": r.guards.states()})


# The bench's baselines on the same server (enabled by DUCATS_API_PROBES=true): one raw Redis GET,
# one primary-key SELECT through the same pool, and one record sent with the writes' producer
# (idempotent, acks=all) and acknowledged, to <prefix>.probe, which the bench creates; with no guard
# and no serialization of note.
probes = APIRouter(prefix="/_probe", include_in_schema=False)
PROBE_TOPIC = "probe"


@probes.get("/redis")
async def probe_redis(request: Request) -> Response:
    r = res(request)
    value = await r.redis.get(r.keys.snapshot_version)
    return Response(b'{"v":' + (value if isinstance(value, bytes) else b"null") + b"}", media_type="application/json")


@probes.get("/postgres")
async def probe_postgres(request: Request) -> Response:
    r = res(request)
    async with r.pool.connection() as conn:
        row = await (await conn.execute("SELECT holder FROM ducats WHERE id = %s", [1_000_001])).fetchone()
    return json({"holder": None if row is None else row[0]})


@probes.post("/kafka")
async def probe_kafka(request: Request) -> Response:
    r = res(request)
    producer = await r.writer.producer()
    meta = await producer.send_and_wait(f"{r.settings.topic_prefix}.{PROBE_TOPIC}", _FLOOR, key=b"probe")
    return Response(b'{"offset":%d}' % meta.offset, status_code=202, media_type="application/json")
