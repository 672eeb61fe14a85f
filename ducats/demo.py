"""``ducats demo``: the pipeline end to end on a small workload.

Today: topics are created, a Faust worker starts, one mint event is published
and the agent's metric record for it is read back from the metrics topic.
"""
from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from ducats.kafka import ensure_topics, make_producer, wait_for_json
from ducats.procs import WorkerProcess
from ducats.settings import Settings
from schemas.events import MintBatch
from streams.topics import pipeline_topics


async def publish_mint(settings: Settings, mint: MintBatch) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(settings.topic_mints, mint.to_json(), key=str(mint.batch).encode())
    finally:
        await producer.stop()


async def run_demo(settings: Settings, *, say: object = print) -> dict[str, object]:
    """Run the demo; return the metric record the agent published."""
    await ensure_topics(settings, pipeline_topics(settings))
    mint = MintBatch(mint_id=f"demo-{uuid.uuid4()}", batch=int(time.time()) % 1_000_000,
                     first_seq=1, count=1000, holder="treasury",
                     timestamp=datetime.now(UTC).isoformat())
    log_path = settings.state_dir / "logs" / "demo-worker.log"
    with WorkerProcess(env={}, log_path=log_path):
        say(f"worker started (log: {log_path})")  # type: ignore[operator]
        await publish_mint(settings, mint)
        say(f"published mint {mint.mint_id}: batch {mint.batch}, {mint.count} ducats")  # type: ignore[operator]
        found = await wait_for_json(settings, settings.topic_metrics, field_name="mintId",
                                    values=[mint.mint_id], timeout=120)
    return found[mint.mint_id]

