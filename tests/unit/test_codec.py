"""The codec: decoding input events and classifying bad ones for the dead-letter topic."""
from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from schemas.codec import dead_letter_for, decode_mint, decode_transfer, validator
from schemas.errors import InvalidEvent
from schemas.events import MintBatch as LegacyMintBatch
from schemas.models import DeadLetterReason, MintBatch, Transfer

R = DeadLetterReason
TS = "2026-11-26T10:00:00Z"


def mint_doc(**changes: Any) -> dict[str, Any]:
    doc = {"mintId": "mint-1", "batch": 12345, "firstSeq": 1, "count": 1000,
           "holder": "treasury", "timestamp": TS}
    return {**doc, **changes}


def transfer_doc(n: int = 2, **changes: Any) -> dict[str, Any]:
    doc = {"transactionId": "tx-1", "timestamp": TS, "from": "alice", "to": "bob",
           "ducatIds": [f"BATCH-12345-{i:06d}" for i in range(1, n + 1)]}
    return {**doc, **changes}


def reason_of(decode: Any, raw: bytes) -> DeadLetterReason:
    with pytest.raises(InvalidEvent) as info:
        decode(raw)
    assert str(info.value).startswith(f"{info.value.reason.value}: ")
    return info.value.reason


def test_decodes_a_mint_and_a_transfer() -> None:
    mint = decode_mint(orjson.dumps(mint_doc(metadata={"why": "genesis"})))
    assert mint == MintBatch(mint_id="mint-1", batch=12345, first_seq=1, count=1000,
                             holder="treasury", timestamp=TS, metadata={"why": "genesis"})
    transfer = decode_transfer(orjson.dumps(transfer_doc()))
    assert (transfer.sender, transfer.receiver) == ("alice", "bob")
    assert transfer.ducat_ids == ("BATCH-12345-000001", "BATCH-12345-000002")
    assert transfer.metadata is None


def test_legacy_import_path_and_from_json_still_work() -> None:
    mint = LegacyMintBatch(mint_id="m", batch=1, first_seq=1, count=1, holder="h", timestamp=TS)
    assert LegacyMintBatch.from_json(mint.to_json()) == mint
    assert Transfer.from_json(orjson.dumps(transfer_doc())).transaction_id == "tx-1"


def test_unknown_fields_are_ignored_and_integral_floats_become_ints() -> None:
    mint = decode_mint(orjson.dumps(mint_doc(batch=7.0, futureField={"x": 1})))
    assert mint.batch == 7 and type(mint.batch) is int


@pytest.mark.parametrize("raw", [b"", b"{", b"not json", b"\xff\xfe{}", b'{"a":1}{'])
def test_not_json(raw: bytes) -> None:
    assert reason_of(decode_transfer, raw) is R.NOT_JSON


@pytest.mark.parametrize("doc", [
    [], "transfer", 42, None,
    transfer_doc(transactionId=1), transfer_doc(ducatIds="BATCH-1-000001"),
    transfer_doc(ducatIds=[1, 2]), transfer_doc(metadata=[]), transfer_doc(to=None),
])
def test_wrong_type(doc: Any) -> None:
    assert reason_of(decode_transfer, orjson.dumps(doc)) is R.WRONG_TYPE


@pytest.mark.parametrize("doc", [
    mint_doc(batch=True), mint_doc(count="5"), mint_doc(firstSeq=1.5), mint_doc(holder={}),
])
def test_wrong_type_in_a_mint(doc: Any) -> None:
    assert reason_of(decode_mint, orjson.dumps(doc)) is R.WRONG_TYPE


@pytest.mark.parametrize("doc", [
    {k: v for k, v in transfer_doc().items() if k != "from"},
    transfer_doc(ducatIds=[]), transfer_doc(ducatIds=["BATCH-1-1"]),
    transfer_doc(ducatIds=["batch-1-000001"]), transfer_doc(ducatIds=["BATCH-1234567890-000001"]),
    transfer_doc(transactionId=""), transfer_doc(to="x" * 129),
    transfer_doc(timestamp="yesterday"), transfer_doc(timestamp="2026-11-26 10:00:00"),
    transfer_doc(timestamp="2026-11-26T10:00:00"),
])
def test_schema_violation_in_a_transfer(doc: Any) -> None:
    assert reason_of(decode_transfer, orjson.dumps(doc)) is R.SCHEMA_VIOLATION


@pytest.mark.parametrize("doc", [
    mint_doc(count=0), mint_doc(count=10_001), mint_doc(batch=-1), mint_doc(batch=1_000_000_000),
    mint_doc(firstSeq=0), mint_doc(firstSeq=999_999, count=2), mint_doc(firstSeq=990_001, count=10_000),
])
def test_schema_violation_in_a_mint(doc: Any) -> None:
    assert reason_of(decode_mint, orjson.dumps(doc)) is R.SCHEMA_VIOLATION


@pytest.mark.parametrize("decode, doc", [
    (decode_transfer, transfer_doc(transactionId="tx\x00")), (decode_transfer, {**transfer_doc(), "from": "a\x00b"}),
    (decode_transfer, transfer_doc(to="\x00")), (decode_mint, mint_doc(mintId="m\x00")),
    (decode_mint, mint_doc(holder="t\x00")), (decode_transfer, transfer_doc(metadata={"k": ["x", {"y": "\x00"}]})),
    (decode_transfer, transfer_doc(metadata={"k\x00": 1})),
])
def test_a_nul_character_postgresql_cannot_store_is_a_violation(decode: Any, doc: Any) -> None:
    """A text or jsonb value with NUL would fail the ledger's batch on every retry: a dead letter instead."""
    assert reason_of(decode, orjson.dumps(doc)) is R.SCHEMA_VIOLATION


def test_an_escaped_backslash_u0000_is_just_text() -> None:
    assert decode_transfer(orjson.dumps(transfer_doc(metadata={"k": "\\u0000"}))).metadata == {"k": "\\u0000"}


def test_the_last_possible_sequence_number_is_fine() -> None:
    assert decode_mint(orjson.dumps(mint_doc(firstSeq=990_000, count=10_000))).last_seq == 999_999


def test_oversize_array_of_10001_ids() -> None:
    assert decode_transfer(orjson.dumps(transfer_doc(10_000))).ducat_ids[-1] == "BATCH-12345-010000"
    assert reason_of(decode_transfer, orjson.dumps(transfer_doc(10_001))) is R.OVERSIZE


def test_oversize_metadata_over_16_kib() -> None:
    ok = transfer_doc(metadata={"blob": "x" * (16 * 1024 - 20)})
    assert len(orjson.dumps(ok["metadata"])) <= 16 * 1024
    assert decode_transfer(orjson.dumps(ok)).metadata == ok["metadata"]
    big = {"blob": "x" * (17 * 1024)}
    assert reason_of(decode_transfer, orjson.dumps(transfer_doc(metadata=big))) is R.OVERSIZE
    assert reason_of(decode_mint, orjson.dumps(mint_doc(metadata=big))) is R.OVERSIZE


def test_oversize_record_over_4_mib_is_refused_before_parsing() -> None:
    raw = b" " * (4 * 1024 * 1024) + orjson.dumps(transfer_doc())
    assert reason_of(decode_transfer, raw) is R.OVERSIZE


def test_dead_letter_keeps_reason_source_and_original_bytes() -> None:
    raw = b'{"transactionId": 1}'
    with pytest.raises(InvalidEvent) as info:
        decode_transfer(raw)
    letter = dead_letter_for(raw, info.value, topic="ducats.transactions", partition=2, offset=99)
    assert letter.reason is R.SCHEMA_VIOLATION and letter.detail == info.value.detail
    assert (letter.source.topic, letter.source.partition, letter.source.offset) == ("ducats.transactions", 2, 99)
    assert base64.b64decode(letter.original) == letter.original_bytes() == raw
    validator(letter.SCHEMA)(orjson.loads(letter.to_json()))
