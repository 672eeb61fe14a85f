"""Writes: validate a transfer or a mint against the schemas/ contracts and
publish it through the idempotent producer; the ledger decides.

202 with ``Location`` once Kafka acknowledged the record; with ``?wait=``
(at most 5 s) the answer waits for the ledger's decision and is 200 when it
comes in time. For an accepted transfer it also waits for the ducat-state sink
to pass the transfer's seq (``asOfSeq`` >= ``seq``; docs/throughput.md, step 3),
so a read after a 200 sees the transfer; decided but not yet applied when the
wait ends, the answer is 202 with ``status: accepted``, its ``seq`` and ``asOfSeq``. A repeated transactionId (or mintId) is harmless: the ledger
applies an id once, and its status is the first decision. A 503 means the
record was not confirmed; sending it again with the same id is always safe.
Nothing is published for a request refused here (key, limit, size, contract).
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class _Write:
    """What differs between a transfer and a mint on the way to the ledger."""

    kind: str                                          # the metric label
    decode: Callable[[bytes], Any]                     # the contract's codec (InvalidEvent)
    topic: Callable[[Resources], str]
    key: Callable[[Any], bytes]                        # the record key: as upstream publishers key it
    id_of: Callable[[Any], str]
    pending: Callable[[Resources, str], str]           # the Redis mark of an undecided id
    path: str                                          # the status route, for Location
    outcome: Callable[[Resources, str], Awaitable[dict[str, Any] | None]]


TRANSFER = _Write("transfer", codec.decode_transfer, lambda r: r.settings.topic_transactions,
                  lambda t: t.sender.encode(), lambda t: t.transaction_id, lambda r, i: r.keys.pending_tx(i),
                  "/api/transactions/", transaction_outcome)
MINT = _Write("mint", codec.decode_mint, lambda r: r.settings.topic_mints, lambda m: str(m.batch).encode(),
              lambda m: m.mint_id, lambda r, i: r.keys.pending_mint(i), "/api/mints/", mint_outcome)


async def _submit(request: Request, wait: float, w: _Write) -> Response:
    """Key, limit, body, contract (nothing is published for a refusal), publish, mark, wait."""
    r = res(request)
    client = r.api_keys.require(request)
    await r.limits.check("write", client)
    raw = await _body(request, r.settings.api_max_body)
    try:
        event = w.decode(raw)
    except InvalidEvent as exc:
        raise _invalid(exc) from None
    await r.writer.publish(w.topic(r), raw, w.key(event))
    PUBLISHED.labels(w.kind).inc()
    event_id = w.id_of(event)
    return await _submitted(r, pending_key=w.pending(r, event_id), wait=wait,
                            location=w.path + quote(event_id, safe=""), outcome=lambda: w.outcome(r, event_id))


async def _submitted(r: Resources, *, pending_key: str, location: str, wait: float,
                     outcome: Callable[[], Awaitable[dict[str, Any] | None]]) -> Response:
    try:  # best effort: without the mark the status is 404 until the ledger decides
        async with r.guards.redis():
            await r.redis.set(pending_key, b"1", ex=PENDING_TTL)
    except Unavailable as exc:
        log.warning("api.pending_mark_failed", detail=exc.detail)
    headers = {"Location": location}
    deadline = time.monotonic() + wait
    decided: dict[str, Any] | None = None
    while wait > 0 and time.monotonic() < deadline:
        try:
            status = await outcome()
        except Unavailable:
            break
        if status is not None and status["status"] != "pending":
            if _applied(status):
                return json({**status, "location": location}, headers=headers)
            decided = status
        await asyncio.sleep(POLL)
    if decided is not None:
        return json({"status": decided["status"], "seq": decided["seq"], "asOfSeq": decided["asOfSeq"],
                     "location": location}, status=202, headers=headers)
    return json({"status": "pending", "location": location}, status=202, headers=headers)


def _applied(status: dict[str, Any]) -> bool:
    """A decision whose effects the ducats' rows show: a refusal, a mint (its ducats' rows are
    the ledger's own), or a transfer the ducat-state sink has passed."""
    as_of = status.get("asOfSeq")
    return status["status"] != "accepted" or as_of is None or as_of >= status["seq"]


@router.post("/transactions", status_code=202, response_model=None, openapi_extra=_body_doc("transfer.v1"),
             summary="Submit a transfer (needs an API key)",
             responses={202: {"model": models.Submitted, "description": "published; the ledger decides"},
                        200: {"model": models.TransactionStatus, "description": "decided within ?wait="},
                        **_WRITE_ERRORS})
async def submit_transfer(request: Request, wait: Wait = 0) -> Response:
    return await _submit(request, wait, TRANSFER)


@router.post("/mints", status_code=202, response_model=None, openapi_extra=_body_doc("mint_batch.v1"),
             summary="Submit a mint (needs an API key)",
             responses={202: {"model": models.Submitted, "description": "published; the ledger decides"},
                        200: {"model": models.MintStatus, "description": "decided within ?wait="},
                        **_WRITE_ERRORS})
async def submit_mint(request: Request, wait: Wait = 0) -> Response:
    return await _submit(request, wait, MINT)
