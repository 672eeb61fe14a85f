"""A real Faust worker process with tables: it restarts, and the tables' state
comes back from their changelog topics. The store is in memory and the Redis
partials are wiped in between, so nothing else could bring it back."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import orjson
import redis.asyncio as aioredis
from aiokafka.admin import AIOKafkaAdminClient

from ducats.procs import WorkerProcess
from ducats.settings import Settings
from schemas.models import MintAccepted, MintBatch
from tests.fixtures.ledger import publish_accepted, wait_worker_ready


def accepted_mint(seq: int, batch: int, count: int, holder: str) -> tuple[bytes, bytes]:
    mint = MintBatch(mint_id=f"m{seq}", batch=batch, first_seq=1, count=count, holder=holder,
                     timestamp="2026-11-26T00:00:00+00:00")
    return holder.encode(), MintAccepted.of(mint, seq=seq, holder_balance=count).to_json()


async def wait_supply(s: Settings, supply: int, events: int, worker: WorkerProcess) -> dict[str, object]:
    client = aioredis.Redis.from_url(s.redis_url)
    deadline = time.monotonic() + 120
    try:
        while True:
            raw = await client.get(s.redis_key("metrics", "snapshot"))
            snap = orjson.loads(raw) if raw else {}
            if snap.get("supply") == supply and snap["position"]["events"] == events:
                return snap  # type: ignore[no-any-return]
            assert worker.alive, worker.post_mortem()
            assert time.monotonic() < deadline, f"snapshot stuck at {snap.get('supply')}"
            await asyncio.sleep(0.1)
    finally:
        await client.aclose()


async def test_tables_recover_from_changelog_after_restart(
        ledger_settings: Settings, process_factory: Callable[..., WorkerProcess]) -> None:
    s = ledger_settings
    holders = ["alice", "bob", "carol", "dave"]  # spread over the accepted topic's partitions
    first = [accepted_mint(i + 1, i + 1, 10 * (i + 1), h) for i, h in enumerate(holders)]
    worker = process_factory("worker", s)
    await wait_worker_ready(s, worker)
    await publish_accepted(s, first)
    await wait_supply(s, 100, 4, worker)
    assert worker.stop() == 0

    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await admin.start()
    try:
        assert f"{s.app_id}-partition-metrics-changelog" in await admin.list_topics()
    finally:
        await admin.close()
    client = aioredis.Redis.from_url(s.redis_url)
    await client.delete(*[s.redis_key("metrics", *k) for k in (("partials",), ("partials", "seq"))])
    await client.aclose()

    worker = process_factory("worker", s)
    await wait_worker_ready(s, worker)
    await publish_accepted(s, [accepted_mint(5, 5, 7, "alice"), accepted_mint(6, 6, 1, "bob")])
    # A fresh, unrecovered table would count only the 8 ducats minted after the restart.
    snap = await wait_supply(s, 108, 6, worker)
    assert snap["holders"] == 6 and snap["mints"] == 6
    assert worker.stop() == 0
