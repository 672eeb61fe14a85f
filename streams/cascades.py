"""`ducats cascades`: the cascade detector (ducats/domain/cascade.py) over the
accepted log, as one process.

It reads every partition of the batches topic itself (read_committed, no consumer
group: it is one reader of the whole log, like a sink), puts the events back in seq
order (seqs are dense: one per accepted event, so the next one is always known),
and folds them into the detector. After each step, in one PostgreSQL transaction:
the alerts' new states, their audit rows, and the checkpoint (the detector's
state and, per partition, the offset of the first record not wholly folded). Then
the alerts not yet published go to ``<prefix>.alerts`` and Redis, and are marked
published. A crash anywhere repeats at most that publication (the topic is at
least once; a consumer keeps per alert the state with the most ``seconds``), and
never an alert: the detector restarts from the state that raised it.
"""
from __future__ import annotations

import asyncio
import datetime as dt
from collections import deque
from collections.abc import Mapping
from typing import Any

from ducats import observability as obs
from ducats.connect import pg_connect, pg_errors, redis_connect, redis_errors_of
from ducats.domain import cascade
from ducats.errors import DucatsError
from ducats.health import Readiness
from ducats.kafka import kafka_call, kafka_errors, make_consumer, make_producer, topic_partitions
from ducats.keys import RedisKeys
from ducats.logs import get_logger
from ducats.observability import serve_metrics
from ducats.settings import Settings
from schemas import batches
from schemas.models import Alert
from sinks.postgres import alerts as pg

log = get_logger(__name__)
MAX_RECORDS = 200     # batch records per fetch
STALL_WARN = 30.0     # seconds waiting for the next seq before it is logged


def _iso(second: int | None) -> str | None:
    return None if second is None else dt.datetime.fromtimestamp(second, dt.UTC).isoformat()


def to_record(a: cascade.Alert, now: str) -> Alert:
    return Alert(alert_id=a.alert_id, kind="cascade", state=a.state, signal="transfers_per_second",
                 started_at=_iso(a.started_at) or "", start_seq=a.start_seq, baseline=a.baseline, peak=a.peak,
                 transfers=a.transfers, seconds=a.seconds, detected_at=now, ended_at=_iso(a.ended_at),
                 end_seq=a.end_seq)


class SeqMerger:
    """The partitions' events back in seq order, and the offset each partition is
    wholly folded to."""

    def __init__(self, next_seq: int, positions: Mapping[int, int]) -> None:
        self.next = next_seq
        self.queues: dict[int, deque[tuple[int, int, dict[str, Any]]]] = {}   # p -> (seq, offset, event)
        self.read_to = dict(positions)                                      # p -> offset after the last read

    def add(self, partition: int, offset: int, record: batches.BatchRecord) -> None:
        q = self.queues.setdefault(partition, deque())
        for e in record.events:
            if int(e["seq"]) >= self.next:
                q.append((int(e["seq"]), offset, e))
        self.read_to[partition] = offset + 1

    def ready(self) -> list[dict[str, Any]]:
        """The events that continue the seq order, in it."""
        out: list[dict[str, Any]] = []
        while True:
            for q in self.queues.values():
                while q and q[0][0] < self.next:   # a repeat (a ledger's record sent again)
                    q.popleft()
                if q and q[0][0] == self.next:
                    out.append(q.popleft()[2])
                    self.next += 1
                    break
            else:
                return out

    def offsets(self) -> dict[int, int]:
        """Per partition, where a restart reads on: the record of its first event not folded."""
        return {p: (q[0][1] if (q := self.queues.get(p)) else at) for p, at in self.read_to.items()}


class CascadeWatch:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = RedisKeys.of(settings)
        self.readiness = Readiness(component="cascades", status_dir=settings.run_dir)

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        self.conn = await pg_connect(s.database_url, autocommit=True, options="-c timezone=UTC")
        self.redis = await redis_connect(s.redis_url)
        tps = await topic_partitions(s, [s.topic_accepted_batches])
        consumer = make_consumer(s, auto_offset_reset="earliest")
        producer = make_producer(s)
        try:
            await kafka_call(consumer.start(), bootstrap=s.kafka_bootstrap)
            await kafka_call(producer.start(), bootstrap=s.kafka_bootstrap)
            with pg_errors(s.database_url, session=True):
                offsets, state = await pg.load_checkpoint(self.conn)
            detector = cascade.Detector.from_dict(state)
            merger = SeqMerger(detector.seq + 1, {tp.partition: offsets.get(tp.partition, 0) for tp in tps})
            consumer.assign(tps)
            for tp in tps:
                consumer.seek(tp, offsets.get(tp.partition, 0))
            await self.publish(producer)  # what a crash left unpublished
            self.readiness.set_ready()
            log.info("cascades.started", seq=detector.seq, offsets=offsets)
            waiting_since: float | None = None
            while not stop.is_set():
                with kafka_errors(s.kafka_bootstrap):
                    fetched = await consumer.getmany(timeout_ms=100, max_records=MAX_RECORDS)
                for tp, records in fetched.items():
                    for r in records:
                        merger.add(tp.partition, r.offset, batches.decode(r.value))
                events = merger.ready()
                now = asyncio.get_running_loop().time()
                if not events:
                    pending = any(merger.queues.values())
                    if pending and waiting_since is None:
                        waiting_since = now
                    elif pending and waiting_since is not None and now - waiting_since > STALL_WARN:
                        log.warning("cascades.waiting", next_seq=merger.next, seconds=round(now - waiting_since))
                        waiting_since = now
                    continue
                waiting_since = None
                changed = detector.feed(events)
                obs.CASCADE_EVENTS.inc(len(events))
                obs.CASCADE_SEQ.set(detector.seq)
                stamp = dt.datetime.now(dt.UTC).isoformat()
                with pg_errors(s.database_url, session=True):
                    await pg.save(self.conn, offsets=merger.offsets(), detector=detector.to_dict(),
                                  alerts=[to_record(a, stamp) for a in changed])
                for a in changed:
                    obs.CASCADE_ALERTS.labels(a.state).inc()
                    log.info("cascades.alert", alert=a.alert_id, state=a.state, peak=a.peak, seconds=a.seconds,
                             started_at=_iso(a.started_at), baseline=a.baseline)
                if changed:
                    await self.publish(producer)
        finally:
            self.readiness.close()
            await consumer.stop()
            await producer.stop()
            await self.conn.close()
            await self.redis.aclose()

    async def publish(self, producer: Any) -> None:
        """Send what is not yet on the topic and in Redis; mark it published."""
        s = self.settings
        with pg_errors(s.database_url, session=True):
            todo = await pg.unpublished(self.conn)
        if not todo:
            return
        with kafka_errors(s.kafka_bootstrap):
            for alert, _ in todo:
                await producer.send(s.topic_alerts, key=alert.alert_id.encode(), value=alert.to_json())
            await producer.flush()
        with redis_errors_of(s.redis_url):
            async with self.redis.pipeline(transaction=True) as pipe:
                for alert, _ in todo:
                    if alert.state == "open":
                        pipe.hset(self.keys.alerts_open, alert.alert_id, alert.to_json())
                    else:
                        pipe.hdel(self.keys.alerts_open, alert.alert_id)
                await pipe.execute()
        with pg_errors(s.database_url, session=True):
            await pg.mark_published(self.conn, [(a.alert_id, v) for a, v in todo])


async def run(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Run the detector until ``stop``; an outage restarts it from its checkpoint."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        watch = CascadeWatch(settings)
        try:
            await watch.run(stop)
        except DucatsError as exc:
            if not exc.retriable:
                raise
            log.warning("cascades.waiting", reason=str(exc))
            watch.readiness.set_waiting(str(exc))
            try:
                await asyncio.wait_for(stop.wait(), timeout=2.0)
            except TimeoutError:
                pass


def main(settings: Settings) -> None:
    serve_metrics(settings.cascades_metrics_port)
    asyncio.run(run(settings))

