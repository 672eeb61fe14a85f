"""``ducats publish`` and ``ducats mint`` as a user runs them, against the real Kafka:
exactly the valid events arrive, under the right keys."""
from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer

from ducats.kafka import TopicSpec, ensure_topics
from ducats.settings import PROJECT_ROOT, Settings
from schemas.models import MintBatch

DUCATS = str(PROJECT_ROOT / ".venv" / "bin" / "ducats")
TS = "2026-11-26T10:00:00Z"
# Room for the 1.5 MiB record below; the pipeline's own topics are configured in streams/topics.py.
TOPIC_CONFIG = {"max.message.bytes": str(5 << 20)}


def transfer(tx: str, sender: str, n: int = 2, **extra: object) -> bytes:
    return orjson.dumps({"transactionId": tx, "timestamp": TS, "from": sender, "to": "bob",
                         "ducatIds": [f"BATCH-9-{i:06d}" for i in range(1, n + 1)], **extra})


async def topics(s: Settings) -> None:
    await ensure_topics(s, [TopicSpec(name=t, partitions=2, config=TOPIC_CONFIG)
                            for t in (s.topic_mints, s.topic_transactions)])


def run_ducats(s: Settings, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KAFKA_BOOTSTRAP": s.kafka_bootstrap, "DUCATS_TOPIC_PREFIX": s.topic_prefix}
    return subprocess.run([DUCATS, *args], env=env, capture_output=True, timeout=120,
                          input=stdin.decode() if stdin is not None else None, text=True)


async def read_topic(s: Settings, topic: str, *, expected: int, timeout: float = 30) -> list[tuple[bytes, bytes]]:
    """Every (key, value) on ``topic``: waits for ``expected`` records, then one quiet
    second more, so that an unexpected extra record would be seen too."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=s.kafka_bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, fetch_max_bytes=16 << 20,
                                max_partition_fetch_bytes=8 << 20)
    await consumer.start()
    got: list[tuple[bytes, bytes]] = []
    try:
        deadline = time.monotonic() + timeout
        while len(got) < expected and time.monotonic() < deadline:
            got += _records(await consumer.getmany(timeout_ms=500))
        got += _records(await consumer.getmany(timeout_ms=1000))
    finally:
        await consumer.stop()
    return got


def _records(batch: dict[object, list[object]]) -> list[tuple[bytes, bytes]]:
    return [(r.key, r.value) for recs in batch.values() for r in recs]  # type: ignore[attr-defined]


async def test_publish_sends_exactly_the_valid_lines(settings_factory: Callable[..., Settings],
                                                     tmp_path: Path) -> None:
    s = settings_factory()
    await topics(s)
    good = [transfer("tx-1", "alice"), transfer("tx-2", "carol", n=10_000),
            transfer("tx-3", "alice", padding="x" * (3 << 19)),  # 1.5 MiB: over the producer's default cap
            transfer("tx-4", "dave", metadata={"note": "fine"})]
    lines = [good[0], b"", b"{not json", transfer("tx-x", "alice", to=5), good[1],
             transfer("tx-y", "alice", n=10_001), transfer("tx-z", "alice", metadata={"b": "x" * (17 << 10)}),
             good[2], transfer("", "alice"), good[3]]
    path = tmp_path / "transfers.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")

    proc = run_ducats(s, "publish", str(path), "--topic", "transactions")

    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.strip() == "sent 4, rejected at the door 5"
    reported = [line.split(":")[:2] for line in proc.stderr.splitlines() if line.startswith("line ")]
    assert reported == [["line 3", " not_json"], ["line 4", " wrong_type"], ["line 6", " oversize"],
                        ["line 7", " oversize"], ["line 9", " schema_violation"]]
    got = await read_topic(s, s.topic_transactions, expected=len(good))
    assert sorted(got) == sorted((orjson.loads(v)["from"].encode(), v) for v in good)


async def test_publish_from_stdin_exits_0_when_all_lines_are_sent(
        settings_factory: Callable[..., Settings]) -> None:
    s = settings_factory()
    await topics(s)
    mints = [MintBatch(mint_id=f"m-{b}", batch=b, first_seq=1, count=5, holder="treasury", timestamp=TS)
             for b in (3, 4, 5)]
    proc = run_ducats(s, "publish", "-", "--topic", "mints",
                      stdin=b"\n".join(m.to_json() for m in mints) + b"\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "sent 3, rejected at the door 0"
    got = await read_topic(s, s.topic_mints, expected=3)
    assert sorted(got) == sorted((str(m.batch).encode(), m.to_json()) for m in mints)


async def test_mint_publishes_deterministic_events_keyed_by_batch(
        settings_factory: Callable[..., Settings]) -> None:
    s = settings_factory()
    await topics(s)
    proc = run_ducats(s, "mint", "--batches", "5", "--size", "10000", "--holder", "treasury",
                      "--first-batch", "700")
    assert proc.returncode == 0, proc.stderr
    assert "minted 5 batches (700..704) of 10000 ducats to treasury: 50000 ducats" in proc.stdout
    got = await read_topic(s, s.topic_mints, expected=5)
    mints = sorted((MintBatch.from_json(v) for _, v in got), key=lambda m: m.batch)
    assert [m.mint_id for m in mints] == [f"mint-{b}" for b in range(700, 705)]
    assert all(m.count == 10_000 and m.first_seq == 1 and m.holder == "treasury" for m in mints)
    assert sorted(k for k, _ in got) == [str(b).encode() for b in range(700, 705)]


def test_publish_to_a_missing_topic_is_one_line_error(settings_factory: Callable[..., Settings],
                                                       tmp_path: Path) -> None:
    s = settings_factory()  # a fresh prefix: no topics exist
    path = tmp_path / "one.jsonl"
    path.write_bytes(transfer("tx-1", "alice") + b"\n")
    proc = run_ducats(s, "publish", str(path), "--topic", "transactions")
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"ducats: error: topic {s.topic_transactions} does not exist; "
                                   "fix: ducats topics")
