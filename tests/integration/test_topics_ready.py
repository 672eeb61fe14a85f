"""`ensure_topics` returns only when every partition of every topic has a
leader, so a caller can describe and produce at once (the CI flake of issue 7:
a just-created topic answering UNKNOWN_TOPIC_OR_PARTITION / LEADER_NOT_AVAILABLE)."""
from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from ducats.errors import ConfigError
from ducats.kafka import TopicSpec, delete_topics, ensure_topics, make_producer, topic_partitions
from ducats.settings import Settings


async def test_created_topics_are_usable_at_once_and_deleted_after(base_settings: Settings) -> None:
    names = [f"ready-{uuid.uuid4().hex[:10]}-{i}" for i in range(12)]
    producer = make_producer(base_settings, request_timeout_ms=5000)
    await producer.start()
    try:
        for name in names:
            created = await ensure_topics(base_settings, [TopicSpec(name=name, partitions=4)])
            assert created == [name]
            tps = await topic_partitions(base_settings, [name])  # at once: no "does not exist"
            assert [tp.partition for tp in tps] == [0, 1, 2, 3]
            for p in range(4):  # every partition has a leader that takes an acks=all write
                meta = await producer.send_and_wait(name, b"x", partition=p)
                assert meta.offset == 0
        assert await ensure_topics(base_settings, [TopicSpec(name=n, partitions=4) for n in names]) == []
    finally:
        await producer.stop()
        await delete_topics(base_settings, names)
    admin = AIOKafkaAdminClient(bootstrap_servers=base_settings.kafka_bootstrap)
    await admin.start()
    try:
        assert not set(names) & set(await admin.list_topics())
    finally:
        await admin.close()


async def test_a_missing_topic_is_a_config_error_not_a_wait(base_settings: Settings) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        await topic_partitions(base_settings, [f"missing-{uuid.uuid4().hex[:10]}"])
