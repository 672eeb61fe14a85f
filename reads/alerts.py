"""Cascade alerts for the API (migration 0012): the list with their state, one
alert with its audit trail, and the one write a human makes: acknowledging an
alert. No stream produces that, so it is written here, on DATABASE_URL (never the
read URL, which may be a replica), with its audit row in the same transaction."""
from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

COLUMNS = "record, acked_by, acked_key, acked_at, ack_note, updated_at"


def _alert(row: tuple[Any, ...]) -> dict[str, Any]:
    record, by, key, at, note, updated = row
    ack = None if by is None else {"by": by, "keyId": key, "at": at.isoformat(), "note": note}
    return {**record, "acknowledged": ack, "updatedAt": updated.isoformat()}


async def list_alerts(pool: AsyncConnectionPool, *, state: str | None, limit: int) -> list[dict[str, Any]]:
    """Newest first; ``state``: open, ended, unacknowledged, or None for all."""
    where = {"open": "WHERE state = 'open'", "ended": "WHERE state = 'ended'",
             "unacknowledged": "WHERE acked_at IS NULL", None: ""}[state]
    async with pool.connection() as conn:
        cur = await conn.execute(f"SELECT {COLUMNS} FROM alerts {where} ORDER BY started_at DESC, alert_id LIMIT %s",
                                 [limit])
        return [_alert(r) for r in await cur.fetchall()]


async def alert(pool: AsyncConnectionPool, alert_id: str) -> dict[str, Any] | None:
    """One alert and its audit trail, oldest change first."""
    async with pool.connection() as conn:
        row = await (await conn.execute(f"SELECT {COLUMNS} FROM alerts WHERE alert_id = %s", [alert_id])).fetchone()
        if row is None:
            return None
        cur = await conn.execute("SELECT id, at, actor, key_id, action, note FROM alert_audit WHERE alert_id = %s "
                                 "ORDER BY id", [alert_id])
        audit = [{"id": i, "at": at.isoformat(), "actor": actor, "keyId": key, "action": action, "note": note}
                 for i, at, actor, key, action, note in await cur.fetchall()]
    return {**_alert(row), "audit": audit}


class AlreadyAcknowledged(Exception):
    def __init__(self, current: dict[str, Any]) -> None:
        super().__init__(current["alertId"])
        self.current = current


async def acknowledge(conn: psycopg.AsyncConnection[Any], alert_id: str, *, by: str, key_id: str,
                      note: str | None) -> dict[str, Any] | None:
    """Record who acknowledged ``alert_id``, when and why; None if there is no such alert.
    An alert is acknowledged once: a second time raises AlreadyAcknowledged."""
    async with conn.transaction():
        row = await (await conn.execute(f"SELECT {COLUMNS} FROM alerts WHERE alert_id = %s FOR UPDATE",
                                        [alert_id])).fetchone()
        if row is None:
            return None
        if row[1] is not None:
            raise AlreadyAcknowledged(_alert(row))
        cur = await conn.execute(
            f"""UPDATE alerts SET acked_by = %s, acked_key = %s, acked_at = now(), ack_note = %s
                WHERE alert_id = %s RETURNING {COLUMNS}""", [by, key_id, note, alert_id])
        updated = await cur.fetchone()
        assert updated is not None
        await conn.execute("INSERT INTO alert_audit (alert_id, actor, key_id, action, note, record) "
                           "VALUES (%s, %s, %s, 'acknowledged', %s, %s)", [alert_id, by, key_id, note, Jsonb(row[0])])
    return _alert(updated)
