"""From Redis only, through the in-process snapshot feed (serving/feed.py): the
snapshot, the top-circulating ducats, the velocity windows, and the snapshot
stream (Server-Sent Events). No request waits on Redis."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sse_starlette import EventSourceResponse
from starlette.responses import Response

from serving import models
from serving.feed import TOP_MAX
from serving.routes.common import json, read_gate, res

router = APIRouter(prefix="/api", tags=["metrics (cached)"], dependencies=[Depends(read_gate)])


def _etag(request: Request, version: int, stale: bool, body: bytes) -> Response:
    tag = f'"v{version}{"s" if stale else ""}"'
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers={"ETag": tag})
    return json(body, headers={"ETag": tag, "Cache-Control": "no-cache"})


@router.get("/metrics/current", response_model=None, summary="The current metric snapshot",
            responses={200: {"model": models.Snapshot}, 304: {"description": "not modified (If-None-Match)"},
                       **models.errors(400, 401, 403, 429, 503)})
async def current(request: Request) -> Response:
    copy, stale = res(request).feed.current()
    return _etag(request, copy.version, stale, copy.stale if stale else copy.fresh)


@router.get("/ducats/top-circulating", response_model=None, summary="The most transferred ducats",
            responses={200: {"model": models.TopCirculating}, **models.errors(400, 401, 403, 429, 503)})
async def top_circulating(request: Request, limit: Annotated[int, Query(ge=1, le=TOP_MAX)] = 10) -> Response:
    copy, stale = res(request).feed.current()
    return json(copy.top_body(limit, stale))


@router.get("/velocity/realtime", response_model=None, summary="Velocity over the 1m, 1h and 1d windows",
            responses={200: {"model": models.Velocity}, **models.errors(400, 401, 403, 429, 503)})
async def velocity(request: Request) -> Response:
    copy, stale = res(request).feed.current()
    return json(copy.velocity_stale if stale else copy.velocity_fresh)


@router.get("/stream/metrics", response_model=None, summary="Server-Sent Events: one per new snapshot version",
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "event: snapshot, id: its version, data: the snapshot JSON"},
                       **models.errors(401, 403, 429)})
async def stream(request: Request) -> EventSourceResponse:
    feed = res(request).feed
    last_id = request.headers.get("last-event-id")
    after = int(last_id) if last_id and last_id.isdigit() else None

    async def events():  # type: ignore[no-untyped-def]
        seen = after
        while True:
            copy = await feed.next_copy(seen, timeout=15)
            if copy is None:
                continue  # sse-starlette sends its own keep-alive pings meanwhile
            seen = copy.version
            yield {"event": "snapshot", "id": str(copy.version), "data": copy.event.decode()}

    return EventSourceResponse(events(), ping=15, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
