"""Writes: validate a transfer or a mint against the schemas/ contracts and
publish it through the idempotent producer; the ledger decides.

202 with ``Location`` once Kafka acknowledged the record; with ``?wait=``
(at most 5 s) the answer waits for the ledger's decision and is 200 when it
comes in time. A repeated transactionId (or mintId) is harmless: the ledger
applies an id once, and its status is the first decision. A 503 means the
record was not confirmed; sending it again with the same id is always safe.
Nothing is published for a request refused here (key, limit, size, contract).
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from ducats.logs import get_logger
from schemas import codec
from schemas.errors import InvalidEvent
from schemas.models import DeadLetterReason
from serving import models
from serving.errors import ApiError, Unavailable
from serving.observability import PUBLISHED
from serving.resources import Resources
from serving.routes.common import json, res
from serving.routes.ledger import mint_outcome, transaction_outcome

log = get_logger(__name__)
router = APIRouter(prefix="/api", tags=["writes"])

MAX_WAIT = 5.0
POLL = 0.02
PENDING_TTL = 24 * 3600
# not_json: 400; a field over the contract's limits (oversize: 10,000 ids, 16 KiB of metadata) is the
# body breaking the contract, 422 like any violation; 413 is kept for the body over DUCATS_API_MAX_BODY.
_STATUS_OF_REASON = {DeadLetterReason.NOT_JSON: 400}


def _contract(name: str) -> dict[str, Any]:
    doc = codec.load_schema(name)
    return {k: v for k, v in doc.items() if k not in ("$schema", "$id")}


def _body_doc(name: str) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": _contract(name)}}}}


_WRITE_ERRORS = models.errors(400, 401, 403, 413, 415, 422, 429, 503)
Wait = Annotated[float, Query(ge=0, le=MAX_WAIT, description="seconds to wait for the ledger's decision")]


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (before reading it when the
    length is declared) and with 415 when it is declared as something other than JSON."""
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if kind != "application/json" and not kind.endswith("+json"):
        raise ApiError(415, f"send application/json, not {kind}", code="unsupported_media_type")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the body is {declared} bytes, over the limit of {limit}", code="too_large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the body is over the limit of {limit} bytes", code="too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def _invalid(exc: InvalidEvent) -> ApiError:
    return ApiError(_STATUS_OF_REASON.get(exc.reason, 422), exc.detail, code=str(exc.reason))


async def _gate(request: Request) -> tuple[Resources, bytes]:
    r = res(request)
    client = r.api_keys.require(request)
    await r.limits.check("write", client)
    return r, await _body(request, r.settings.api_max_body)


async def _submitted(r: Resources, *, pending_key: str, location: str, wait: float,
                     outcome: Callable[[], Awaitable[dict[str, Any] | None]]) -> Response:
    try:  # best effort: without the mark the status is 404 until the ledger decides
        async with r.guards.redis():
            await r.redis.set(pending_key, b"1", ex=PENDING_TTL)
    except Unavailable as exc:
        log.warning("api.pending_mark_failed", detail=exc.detail)
    headers = {"Location": location}
    deadline = time.monotonic() + wait
    while wait > 0 and time.monotonic() < deadline:
        try:
            status = await outcome()
        except Unavailable:
            break
        if status is not None and status["status"] != "pending":
            return json({**status, "location": location}, headers=headers)
        await asyncio.sleep(POLL)
    return json({"status": "pending", "location": location}, status=202, headers=headers)


@router.post("/transactions", status_code=202, response_model=None, openapi_extra=_body_doc("transfer.v1"),
             summary="Submit a transfer (needs an API key)",
             responses={202: {"model": models.Submitted, "description": "published; the ledger decides"},
                        200: {"model": models.TransactionStatus, "description": "decided within ?wait="},
                        **_WRITE_ERRORS})
async def submit_transfer(request: Request, wait: Wait = 0) -> Response:
    r, raw = await _gate(request)
    try:
        transfer = codec.decode_transfer(raw)
    except InvalidEvent as exc:
        raise _invalid(exc) from None
    await r.writer.publish(r.settings.topic_transactions, raw, transfer.sender.encode())
    PUBLISHED.labels("transfer").inc()
    tx_id = transfer.transaction_id
    return await _submitted(r, pending_key=r.keys.pending_tx(tx_id), wait=wait,
                            location=f"/api/transactions/{quote(tx_id, safe='')}",
                            outcome=lambda: transaction_outcome(r, tx_id))


@router.post("/mints", status_code=202, response_model=None, openapi_extra=_body_doc("mint_batch.v1"),
             summary="Submit a mint (needs an API key)",
             responses={202: {"model": models.Submitted, "description": "published; the ledger decides"},
                        200: {"model": models.MintStatus, "description": "decided within ?wait="},
                        **_WRITE_ERRORS})
async def submit_mint(request: Request, wait: Wait = 0) -> Response:
    r, raw = await _gate(request)
    try:
        mint = codec.decode_mint(raw)
    except InvalidEvent as exc:
        raise _invalid(exc) from None
    await r.writer.publish(r.settings.topic_mints, raw, str(mint.batch).encode())
    PUBLISHED.labels("mint").inc()
    return await _submitted(r, pending_key=r.keys.pending_mint(mint.mint_id), wait=wait,
                            location=f"/api/mints/{quote(mint.mint_id, safe='')}",
                            outcome=lambda: mint_outcome(r, mint.mint_id))
