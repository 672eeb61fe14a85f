"""The ledger's reads, from PostgreSQL through reads/ledger.py, each within the
PostgreSQL guard (budget and breaker): a ducat, its provenance, a holder,
recent transactions, a transaction's or a mint's outcome, the daily metrics."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from reads import ledger as ledger_reads
from reads import snapshot as snapshot_reads
from serving import models
from serving.errors import NotFound, Unavailable
from serving.resources import Resources
from serving.routes.common import ducat_number, json, read_gate, res

router = APIRouter(prefix="/api", tags=["ledger"], dependencies=[Depends(read_gate)])

DucatId = Annotated[str, Path(pattern=models.DUCAT_ID, max_length=24, description="BATCH-<batch>-<6-digit seq>")]
Name = Annotated[str, Path(min_length=1, max_length=128, pattern=models.TEXT)]
Id = Annotated[str, Path(min_length=1, max_length=128, pattern=models.TEXT)]
MAX_DAYS = 366


async def _hot(r: Resources, ducat_id: str) -> dict[str, Any] | None:
    try:
        async with r.guards.redis():
            found = await snapshot_reads.hot_ducat(r.redis, r.keys, ducat_id)
    except Unavailable:
        return None
    return found


@router.get("/ducats/{ducat_id}", response_model=None, summary="A ducat: holder, consciousness, transfers, memories",
            responses={200: {"model": models.Ducat}, **models.errors(400, 401, 403, 404, 429, 503)})
async def ducat(request: Request, ducat_id: DucatId) -> Response:
    """The ledger's answer is whole and authoritative (the consciousness document, the
    transfers, the memories); the hot cache holds only a hot ducat's summary. So PostgreSQL
    answers, and when it cannot (down, or this process's pool full), a ducat in the hot
    cache is still served, with ``partial: true`` and ``source: hot-cache``. (Both were once
    asked at once: the hot cache's answer was then used only on failure, for 8 % of the
    route's CPU; bench api.)"""
    r = res(request)
    number = ducat_number(ducat_id)
    try:
        async with r.guards.postgres():
            row = await ledger_reads.ducat(r.pool, number)
    except Unavailable:
        cached = await _hot(r, ducat_id)
        if cached is None:
            raise
        return json({"ducatId": ducat_id, "holder": cached.get("holder"), "transfers": cached.get("transfers", 0),
                     "level": cached.get("level", 0.0), "temperature": cached.get("temperature", "cold"),
                     "lastTransferAt": cached.get("lastTransferAt"), "source": "hot-cache", "partial": True})
    if row is None:
        raise NotFound(f"no ducat {ducat_id} was minted")
    return json({**row, "source": "ledger", "partial": False})


@router.get("/ducats/{ducat_id}/history", response_model=None, summary="A ducat's ownership provenance, paged",
            responses={200: {"model": models.History}, **models.errors(400, 401, 403, 404, 429, 503)})
async def history(request: Request, ducat_id: DucatId,
                  after: Annotated[int, Query(ge=0, le=2**62, description="seq of the last entry seen")] = 0,
                  limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Response:
    r = res(request)
    number = ducat_number(ducat_id)
    async with r.guards.postgres():
        page = await ledger_reads.history(r.pool, number, after=after, limit=limit)
    if page is None:
        raise NotFound(f"no ducat {ducat_id} was minted")
    return json(page)


@router.get("/holders/{holder}", response_model=None, summary="A holder's balance and ducats, paged",
            responses={200: {"model": models.Holder}, **models.errors(400, 401, 403, 404, 429, 503)})
async def holder(request: Request, holder: Name,
                 after: Annotated[str | None, Query(pattern=models.DUCAT_ID, description="last ducat id seen")] = None,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Response:
    r = res(request)
    start = -1 if after is None else ducat_number(after)
    async with r.guards.postgres():
        page = await ledger_reads.holder(r.pool, holder, after=start, limit=limit)
    if page is None:
        raise NotFound(f"{holder!r} has never held a ducat")
    return json(page)


@router.get("/transactions/recent", response_model=None, summary="Accepted transactions, newest first, keyset-paged",
            responses={200: {"model": models.TransactionPage}, **models.errors(400, 401, 403, 429, 503)})
async def recent(request: Request,
                 before: Annotated[int | None, Query(ge=1, le=2**62, description="only seqs below this")] = None,
                 holder: Annotated[str | None, Query(min_length=1, max_length=128, pattern=models.TEXT)] = None,
                 limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Response:
    r = res(request)
    async with r.guards.postgres():
        rows = await ledger_reads.recent_transactions(r.pool, before=before, limit=limit, holder=holder)
    more = len(rows) == limit and rows[-1]["seq"] > 1
    return json({"transactions": rows, "next": rows[-1]["seq"] if more else None})


async def _outcome(r: Resources, decided: dict[str, Any] | None, pending_key: str, pending: dict[str, Any]
                   ) -> dict[str, Any] | None:
    if decided is not None:
        return decided
    async with r.guards.redis():
        marked = await r.redis.exists(pending_key)
    return pending if marked else None


async def transaction_outcome(r: Resources, transaction_id: str) -> dict[str, Any] | None:
    """The ledger's decision, else ``pending`` if this API published it, else None."""
    async with r.guards.postgres():
        decided = await ledger_reads.transaction_status(r.pool, transaction_id)
    return await _outcome(r, decided, r.keys.pending_tx(transaction_id),
                          {"transactionId": transaction_id, "status": "pending"})


async def mint_outcome(r: Resources, mint_id: str) -> dict[str, Any] | None:
    async with r.guards.postgres():
        decided = await ledger_reads.mint_status(r.pool, mint_id)
    return await _outcome(r, decided, r.keys.pending_mint(mint_id), {"mintId": mint_id, "status": "pending"})


@router.get("/transactions/{transaction_id:text}", response_model=None,
            summary="A transaction's outcome: pending, accepted (with its seq) or rejected (with the reason)",
            responses={200: {"model": models.TransactionStatus}, **models.errors(400, 401, 403, 404, 429, 503)})
async def transaction(request: Request, transaction_id: Id) -> Response:
    status = await transaction_outcome(res(request), transaction_id)
    if status is None:
        raise NotFound(f"no transaction {transaction_id!r} is known: not decided by the ledger, "
                       "nor published through this API")
    return json(status)


@router.get("/mints/{mint_id:text}", response_model=None, summary="A mint's outcome: pending, accepted or rejected",
            responses={200: {"model": models.MintStatus}, **models.errors(400, 401, 403, 404, 429, 503)})
async def mint(request: Request, mint_id: Id) -> Response:
    status = await mint_outcome(res(request), mint_id)
    if status is None:
        raise NotFound(f"no mint {mint_id!r} is known")
    return json(status)


@router.get("/metrics/daily/{date}", response_model=None, summary="The rollup of one day (event time, UTC)",
            responses={200: {"model": models.DailyMetrics}, **models.errors(400, 401, 403, 404, 429, 503)})
async def daily(request: Request, date: dt.date) -> Response:
    r = res(request)
    async with r.guards.postgres():
        days = await ledger_reads.daily_metrics(r.pool, date, date)
    if not days:
        raise NotFound(f"no metrics for {date.isoformat()}")
    return json(days[0])


@router.get("/metrics/daily", response_model=None, summary="The daily rollups from one date to another, paged",
            responses={200: {"model": models.DailyRange}, **models.errors(400, 401, 403, 429, 503)})
async def daily_range(request: Request, from_: Annotated[dt.date, Query(alias="from")],
                      to: Annotated[dt.date, Query()]) -> Response:
    """Inclusive; at most MAX_DAYS (366) days per page, ``next`` starts the next page.
    ``to`` before ``from`` is an empty range."""
    last = min(to, from_ + dt.timedelta(days=MAX_DAYS - 1)) if to >= from_ else to
    days: list[dict[str, Any]] = []
    if to >= from_:
        r = res(request)
        async with r.guards.postgres():
            days = await ledger_reads.daily_metrics(r.pool, from_, last)
    more = to >= from_ and last < to
    return json({"days": days, "next": (last + dt.timedelta(days=1)).isoformat() if more else None})


@router.get("/metrics/history", response_model=None, summary="Circulation and velocity over recent snapshots",
            responses={200: {"model": models.MetricHistory}, **models.errors(400, 401, 403, 429, 503)})
async def metric_history(request: Request, minutes: Annotated[int, Query(ge=1, le=1440)] = 60) -> Response:
    r = res(request)
    async with r.guards.postgres():
        points = await ledger_reads.metric_history(r.pool, minutes=minutes)
    return json({"points": points})
