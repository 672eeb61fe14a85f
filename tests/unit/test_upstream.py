"""The upstream client's line parsing, keys and reports (no Kafka needed)."""
from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner

from cli.main import cli
from ducats.upstream import (
    BadRequest,
    EventKind,
    PublishSummary,
    RejectedLine,
    accepted_lines,
    mint_events,
    mint_record,
    parse_line,
    transfer_record,
)
from schemas.errors import InvalidEvent
from schemas.models import DeadLetterReason, MintBatch, Transfer

TS = "2026-11-26T10:00:00Z"
MINT = MintBatch(mint_id="mint-42", batch=42, first_seq=1, count=10, holder="treasury", timestamp=TS)
TRANSFER = Transfer(transaction_id="tx-1", timestamp=TS, sender="alice", receiver="bob",
                    ducat_ids=("BATCH-42-000001",))


def test_mints_are_keyed_by_batch_and_transfers_by_sender() -> None:
    assert mint_record(MINT).key == b"42"
    assert transfer_record(TRANSFER).key == b"alice"
    assert parse_line(MINT.to_json() + b"\n", kind=EventKind.MINTS).key == b"42"
    assert parse_line(TRANSFER.to_json(), kind=EventKind.TRANSACTIONS).key == b"alice"


def test_a_valid_line_is_sent_as_it_came_without_its_line_break() -> None:
    line = orjson.dumps({**orjson.loads(TRANSFER.to_json()), "addedInV1_1": True})
    assert parse_line(b"  " + line + b"\r\n", kind=EventKind.TRANSACTIONS).value == line


def test_lines_are_checked_against_the_topic_they_go_to() -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_line(MINT.to_json(), kind=EventKind.TRANSACTIONS)
    assert info.value.reason is DeadLetterReason.SCHEMA_VIOLATION


def test_accepted_lines_reports_each_rejected_line_by_number_and_counts_it() -> None:
    lines = [MINT.to_json() + b"\n", b"\n", b"{oops\n", orjson.dumps({"mintId": 5}) + b"\n",
             b"[1]\n", MINT.to_json()]
    summary, reported = PublishSummary(), list[RejectedLine]()
    sent = list(accepted_lines(lines, kind=EventKind.MINTS, summary=summary, on_rejected=reported.append))
    assert len(sent) == 2 and summary.rejected == 3 and not summary.ok
    assert [r.line_no for r in reported] == [3, 4, 5]
    assert [str(r).split(":")[:2] for r in reported] == [
        ["line 3", " not_json"], ["line 4", " schema_violation"], ["line 5", " wrong_type"]]


def test_reports_read_like_the_brief() -> None:
    error = InvalidEvent(reason=DeadLetterReason.OVERSIZE, detail="data.ducatIds must contain ...")
    assert str(RejectedLine(line_no=12, error=error)) == "line 12: oversize: data.ducatIds must contain ..."
    assert str(PublishSummary(sent=7, rejected=2)) == "sent 7, rejected at the door 2"
    assert PublishSummary(sent=7).ok


def test_mint_events_are_deterministic_and_valid() -> None:
    mints = list(mint_events(batches=3, size=10_000, holder="treasury", first_batch=100, timestamp=TS))
    assert [m.mint_id for m in mints] == ["mint-100", "mint-101", "mint-102"]
    assert all(m.first_seq == 1 and m.count == 10_000 and m.holder == "treasury" for m in mints)
    assert all(MintBatch.from_json(m.to_json()) == m for m in mints)


@pytest.mark.parametrize(("kwargs", "word"), [
    ({"size": 10_001}, "--size"), ({"size": 0}, "--size"), ({"batches": 0}, "--batches"),
    ({"first_batch": 999_999_999, "batches": 2}, "outside"), ({"first_batch": -1}, "outside"),
    ({"holder": ""}, "--holder"),
])
def test_impossible_mint_requests_fail_before_anything_is_sent(kwargs: dict[str, object], word: str) -> None:
    args: dict[str, object] = {"batches": 1, "size": 10, "holder": "treasury", **kwargs}
    with pytest.raises(BadRequest, match=word):
        mint_events(**args)  # type: ignore[arg-type]


def test_cli_turns_bad_requests_into_typed_errors() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["mint", "--batches", "1", "--size", "20000", "--holder", "t"])
    assert isinstance(result.exception, BadRequest)
    result = runner.invoke(cli, ["publish", "/nonexistent/events.jsonl", "--topic", "mints"])
    assert isinstance(result.exception, BadRequest) and "cannot read" in str(result.exception)
