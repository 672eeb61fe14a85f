"""Cascade alerts and their human oversight (docs/network.md, "Cascades"): the list,
one alert with its audit trail, and the acknowledgement (an API key, who, a note)."""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from ducats.connect import pg_connect, pg_errors
from ducats.errors import DucatsError
from reads import alerts as alert_reads
from serving import models
from serving.errors import ApiError, NotFound, Unavailable
from serving.routes.common import json, read_gate, res

router = APIRouter(prefix="/api", tags=["alerts"])
AlertId = Annotated[str, Path(min_length=1, max_length=128, pattern=models.TEXT)]


class Acknowledgement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: str = Field(min_length=1, max_length=128, pattern=models.TEXT, description="who acknowledges it")
    note: str | None = Field(None, max_length=2000, pattern=models.TEXT, description="what they found or did")


@router.get("/alerts", response_model=None, summary="Cascade alerts with their state, newest first",
            dependencies=[Depends(read_gate)],
            responses={200: {"model": models.AlertList}, **models.errors(400, 401, 403, 429, 503)})
async def list_alerts(request: Request,
                      state: Annotated[Literal["open", "ended", "unacknowledged"] | None, Query()] = None,
                      limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Response:
    r = res(request)
    async with r.guards.postgres():
        found = await alert_reads.list_alerts(r.pool, state=state, limit=limit)
    return json({"alerts": found, "count": len(found)})


@router.get("/alerts/{alert_id}", response_model=None, summary="One alert and its audit trail",
            dependencies=[Depends(read_gate)],
            responses={200: {"model": models.AlertDetail}, **models.errors(400, 401, 403, 404, 429, 503)})
async def one_alert(request: Request, alert_id: AlertId) -> Response:
    r = res(request)
    async with r.guards.postgres():
        found = await alert_reads.alert(r.pool, alert_id)
    if found is None:
        raise NotFound(f"no alert {alert_id}")
    return json(found)


@router.post("/alerts/{alert_id}/ack", response_model=None,
             summary="Acknowledge an alert (needs an API key): who, when and a note, kept in the audit",
             responses={200: {"model": models.AlertDetail}, **models.errors(400, 401, 403, 404, 409, 422, 429, 503)})
async def acknowledge(request: Request, alert_id: AlertId, body: Acknowledgement) -> Response:
    r = res(request)
    key_id = r.api_keys.require(request)
    await r.limits.check("write", key_id)
    url = r.settings.database_url
    try:
        conn = await pg_connect(url, autocommit=True, connect_timeout=2)
        try:
            with pg_errors(url, session=True):
                done = await alert_reads.acknowledge(conn, alert_id, by=body.by, key_id=key_id, note=body.note)
        finally:
            await conn.close()
    except alert_reads.AlreadyAcknowledged as exc:
        ack = exc.current["acknowledged"]
        raise ApiError(409, f"alert {alert_id} was acknowledged by {ack['by']} at {ack['at']}",
                       code="already_acknowledged") from None
    except DucatsError as exc:
        if not exc.retriable:
            raise
        raise Unavailable("postgres", str(exc)) from None
    if done is None:
        raise NotFound(f"no alert {alert_id}")
    return json(done)
