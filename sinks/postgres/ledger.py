"""The Postgres-validated ledger sink.

For each batch of input records it, in ONE database transaction:
skips records whose offsets are already applied, decodes the rest (bad ones
become dead letters), loads what the batch needs in a few array queries, runs
the pure ledger rules (ducats.domain.ledger) in log order, and writes the
accepted log: mints (with their ducats' rows), transaction ids, transactions,
moves, balances, outbox records, the new input offsets and the event-time
watermark. Nothing is written per event; the only per-event work is decoding
and dict updates.

Who holds what is the ledger's own index (``owners``, docs/throughput.md step 3):
a cache of the log, updated only after a batch commits (with the ducats the
batch minted, and the holders of those it moved), filled on first use from
``ducats.holder`` and, at the start of a term, from the transactions the
ducat-state sink has not applied yet. A minted ducat costs the index about 85
bytes (3.9M ducats: about 330 MB). The ducats' consciousness, memories,
census and cooling are that sink's (sinks/postgres/state.py), off this
transaction.

Every accepted event goes to the outbox twice: as its own record, to the
partition the producer's partitioner would pick for its key, and inside the
batch record of that partition (the batches topic, the worker's input: one
record per batch and partition instead of one per event; docs/throughput.md).
The batch records of a partition form a chain (schemas/batches.py): each names
the seq the one before it ended at. The chain's heads are written with the batch
(``accepted_chain``), so a restarted ledger or its standby continues it.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg

from ducats.connect import pg_connect, pg_errors
from ducats.domain.ledger import Accepted, LedgerBatch, MintOutcome
from ducats.kafka import key_partition
from ducats.settings import Settings
from schemas import codec
from schemas.batches import Chain
from schemas.ducat_id import ducat_str
from schemas.errors import InvalidEvent
from schemas.models import (
    DeadLetterReason,
    MintAccepted,
    MintBatch,
    Transfer,
    TransferAccepted,
    TransferRejected,
)
from sinks.postgres import ledger_sql as q
from sinks.postgres.ledger_input import InputRecord, event_time, mint_range, parse_ducat

__all__ = ["BatchReport", "InputRecord", "LedgerSink"]

# jit=off: the batch statements are short, but their cost estimates grow with the
# tables, and an LLVM compile of a few hundred ms would dwarf them. statement_timeout:
# generous for the largest batch (DUCATS_LEDGER_BATCH=100,000), but nothing waits forever
# (a lock an operator's session forgot, a server that stopped answering).
# plan_cache_mode: every statement is planned for its own parameters. The ledger's lookups are
# prepared (psycopg prepares after 5 runs), and a generic plan made while a table was still small
# (the first batches of a fresh pipeline) seq-scanned it with ``= ANY($1)`` long after it had
# grown: the transaction-id lookup took 700 ms a batch at 20,000 rows in bench e2e (12 ms by index).
SESSION = "-c timezone=UTC -c jit=off -c statement_timeout=300s -c plan_cache_mode=force_custom_plan"
# A server that died without closing the socket (host crash, partition) is noticed within
# about 30 s instead of the kernel's two hours: TCP keepalives, and a bound on unacknowledged data.
KEEPALIVES: dict[str, Any] = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
                              "keepalives_count": 3, "tcp_user_timeout": 30_000}


@dataclass(slots=True)
class BatchReport:
    """What one batch did: counts by outcome, the ledger position after it, and how many
    outbox records its checkpoint published."""

    mints: int = 0
    accepted: int = 0
    rejected: int = 0
    dead_letters: int = 0
    replayed: int = 0
    last_seq: int = 0
    published: int = 0
    ms: dict[str, float] = field(default_factory=dict)  # milliseconds per step of the batch's transaction

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time one step (``ledger.batch`` logs them: where a slow batch spent its time)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = round(self.ms.get(name, 0.0) + (time.perf_counter() - started) * 1000, 1)


@dataclass(slots=True)
class _Decoded:
    mints: list[tuple[InputRecord, MintBatch, dt.datetime]] = field(default_factory=list)
    transfers: list[tuple[InputRecord, Transfer, list[int], dt.datetime]] = field(default_factory=list)
    outbox: list[tuple[str, bytes | None, bytes, int | None]] = field(default_factory=list)
    accepted: dict[int, list[tuple[int, bytes]]] = field(default_factory=dict)  # per partition: (seq, JSON), in seq order
    minted: list[tuple[int, int, str]] = field(default_factory=list)  # the applied mints' ranges and holders


@dataclass(slots=True)
class _Rows:
    """What one batch writes besides the ducats' own rows."""

    mints: list[Any]
    transactions: list[Any]
    ids: list[Any]
    moves: list[Any]
    mint_conflicts: list[Any]


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


class LedgerSink:
    """The ledger's database side, on ONE connection: the single-writer lock, the offsets
    stored with the data, and :meth:`write_batch`. Its failures are the project's errors
    (ducats.connect): an outage is ServiceUnavailable, a refusal ServiceRefused.

    Lifecycle: :meth:`connect`, then :meth:`try_lead` or :meth:`wait_lead`, then
    :meth:`load`, then batches; :meth:`stop` closes the connection, which releases the lock.
    The order of a checkpoint (write, publish, commit offsets) is streams/checkpoint.py's."""

    def __init__(self, *, settings: Settings) -> None:
        self.settings = settings
        self.conn: psycopg.AsyncConnection[Any] | None = None
        self.offsets: dict[tuple[str, int], int] = {}
        self.chain = Chain()  # of the batches topic, as committed with the data
        self.native = False
        # The accepted topic's partition count, as Kafka has it (streams/ledger.py sets it at start).
        self.accepted_partitions = settings.topic_partitions
        self._partition_of: dict[bytes, int] = {}
        # ducat -> holder, as of the last committed batch: a cache of the log (module doc)
        self.owners: dict[int, str] = {}

    def _errors(self) -> contextlib.AbstractContextManager[None]:
        return pg_errors(self.settings.database_url, session=True)

    async def connect(self) -> None:
        """Open the connection. Every statement on it is bounded (see SESSION)."""
        self.conn = await pg_connect(self.settings.database_url, options=SESSION, **KEEPALIVES)

    async def try_lead(self, lock: int) -> bool:
        """Take the single-writer advisory lock if it is free; True if this session holds it."""
        with self._errors():
            row = await (await self.connection.execute("SELECT pg_try_advisory_lock(%s)", [lock])).fetchone()
            await self.connection.commit()
        return bool(row and row[0])

    async def wait_lead(self, lock: int) -> None:
        """Wait, as long as it takes, to hold the lock on this very connection (a hot standby),
        so that only the lock holder can ever write. Cancel the call to give up waiting."""
        with self._errors():
            await self.connection.execute("SET statement_timeout = 0")  # the wait is the point here
            await self.connection.execute("SELECT pg_advisory_lock(%s)", [lock])
            await self.connection.execute("RESET statement_timeout")
            await self.connection.commit()

    async def start(self, *, leader_lock: int | None = None) -> None:
        """Connect; with ``leader_lock``, first wait to hold that lock; then :meth:`load`."""
        await self.connect()
        if leader_lock is not None:
            await self.wait_lead(leader_lock)
        await self.load()

    async def load(self) -> None:
        """Read the storage path and the stored input offsets (a missing table: `ducats migrate`)."""
        with self._errors():
            row = await (await self.connection.execute(
                "SELECT value FROM ducats_meta WHERE key = 'storage'")).fetchone()
            self.native = row is not None and row[0] == "native"
            await self.connection.commit()
        self.offsets = await self.load_offsets()
        with self._errors():
            cur = await self.connection.execute("SELECT partition, last_seq FROM accepted_chain")
            self.chain = Chain({p: seq for p, seq in await cur.fetchall()})
            await self.connection.commit()
        with self._errors():
            self.owners = await q.owners_after_state(self.connection)
            await self.connection.commit()

    async def ping(self) -> None:
        """One round trip: an idle leader notices a lost connection (and so a lost lock)."""
        with self._errors():
            await self.connection.execute("SELECT 1")
            await self.connection.commit()

    @property
    def connection(self) -> psycopg.AsyncConnection[Any]:
        assert self.conn is not None, "connect() first"
        return self.conn

    async def stop(self) -> None:
        """Close the connection (the lock goes with the session). Never raises."""
        if self.conn is not None:
            with contextlib.suppress(psycopg.Error):
                await self.conn.close()

    async def load_offsets(self) -> dict[tuple[str, int], int]:
        """Next offset to read per input partition, as committed with the data."""
        with self._errors():
            cur = await self.connection.execute("SELECT topic, partition, next_offset FROM ledger_offsets")
            rows = await cur.fetchall()
            await self.connection.commit()
        return {(r[0], r[1]): r[2] for r in rows}

    async def write_batch(self, batch: Sequence[InputRecord]) -> BatchReport:
        """Apply ``batch`` (records of the mints and transactions topics) once."""
        assert self.conn is not None
        fresh = [r for r in batch if r.offset >= self.offsets.get((r.topic, r.partition), 0)]
        report = BatchReport(replayed=len(batch) - len(fresh))
        if not fresh:
            return report
        with report.step("decode"):  # JSON and the schema, before any transaction
            decoded = self._decode(fresh, report)
        offsets = {**self.offsets}
        for r in fresh:
            offsets[(r.topic, r.partition)] = max(offsets.get((r.topic, r.partition), 0), r.offset + 1)
        chain = Chain(self.chain.heads)  # becomes self.chain once the batch is committed
        with self._errors():
            async with self.conn.transaction(), self.conn.cursor() as cur:
                await cur.execute("SELECT last_seq, watermark FROM ledger_state FOR UPDATE")
                last_seq, watermark = await cur.fetchone()  # type: ignore[misc]
                ledger = await self._load(cur, decoded, last_seq, watermark, report)
                await self._apply_and_write(cur, decoded, ledger, report, chain)
                with report.step("position"):
                    await q.save_position(cur, last_seq=ledger.last_seq, offsets=offsets, watermark=ledger.watermark)
                commit_started = time.perf_counter()
            report.ms["commit"] = round((time.perf_counter() - commit_started) * 1000, 1)
        self.offsets, self.chain = offsets, chain
        for lo, hi, holder in decoded.minted:  # committed: the index may say so now, mints first
            self.owners.update(dict.fromkeys(range(lo, hi + 1), sys.intern(holder)))
        self.owners.update(ledger.holders)
        report.last_seq = ledger.last_seq
        return report

    def _decode(self, records: Sequence[InputRecord], report: BatchReport) -> _Decoded:
        out = _Decoded()
        for rec in records:
            try:
                if rec.topic == self.settings.topic_mints:
                    m = codec.decode_mint(rec.value)
                    out.mints.append((rec, m, event_time(m.timestamp)))
                else:
                    t = codec.decode_transfer(rec.value)
                    out.transfers.append((rec, t, [parse_ducat(d) for d in t.ducat_ids], event_time(t.timestamp)))
            except InvalidEvent as exc:
                self._dead_letter(out, rec, exc, report)
        return out

    def _dead_letter(self, out: _Decoded, rec: InputRecord, exc: InvalidEvent, report: BatchReport) -> None:
        letter = codec.dead_letter_for(rec.value, exc, topic=rec.topic, partition=rec.partition, offset=rec.offset)
        out.outbox.append((self.settings.topic_dlq, rec.key, letter.to_json(), None))
        report.dead_letters += 1

    def partition_of(self, key: bytes) -> int:
        """The accepted partition of ``key``: what aiokafka's DefaultPartitioner picks."""
        p = self._partition_of.get(key)
        if p is None:
            p = self._partition_of[key] = key_partition(key, self.accepted_partitions)
            if len(self._partition_of) > 1_000_000:  # holders are many: keep the memory bounded
                self._partition_of.clear()
        return p

    def _accept(self, out: _Decoded, key: bytes, seq: int, value: bytes) -> None:
        p = self.partition_of(key)
        out.outbox.append((self.settings.topic_accepted, key, value, p))
        out.accepted.setdefault(p, []).append((seq, value))

    async def _load(self, cur: psycopg.AsyncCursor[Any], d: _Decoded, last_seq: int,
                    watermark: dt.datetime | None, report: BatchReport) -> LedgerBatch:
        referenced = sorted({i for _, _, ids, _ in d.transfers for i in ids})
        mint_ranges = [(m.mint_id, *mint_range(m)) for _, m, _ in d.mints]
        owners = self.owners
        with report.step("load_ducats"):
            holders = await q.load_owners(cur, [i for i in referenced if i not in owners])
        holders.update((i, owners[i]) for i in referenced if i in owners)
        with report.step("load_seen"):
            seen_transactions = await q.load_seen(cur, "transaction_ids", [t.transaction_id for _, t, _, _ in d.transfers])
            seen_mints = await q.load_seen(cur, "mints", [m.mint_id for _, m, _ in d.mints])
            taken_mint_ids = await q.load_taken_mints(cur, mint_ranges)
        with report.step("load_balances"):
            balances = await q.load_balances(cur, sorted(
                {m.holder for _, m, _ in d.mints} | {h for _, t, _, _ in d.transfers for h in (t.sender, t.receiver)}))
        return LedgerBatch(treasury=self.settings.treasury_set, holders=holders, referenced=referenced,
                           seen_transactions=seen_transactions, seen_mints=seen_mints, taken_mint_ids=taken_mint_ids,
                           last_seq=last_seq, watermark=watermark, balances=balances, evolve=False)

    async def _apply_and_write(self, cur: psycopg.AsyncCursor[Any], d: _Decoded, ledger: LedgerBatch,
                               report: BatchReport, chain: Chain) -> None:
        s, applied_at = self.settings, now_iso()
        mint_rows: list[Any] = []
        tx_rows: list[Any] = []
        id_rows: list[Any] = []
        move_rows: list[Any] = []
        conflicts: list[Any] = []
        with report.step("rules"):  # the ledger's decisions, in memory
            for rec, m, at in d.mints:  # mints first: a transfer in the same batch may move fresh ducats
                lo, hi = mint_range(m)
                outcome, seq = ledger.apply_mint(mint_id=m.mint_id, lo=lo, hi=hi, holder=m.holder, at=at)
                if outcome is MintOutcome.APPLIED:
                    d.minted.append((lo, hi, m.holder))
                    mint_rows.append((m.mint_id, seq, m.batch, m.first_seq, m.count, m.holder, m.timestamp))
                    self._accept(d, m.holder.encode(), seq, MintAccepted.of(
                        m, seq=seq, holder_balance=ledger.balances[m.holder], applied_at=applied_at).to_json())
                    report.mints += 1
                elif outcome is MintOutcome.CONFLICT:
                    detail = f"ducats of mint {m.mint_id} already exist"
                    conflicts.append((m.mint_id, str(DeadLetterReason.MINT_CONFLICT), detail))
                    self._dead_letter(d, rec, InvalidEvent(reason=DeadLetterReason.MINT_CONFLICT, detail=detail), report)
            for _rec, t, ids, at in d.transfers:
                known = t.transaction_id in ledger.seen_transactions
                result = ledger.apply_transfer(transaction_id=t.transaction_id, sender=t.sender,
                                               receiver=t.receiver, ducats=ids, at=at)
                if not known:
                    id_rows.append((t.transaction_id, t.timestamp, *(
                        (result.seq, None, None) if isinstance(result, Accepted) else
                        (None, str(result.reason), result.detail))))
                if isinstance(result, Accepted):
                    tx_rows.append((result.seq, t.transaction_id, t.timestamp, t.sender, t.receiver, q.int_array(ids), len(ids),
                                    result.impact, orjson.dumps(t.metadata or {}).decode(), applied_at))
                    move_rows.extend((i, result.seq, at, t.sender, t.receiver, t.transaction_id) for i in ids)
                    self._accept(d, t.sender.encode(), result.seq, TransferAccepted.of(
                        t, seq=result.seq, consciousness_impact=result.impact, from_balance=result.from_balance,
                        to_balance=result.to_balance, applied_at=applied_at).to_json())
                    report.accepted += 1
                else:
                    d.outbox.append((s.topic_rejected, t.sender.encode(), TransferRejected.of(
                        t, reason=result.reason, detail=result.detail, ducat_ids=[ducat_str(i) for i in result.ducats],
                        rejected_at=applied_at).to_json(), None))
                    report.rejected += 1
            for p, events in sorted(d.accepted.items()):  # after the per-event records they carry
                d.outbox.extend((s.topic_accepted_batches, None, r, p) for r in chain.records(p, events))
        await q.save_chain(cur, {p: chain.heads[p] for p in d.accepted})
        await self._write(cur, _Rows(mint_rows, tx_rows, id_rows, move_rows, conflicts), ledger, d.outbox, report)

    async def _write(self, cur: psycopg.AsyncCursor[Any], rows: _Rows, ledger: LedgerBatch,
                     outbox: list[tuple[str, bytes | None, bytes, int | None]], report: BatchReport) -> None:
        with report.step("log"):
            await self._write_log(cur, rows)
        await q.save_balances(cur, {h: ledger.balances[h] for h in ledger.changed_balances})
        if outbox:
            with report.step("outbox"):
                # binary: the values (the events, twice) go as they are, not hex-escaped and decoded
                await q.copy_binary_rows(cur, "COPY outbox (topic, key, value, partition) FROM STDIN (FORMAT BINARY)",
                                         outbox, ("text", "bytea", "bytea", "int4"))

    async def _write_log(self, cur: psycopg.AsyncCursor[Any], rows: _Rows) -> None:
        """The accepted log itself: mints, transaction ids, transactions, moves."""
        await q.insert_mints(cur, rows.mints)
        await q.record_mint_rejections(cur, rows.mint_conflicts)
        if rows.ids:
            await q.copy_rows(cur, "COPY transaction_ids (transaction_id, ts, seq, reason, detail) FROM STDIN",
                              rows.ids)
        if rows.transactions:
            if self.native:
                await q.ensure_month_partitions(cur, sorted({r[2] for r in rows.transactions}))
            await q.copy_rows(cur, """COPY transactions (seq, transaction_id, ts, sender, receiver, ducat_ids,
                                      ducat_count, consciousness_impact, metadata, applied_at) FROM STDIN""",
                              rows.transactions)
            await q.copy_binary_rows(
                cur, "COPY ducat_moves (ducat_id, seq, ts, sender, receiver, transaction_id) FROM STDIN (FORMAT BINARY)",
                rows.moves, ("int8", "int8", "timestamptz", "text", "text", "text"))

