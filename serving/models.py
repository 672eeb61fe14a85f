"""The API's response shapes, for /openapi.json and its docs.

They document the answers; handlers do not validate what they send against
them at run time (the cached answers are bytes serialized once per snapshot
version). schemathesis checks every response against these in `.ci/run`.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DUCAT_ID = r"^BATCH-(0|[1-9][0-9]{0,8})-[0-9]{6}$"
TEXT = r"^[^\x00]+$"  # holder names and ids: PostgreSQL text cannot hold NUL


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Error(BaseModel):
    error: str = Field(description="a stable code: bad_request, invalid, not_found, unauthorized, ...")
    detail: Any = Field(description="what was wrong, for a human")


class Snapshot(_Open):
    """The metric snapshot (README, "Metric formats"), plus whether it could be refreshed."""

    version: int
    generatedAt: str
    supply: int
    circulation: int
    holders: int
    transfers: int
    stale: bool = Field(description="true while Redis could not be read: this is the last snapshot seen")


class TopDucat(_Open):
    ducatId: str
    transfers: int


class TopCirculating(BaseModel):
    version: int
    stale: bool
    asOfSeq: int | None = Field(description="the seq these ducats' counts and details are as of (the ducat-state "
                                "sink's position when it wrote them); null before it first did")
    ducats: list[TopDucat]


class Velocity(BaseModel):
    version: int
    generatedAt: str | None
    watermark: str | None
    windows: dict[str, dict[str, Any]] = Field(description="1m, 1h and 1d: moves and velocity, this and the previous window")
    stale: bool


class Move(BaseModel):
    seq: int
    timestamp: str
    from_: str = Field(alias="from")
    to: str
    transactionId: str


class Memory(_Open):
    memoryId: int
    kind: str
    memory: str
    significance: float


class Ducat(BaseModel):
    ducatId: str
    holder: str
    previousHolder: str | None = None
    mintId: str | None = None
    mintedAt: str | None = None
    transfers: int
    lastSeq: int | None = None
    lastTransferAt: str | None = None
    level: float
    stage: int | None = None
    temperature: str
    networkHops: int | None = None
    consciousness: dict[str, Any] | None = None
    recentTransfers: list[Move] | None = None
    memories: list[dict[str, Any]] | None = None
    asOfSeq: int | None = Field(None, description="the ducat-state sink's position: this answer shows every "
                                "transfer up to this seq and none after it (null from the hot cache)")
    ledgerSeq: int | None = Field(None, description="the last seq the ledger has decided; asOfSeq catches up with it")
    source: Literal["ledger", "hot-cache"]
    partial: bool = Field(description="true when PostgreSQL could not answer and this comes from the hot cache alone")


class HistoryEntry(BaseModel):
    kind: Literal["mint", "transfer"]
    seq: int
    timestamp: str | None
    from_: str | None = Field(alias="from")
    to: str
    transactionId: str | None = None
    mintId: str | None = None


class History(BaseModel):
    ducatId: str
    entries: list[HistoryEntry]
    next: int | None = Field(description="pass as ?after= for the next page; null at the end")


class Transaction(BaseModel):
    seq: int
    transactionId: str
    timestamp: str | None
    from_: str = Field(alias="from")
    to: str
    ducatCount: int
    consciousnessImpact: float


class TransactionPage(BaseModel):
    transactions: list[Transaction]
    next: int | None = Field(description="pass as ?before= for the next (older) page; null at the end")


class TransactionStatus(_Open):
    transactionId: str
    status: Literal["pending", "accepted", "rejected"]
    seq: int | None = None
    reason: str | None = None
    detail: str | None = None
    asOfSeq: int | None = Field(None, description="the ducat-state sink's position when this was read: once it is "
                                "at least seq, GET /api/ducats/{id} shows this transfer")


class MintStatus(_Open):
    mintId: str
    status: Literal["pending", "accepted", "rejected"]


class Submitted(BaseModel):
    status: Literal["pending", "accepted", "rejected"]
    location: str
    seq: int | None = Field(None, description="accepted, but the ducats' rows do not show it yet (asOfSeq < seq)")
    asOfSeq: int | None = None


class Holder(BaseModel):
    holder: str
    balance: int = Field(description="as of ledgerSeq (the ledger keeps balances in its own transaction)")
    ducatIds: list[str] = Field(description="as of asOfSeq (the ducat-state sink's position)")
    asOfSeq: int | None = Field(None, description="the ducat-state sink's position: ducatIds show every "
                                "transfer up to this seq and none after it")
    ledgerSeq: int | None = Field(None, description="the last seq the ledger has decided; asOfSeq catches up with it")
    next: str | None = Field(description="pass as ?after= for the next page; null at the end")


class DailyMetrics(_Open):
    date: str


class DailyRange(BaseModel):
    days: list[DailyMetrics]
    next: str | None = Field(description="more days follow: pass as ?from= (same ?to=); null at the end")


class HistoryPoint(BaseModel):
    ts: str
    supply: int
    circulation: int
    holders: int
    transfers: int
    velocity: dict[str, float]


class MetricHistory(BaseModel):
    points: list[HistoryPoint]


class Pipeline(BaseModel):
    ledgerLag: int | None
    workers: list[dict[str, Any]] | None
    breakers: dict[str, str]


class NetworkIntelligence(BaseModel):
    """The newest `ducats analyze` run (docs/network.md)."""

    runId: int
    computedAt: str
    seq: int = Field(description="the highest seq the edges held; per partition in positions")
    positions: dict[str, int]
    computeMs: float
    graph: dict[str, int] = Field(description="nodes (holders) and edges (directed pairs)")
    components: dict[str, int] = Field(description="weakly connected components: count and the largest's size")
    influence: list[dict[str, Any]] = Field(description="holders by weighted PageRank, highest first")
    communityCount: int
    communities: list[dict[str, Any]] = Field(description="Leiden communities, largest first: size, growth, "
                                                          "merges and splits against the previous run")


class Alert(_Open):
    """A cascade alert (schemas/alert.v1.json) with its human acknowledgement."""

    alertId: str
    state: str
    startedAt: str
    acknowledged: dict[str, Any] | None = Field(description="by, keyId, at, note; null until acknowledged")


class AlertList(BaseModel):
    alerts: list[Alert]
    count: int


class AlertDetail(Alert):
    audit: list[dict[str, Any]] | None = Field(None, description="every state change, oldest first (append-only)")


class Evolution(_Open):
    """scope "supply": points of levels, stages and temperatures per time bucket;
    scope "ducat": one ducat's level and stage after each of its transfers."""

    scope: str
    points: list[dict[str, Any]]


class Emerging(BaseModel):
    growingCommunities: list[dict[str, Any]]
    velocitySpikes: list[dict[str, Any]]
    cascades: list[dict[str, Any]]
    hotClusters: list[dict[str, Any]]
    hotClustersAt: str | None
    analysis: dict[str, Any] | None
    rules: dict[str, str]


class NetworkPath(BaseModel):
    from_: str = Field(alias="from")
    to: str
    path: list[str] = Field(description="the holders along the path, both ends included")
    hops: int
    engine: str = Field(description="neo4j (Cypher shortestPath) or igraph")


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The documented error answers of a route."""
    text = {400: "bad query or path parameter", 401: "no API key", 403: "wrong API key", 404: "not found",
            409: "already done (an alert is acknowledged once)", 413: "body too large", 415: "not JSON", 422: "the body breaks the contract", 429: "over the rate limit",
            503: "a service is unavailable; see Retry-After"}
    return {s: {"model": Error, "description": text[s]} for s in statuses}
