"""The ledger against real Kafka and PostgreSQL, on both storage paths."""
from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import psycopg

from ducats.settings import Settings
from tests.fixtures.ledger import publish, read_all, wait_caught_up
from tests.reference import TS, make_workload

Runner = Callable[..., Awaitable[None]]


def mint_event(mint_id: str, batch: int, count: int, holder: str = "treasury") -> bytes:
    return orjson.dumps({"mintId": mint_id, "batch": batch, "firstSeq": 1, "count": count,
                         "holder": holder, "timestamp": TS})


async def test_hundred_mints_give_exactly_100k_ducats_and_replay_changes_nothing(
        ledger_settings: Settings, ledger_runner: Runner) -> None:
    s = ledger_settings
    events = [(str(b).encode(), mint_event(f"mint-{b}", b, 1000)) for b in range(1, 101)]
    await publish(s, s.topic_mints, events)
    await ledger_runner(s)
    await wait_caught_up(s)

    def snapshot() -> tuple[object, ...]:
        with psycopg.connect(s.database_url) as conn:
            return (
                conn.execute("SELECT count(*), count(DISTINCT batch), min(id), max(id) FROM ducats").fetchone(),
                conn.execute("""SELECT count(*) FROM (SELECT batch FROM ducats GROUP BY batch
                                HAVING min(id) = batch * 1000000::bigint + 1 AND max(id) = batch * 1000000::bigint + 1000
                                   AND count(*) = 1000 AND bool_and(holder = 'treasury')) ok""").fetchone(),
                conn.execute("SELECT count(*), max(seq) FROM mints").fetchone(),
                conn.execute("SELECT last_seq FROM ledger_state").fetchone(),
            )

    first = snapshot()
    assert first == ((100_000, 100, 1_000_001, 100_001_000), (100,), (100, 100), (100,))
    await publish(s, s.topic_mints, events)  # the same 100 events again
    await wait_caught_up(s)
    assert snapshot() == first
    accepted = [orjson.loads(r.value) for r in await read_all(s, s.topic_accepted)]
    assert sorted(a["mintId"] for a in accepted) == sorted(f"mint-{b}" for b in range(1, 101))
    assert sorted(a["seq"] for a in accepted) == list(range(1, 101))


async def test_random_workload_matches_the_reference_model(
        ledger_settings: Settings, ledger_runner: Runner) -> None:
    s = ledger_settings
    w = make_workload(seed=20261126, batches=20, batch_size=1000, transfers=20_000)
    assert all(n > 300 for n in w.invalid_kinds.values()), w.invalid_kinds
    await publish(s, s.topic_mints, [(b"k", m) for m in w.mints])
    await ledger_runner(s)
    await wait_caught_up(s)
    await publish(s, s.topic_transactions, w.transfers)
    await wait_caught_up(s)

    ref, mints = w.reference, [orjson.loads(m) for m in w.mints]
    published: dict[str, dict[str, Any]] = {}
    for _, raw in w.transfers:  # an accepted id is the first event that used it; later ones are duplicates
        published.setdefault(orjson.loads(raw)["transactionId"], orjson.loads(raw))
    seq_of = {tx: len(mints) + k + 1 for k, tx in enumerate(ref.accepted)}  # the mints were applied first

    with psycopg.connect(s.database_url) as conn:
        rows = conn.execute("SELECT id, holder FROM ducats").fetchall()
        stored = conn.execute("SELECT seq, transaction_id, sender, receiver, ducat_ids FROM transactions "
                              "ORDER BY seq").fetchall()
        consumed: dict[str, int | None] = dict(
            conn.execute("SELECT transaction_id, seq FROM transaction_ids").fetchall())
        balances: dict[str, int] = dict(conn.execute("SELECT holder, ducats FROM holder_balances").fetchall())
    holders = {f"BATCH-{i // 1_000_000}-{i % 1_000_000:06d}": h for i, h in rows}
    assert holders == ref.holder  # every one of the 20,000 ducats
    assert {h: n for h, n in balances.items() if n} == Counter(ref.holder.values())
    assert stored == [(seq_of[tx], tx, published[tx]["from"], published[tx]["to"],
                       [ducat_int(d) for d in published[tx]["ducatIds"]]) for tx in ref.accepted]
    assert consumed == {tx: seq_of.get(tx) for tx in ref.seen}  # a rejected id is consumed too (seq NULL)

    accepted = sorted((orjson.loads(r.value) for r in await read_all(s, s.topic_accepted)), key=lambda a: a["seq"])
    assert [project(a) for a in accepted] == replay(mints, [published[tx] for tx in ref.accepted])

    rejected = [orjson.loads(r.value) for r in await read_all(s, s.topic_rejected)]
    assert Counter((r["transactionId"], r["reason"]) for r in rejected) == Counter(ref.rejected)
    assert dict(Counter(r["reason"] for r in rejected)) == w.invalid_kinds  # the exact count of each reason


MINT_FIELDS = ("seq", "mintId", "batch", "firstSeq", "count", "holder", "timestamp", "holderBalance")
TRANSFER_FIELDS = ("seq", "transactionId", "timestamp", "from", "to", "ducatIds", "ducatCount", "metadata",
                   "fromBalance", "toBalance")


def project(record: dict[str, Any]) -> dict[str, Any]:
    """The fields of an accepted record that the reference decides (not appliedAt, not the impact)."""
    return {k: record.get(k) for k in (TRANSFER_FIELDS if "transactionId" in record else MINT_FIELDS)}


def replay(mints: list[dict[str, Any]], transfers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The accepted log the reference's decisions give: the mints, then the accepted
    transfers in log order, gapless seqs, balances counted by replaying them."""
    balance: Counter[str] = Counter()
    out: list[dict[str, Any]] = []
    for m in mints:
        balance[m["holder"]] += m["count"]
        out.append({**m, "seq": len(out) + 1, "holderBalance": balance[m["holder"]]})
    for t in transfers:
        balance[t["from"]] -= len(t["ducatIds"])
        balance[t["to"]] += len(t["ducatIds"])
        out.append({**t, "seq": len(out) + 1, "ducatCount": len(t["ducatIds"]),
                    "fromBalance": balance[t["from"]], "toBalance": balance[t["to"]]})
    return [project(e) for e in out]


def ducat_int(ducat_id: str) -> int:
    _, batch, seq = ducat_id.split("-")
    return int(batch) * 1_000_000 + int(seq)


async def test_malformed_records_go_to_the_dlq_and_the_ledger_keeps_running(
        ledger_settings: Settings, ledger_runner: Runner) -> None:
    s = ledger_settings
    await publish(s, s.topic_mints, [(b"1", mint_event("m1", 1, 100)), (b"x", b"{not json")])
    await ledger_runner(s)
    await wait_caught_up(s)

    def transfer(tx: str, ids: object, to: object = "bob") -> bytes:
        return orjson.dumps({"transactionId": tx, "timestamp": TS, "from": "treasury", "to": to, "ducatIds": ids})

    bad = {
        b"\xff\xfe not json at all": "not_json",
        transfer("t-type", "BATCH-1-000001"): "wrong_type",
        orjson.dumps({"transactionId": "t-missing", "timestamp": TS, "from": "treasury",
                      "ducatIds": ["BATCH-1-000001"]}): "schema_violation",
        transfer("t-big", [f"BATCH-2-{i:06d}" for i in range(1, 10_002)]): "oversize",
        # PostgreSQL text and jsonb cannot hold NUL: these used to fail every retry of the batch
        transfer("t-nul", ["BATCH-1-000001"], to="bo\x00b"): "schema_violation",
        orjson.dumps({"transactionId": "t-nul-meta", "timestamp": TS, "from": "treasury", "to": "bob",
                      "ducatIds": ["BATCH-1-000001"], "metadata": {"note": "\x00"}}): "schema_violation",
    }
    good = [transfer("t-ok-1", ["BATCH-1-000001"]), transfer("t-ok-2", ["BATCH-1-000002"], to="carol")]
    await publish(s, s.topic_transactions, [(b"treasury", v) for v in [good[0], *bad, good[1]]])
    conflict = mint_event("m1-again", 1, 10)  # another mint id over ducats that exist
    await publish(s, s.topic_mints, [(b"1", conflict)])
    await wait_caught_up(s)

    letters = [orjson.loads(r.value) for r in await read_all(s, s.topic_dlq)]
    by_original = {base64.b64decode(d["original"]): d for d in letters}
    assert by_original[b"{not json"]["reason"] == "not_json"
    for raw, reason in bad.items():
        assert by_original[raw]["reason"] == reason, by_original[raw]
        assert by_original[raw]["source"]["topic"] == s.topic_transactions
        assert by_original[raw]["detail"]
    assert by_original[conflict]["reason"] == "mint_conflict"
    assert len(letters) == len(bad) + 2
    assert {raw: d["reason"] for raw, d in by_original.items()} == {b"{not json": "not_json", **bad,
                                                                   conflict: "mint_conflict"}
    accepted = sorted((orjson.loads(r.value) for r in await read_all(s, s.topic_accepted)), key=lambda a: a["seq"])
    assert [(a["seq"], a.get("mintId"), a.get("transactionId")) for a in accepted] == [
        (1, "m1", None), (2, None, "t-ok-1"), (3, None, "t-ok-2")]
    with psycopg.connect(s.database_url) as conn:
        holders: dict[int, str] = dict(conn.execute("SELECT id, holder FROM ducats").fetchall())
        assert conn.execute("SELECT count(*) FROM mints").fetchone() == (1,)
    assert holders == {**{1_000_000 + i: "treasury" for i in range(1, 101)}, 1_000_001: "bob", 1_000_002: "carol"}
