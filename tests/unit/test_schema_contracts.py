"""The schema files and the dataclasses describe the same events."""
from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest

from schemas.codec import SCHEMA_DIR, load_schema, validator
from schemas.models import (
    Alert,
    DeadLetter,
    DeadLetterReason,
    MintAccepted,
    MintBatch,
    RecordSource,
    RejectReason,
    Transfer,
    TransferAccepted,
    TransferRejected,
)

MODELS: list[Any] = [MintBatch, Transfer, MintAccepted, TransferAccepted, TransferRejected, DeadLetter, Alert]
_WIRE_NAMES = {"sender": "from", "receiver": "to"}

TS = "2026-11-26T10:00:00+00:00"
MINT = MintBatch(mint_id="mint-7", batch=7, first_seq=1, count=3, holder="treasury", timestamp=TS)
TRANSFER = Transfer(transaction_id="tx-1", timestamp=TS, sender="alice", receiver="bob",
                    ducat_ids=("BATCH-7-000001", "BATCH-7-000002"), metadata={"note": "gift"})


def wire_name(field: str) -> str:
    head, *rest = field.split("_")
    return _WIRE_NAMES.get(field, head + "".join(word.title() for word in rest))


def examples() -> list[Any]:
    return [
        MINT, TRANSFER,
        MintAccepted.of(MINT, seq=1, applied_at=TS),
        TransferAccepted.of(TRANSFER, seq=2, consciousness_impact=0.25, applied_at=TS),
        TransferRejected.of(TRANSFER, reason=RejectReason.NOT_HOLDER, detail="alice holds none",
                            ducat_ids=["BATCH-7-000002"], rejected_at=TS),
        DeadLetter(reason=DeadLetterReason.NOT_JSON, detail="unexpected end",
                   source=RecordSource(topic="ducats.transactions", partition=3, offset=42),
                   original="ew==", received_at=TS),
        Alert(alert_id="cascade-9", kind="cascade", state="open", signal="transfers_per_second", started_at=TS,
              start_seq=9, baseline={"median": 20.0, "mad": 3.0, "upper": 46.7}, peak=210, transfers=210,
              seconds=1, detected_at=TS),
        Alert(alert_id="cascade-9", kind="cascade", state="ended", signal="transfers_per_second", started_at=TS,
              start_seq=9, baseline={"median": 20.0, "mad": 3.0, "upper": 46.7}, peak=230, transfers=4400,
              seconds=23, detected_at=TS, ended_at=TS, end_seq=5000),
    ]


def assert_in_sync(model: Any, schema: dict[str, Any]) -> None:
    fields = dataclasses.fields(model)
    assert {wire_name(f.name) for f in fields} == set(schema["properties"]), model.__name__
    required = {wire_name(f.name) for f in fields
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    assert required == set(schema["required"]), model.__name__


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_dataclass_fields_match_schema_properties_and_required(model: Any) -> None:
    assert_in_sync(model, load_schema(model.SCHEMA))


def test_nested_objects_match_too() -> None:
    assert_in_sync(RecordSource, load_schema("dead_letter.v1")["properties"]["source"])
    assert load_schema("transfer_rejected.v1")["properties"]["transfer"]["$ref"] == "transfer.v1.json"


def test_every_schema_file_has_a_model_and_declares_draft_2020_12() -> None:
    assert {p.name.removesuffix(".json") for p in SCHEMA_DIR.glob("*.json")} == {m.SCHEMA for m in MODELS}
    for model in MODELS:
        schema = load_schema(model.SCHEMA)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"].endswith(f"/{model.SCHEMA}.json")
        assert schema["additionalProperties"] is True  # the evolution rule: consumers ignore extras


def test_enums_match_schema_enums() -> None:
    rejected = load_schema("transfer_rejected.v1")["properties"]["reason"]["enum"]
    dead = load_schema("dead_letter.v1")["properties"]["reason"]["enum"]
    assert [r.value for r in RejectReason] == rejected
    assert [r.value for r in DeadLetterReason] == dead


@pytest.mark.parametrize(("output", "source"), [("mint_accepted.v1", "mint_batch.v1"),
                                                ("transfer_accepted.v1", "transfer.v1")])
def test_output_events_repeat_input_fields_with_the_same_rules(output: str, source: str) -> None:
    def rules(d: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in d.items() if k != "description"}

    out, src = load_schema(output)["properties"], load_schema(source)["properties"]
    for name in out.keys() & src.keys():
        assert rules(out[name]) == rules(src[name]), name


@pytest.mark.parametrize("event", examples(), ids=lambda e: type(e).__name__)
def test_every_model_writes_json_its_own_schema_accepts(event: Any) -> None:
    validator(event.SCHEMA)(orjson.loads(event.to_json()))


@pytest.mark.parametrize("event", examples(), ids=lambda e: type(e).__name__)
def test_every_model_round_trips(event: Any) -> None:
    assert type(event).from_json(event.to_json()) == event


def test_rejection_keeps_at_most_100_offending_ids() -> None:
    ids = [f"BATCH-7-{i:06d}" for i in range(1, 251)]
    rejected = TransferRejected.of(TRANSFER, reason=RejectReason.UNKNOWN_DUCAT, detail="x", ducat_ids=ids)
    assert rejected.ducat_ids == tuple(ids[:100])
    validator(rejected.SCHEMA)(orjson.loads(rejected.to_json()))


def test_models_are_frozen_slotted_and_keyword_only() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        MINT.count = 4  # type: ignore[misc]
    with pytest.raises(TypeError):
        MintBatch("m", 1, 1, 1, "h", TS)  # type: ignore[misc]
    assert not hasattr(MINT, "__dict__")
