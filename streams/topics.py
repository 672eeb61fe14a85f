"""The pipeline's topics, their partitions, retention and cleanup policy."""
from __future__ import annotations

from ducats.kafka import TopicSpec
from ducats.settings import Settings

WEEK_MS = str(7 * 24 * 3600 * 1000)


def pipeline_topics(settings: Settings) -> list[TopicSpec]:
    """Every topic the pipeline reads or writes, except Faust's own changelogs."""
    n = settings.topic_partitions
    return [
        # Mints are keyed by batch id: one batch's events stay in order.
        TopicSpec(name=settings.topic_mints, partitions=n,
                  config={"cleanup.policy": "delete", "retention.ms": WEEK_MS}),
        # Metric records are keyed by metric name; subscribers read the latest per key.
        TopicSpec(name=settings.topic_metrics, partitions=1,
                  config={"cleanup.policy": "delete", "retention.ms": WEEK_MS}),
    ]
