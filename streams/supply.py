"""Minted supply per batch: the first agent, over the mints topic.

The agent stays thin: decode, call the pure rule, update the table, publish.
"""
from __future__ import annotations

import faust
import orjson

from ducats.logs import get_logger
from ducats.settings import Settings
from schemas.events import MintBatch

log = get_logger(__name__)


def supply_record(mint: MintBatch, batch_total: int) -> bytes:
    """The metric record published after a mint is counted."""
    return orjson.dumps({
        "metric": "supply.batch", "mintId": mint.mint_id, "batch": mint.batch,
        "minted": mint.count, "batchTotal": batch_total,
    })


def register(app: faust.App, settings: Settings) -> None:
    mints = app.topic(settings.topic_mints, value_type=bytes, value_serializer="raw",
                      key_serializer="raw")
    metrics = app.topic(settings.topic_metrics, value_serializer="raw", key_serializer="raw")
    # Keyed by batch, like the mints topic, so each key's changelog stays in its partition.
    minted = app.Table("minted-by-batch", default=int, key_type=str, value_type=int)

    @app.agent(mints)
    async def count_mints(stream: faust.StreamT[bytes]) -> None:
        async for raw in stream:
            mint = MintBatch.from_json(raw)
            key = str(mint.batch)
            minted[key] += mint.count
            total = minted[key]
            await metrics.send(key=b"supply.batch", value=supply_record(mint, total))
            log.info("mint.processed", mint_id=mint.mint_id, batch=mint.batch,
                     count=mint.count, batch_total=total)
