"""What `ducats cascades` keeps in PostgreSQL (migration 0012): its checkpoint and
the alerts it raised, written together in one transaction, then marked published
once they are on the topic and in Redis."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import psycopg

from schemas.models import Alert


async def load_checkpoint(conn: psycopg.AsyncConnection[Any]) -> tuple[dict[int, int], dict[str, Any] | None]:
    """Where to read on from (batches-topic partition -> offset) and the detector's state."""
    row = await (await conn.execute("SELECT offsets, detector FROM cascade_checkpoint WHERE id = 1")).fetchone()
    if row is None:
        return {}, None
    return {int(p): int(o) for p, o in row[0].items()}, row[1]


async def save(conn: psycopg.AsyncConnection[Any], *, offsets: dict[int, int], detector: dict[str, Any],
               alerts: Sequence[Alert]) -> None:
    """The checkpoint and the alerts' new states, with an audit row per opening and ending."""
    async with conn.transaction():
        await conn.execute(
            """INSERT INTO cascade_checkpoint (id, offsets, detector) VALUES (1, %s, %s)
               ON CONFLICT (id) DO UPDATE SET offsets = excluded.offsets, detector = excluded.detector""",
            [orjson.dumps({str(p): o for p, o in offsets.items()}).decode(), orjson.dumps(detector).decode()])
        for a in alerts:
            record = a.to_json().decode()
            had = await (await conn.execute("SELECT state FROM alerts WHERE alert_id = %s FOR UPDATE",
                                            [a.alert_id])).fetchone()
            await conn.execute(
                """INSERT INTO alerts (alert_id, kind, state, started_at, ended_at, start_seq, end_seq, record)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (alert_id) DO UPDATE
                     SET state = excluded.state, ended_at = excluded.ended_at, end_seq = excluded.end_seq,
                         record = excluded.record, version = alerts.version + 1, updated_at = now()""",
                [a.alert_id, a.kind, a.state, a.started_at, a.ended_at, a.start_seq, a.end_seq, record])
            inserted, before = had is None, None if had is None else had[0]
            if inserted or (a.state == "ended" and before != "ended"):
                await conn.execute(
                    "INSERT INTO alert_audit (alert_id, actor, action, record) VALUES (%s, 'detector', %s, %s)",
                    [a.alert_id, "opened" if inserted else "ended", record])
                if inserted and a.state == "ended":  # opened and ended within one step
                    await conn.execute("INSERT INTO alert_audit (alert_id, actor, action, record) "
                                       "VALUES (%s, 'detector', 'ended', %s)", [a.alert_id, record])


async def unpublished(conn: psycopg.AsyncConnection[Any]) -> list[tuple[Alert, int]]:
    """The alerts whose newest state is not yet on the topic and in Redis, with its version."""
    cur = await conn.execute("SELECT record, version FROM alerts WHERE published < version ORDER BY start_seq")
    return [(Alert.from_json(orjson.dumps(r)), v) for r, v in await cur.fetchall()]


async def mark_published(conn: psycopg.AsyncConnection[Any], done: Sequence[tuple[str, int]]) -> None:
    for alert_id, version in done:
        await conn.execute("UPDATE alerts SET published = greatest(published, %s) WHERE alert_id = %s",
                           [version, alert_id])
