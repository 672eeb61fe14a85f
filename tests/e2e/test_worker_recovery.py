"""A real Faust worker process with a table: it restarts, and the table's state
comes back from its changelog topic (the store is in memory, so nothing else
could bring it back)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from ducats.demo import publish_mint
from ducats.kafka import ensure_topics, wait_for_json
from ducats.procs import WorkerProcess
from ducats.settings import Settings
from schemas.events import MintBatch
from streams.topics import pipeline_topics


def worker_env(s: Settings) -> dict[str, str]:
    return {"KAFKA_BOOTSTRAP": s.kafka_bootstrap, "DUCATS_TOPIC_PREFIX": s.topic_prefix,
            "DUCATS_APP_ID": s.app_id, "DUCATS_TOPIC_PARTITIONS": str(s.topic_partitions),
            "DUCATS_WORKER_WEB_PORT": str(s.worker_web_port)}


def mint(mint_id: str, batch: int, count: int) -> MintBatch:
    return MintBatch(mint_id=mint_id, batch=batch, first_seq=1, count=count, holder="treasury",
                     timestamp="2026-11-26T00:00:00+00:00")


async def publish_and_wait(s: Settings, mints: list[MintBatch]) -> dict[str, dict[str, object]]:
    for m in mints:
        await publish_mint(s, m)
    return await wait_for_json(s, s.topic_metrics, field_name="mintId",
                               values=[m.mint_id for m in mints], timeout=120)


async def test_table_recovers_from_changelog_after_restart(
        settings_factory: Callable[..., Settings], tmp_path: Path) -> None:
    s = settings_factory(topic_partitions=2)
    await ensure_topics(s, pipeline_topics(s))
    first = [mint("m1", 7, 10), mint("m2", 7, 20), mint("m3", 7, 30), mint("m4", 8, 5)]

    worker = WorkerProcess(env=worker_env(s), log_path=tmp_path / "worker.log").start()
    try:
        seen = await publish_and_wait(s, first)
    finally:
        assert worker.stop() == 0, (tmp_path / "worker.log").read_text()[-3000:]
    assert seen["m3"]["batchTotal"] == 60 and seen["m4"]["batchTotal"] == 5

    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await admin.start()
    try:
        assert f"{s.app_id}-minted-by-batch-changelog" in await admin.list_topics()
    finally:
        await admin.close()

    worker = WorkerProcess(env=worker_env(s), log_path=tmp_path / "worker2.log").start()
    try:
        after = await publish_and_wait(s, [mint("m5", 7, 7), mint("m6", 8, 1)])
    finally:
        worker.stop()
    # A fresh in-memory table would say 7 and 1: these totals come from the changelog.
    assert after["m5"]["batchTotal"] == 67
    assert after["m6"]["batchTotal"] == 6
