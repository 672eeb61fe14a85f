"""The pipeline's topics: partitions, retention, cleanup policy and keys.

| topic                          | partitions          | key          | cleanup / retention |
|--------------------------------|---------------------|--------------|---------------------|
| <p>.mints                      | DUCATS_TOPIC_PARTITIONS | batch id  | delete, 7 days      |
| <p>.transactions               | DUCATS_LEDGER_PARTITIONS (1) | from | delete, 7 days      |
| <p>.transactions.accepted      | DUCATS_TOPIC_PARTITIONS | from (mints: holder) | delete, forever: the accepted log |
| <p>.transactions.accepted.batches | DUCATS_TOPIC_PARTITIONS | none: the partition is the accepted events' | delete, forever: the worker's input |
| <p>.transactions.rejected      | DUCATS_TOPIC_PARTITIONS | from      | delete, 30 days     |
| <p>.dlq                        | 1                   | original key | delete, 30 days     |
| <p>.metrics                    | 1                   | "snapshot"   | compact             |
| <p>.metrics.daily              | 1                   | date         | compact             |

The batches topic carries the accepted log a second time, for the worker: one
record per ledger batch and accepted partition, holding that partition's
accepted events of the batch, in seq order, and the seq the partition's record
before it ended at (schemas/batches.py). Record ``i`` of it
and the per-event records it holds are in the same partition number and the
same Kafka transaction (docs/throughput.md).

The transactions topic has one partition by default so that the ledger sees
one total order: with more, a holder's own transfers stay in order (key =
from), but the order between holders is the order the ledger happens to read.
"""
from __future__ import annotations

from ducats.kafka import TopicSpec
from ducats.settings import Settings

DAY_MS = 24 * 3600 * 1000
INPUT_MAX_BYTES = str(4 << 20)     # oversize records must reach the ledger, to be dead-lettered
OUTPUT_MAX_BYTES = str(8 << 20)    # a dead letter carries the original bytes in base64


def _delete(days: int | None, max_bytes: str = INPUT_MAX_BYTES) -> dict[str, str]:
    return {"cleanup.policy": "delete", "retention.ms": "-1" if days is None else str(days * DAY_MS),
            "max.message.bytes": max_bytes}


def pipeline_topics(settings: Settings) -> list[TopicSpec]:
    """Every topic the pipeline reads or writes, except Faust's own changelogs."""
    n = settings.topic_partitions
    return [
        TopicSpec(name=settings.topic_mints, partitions=n, config=_delete(7)),
        TopicSpec(name=settings.topic_transactions, partitions=settings.ledger_partitions, config=_delete(7)),
        TopicSpec(name=settings.topic_accepted, partitions=n, config=_delete(None, OUTPUT_MAX_BYTES)),
        TopicSpec(name=settings.topic_accepted_batches, partitions=n, config=_delete(None, OUTPUT_MAX_BYTES)),
        TopicSpec(name=settings.topic_rejected, partitions=n, config=_delete(30, OUTPUT_MAX_BYTES)),
        TopicSpec(name=settings.topic_dlq, partitions=1, config=_delete(30, OUTPUT_MAX_BYTES)),
        TopicSpec(name=settings.topic_metrics, partitions=1,
                  config={"cleanup.policy": "compact", "min.compaction.lag.ms": str(60_000)}),
        TopicSpec(name=settings.topic_metrics_daily, partitions=1,
                  config={"cleanup.policy": "compact", "min.compaction.lag.ms": str(60_000)}),
        TopicSpec(name=settings.topic_alerts, partitions=1,
                  config={"cleanup.policy": "compact", "min.compaction.lag.ms": str(60_000)}),
    ]
