"""Decoding untrusted event bytes: the schema files are the validator.

Each ``*.v1.json`` beside this module is compiled once by fastjsonschema (to
plain Python, on first use) and checks every input record. A record it rejects
raises :class:`InvalidEvent` with the dead-letter reason:

- ``not_json``: not UTF-8 JSON, or an empty record;
- ``wrong_type``: the value, or a field of it, has the wrong JSON type;
- ``oversize``: over 10,000 ducatIds, metadata over 16 KiB once serialized
  with orjson, or a record over 4 MiB;
- ``schema_violation``: anything else the schema rejects (a missing field, a
  pattern, a range, a date-time), and firstSeq + count - 1 > 999999.

Per-record work is one orjson parse, one generated validator call and one
dataclass: about 2 ms for a 10,000-id transfer, microseconds for a mint.
"""
from __future__ import annotations

import base64
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastjsonschema
import orjson

from schemas.errors import InvalidEvent, SchemaError
from schemas.models import DeadLetter, DeadLetterReason, MintBatch, RecordSource, Transfer, utc_now

SCHEMA_DIR = Path(__file__).resolve().parent
SCHEMA_BASE_URI = "https://conscious-ducats.invalid/schemas/"  # the files' $id prefix

MAX_RECORD_BYTES = 4 * 1024 * 1024
MAX_METADATA_BYTES = 16 * 1024
MAX_SEQ = 999_999

# The schema keyword a record broke -> the dead-letter reason. maxItems appears
# on input schemas only as ducatIds' 10,000 limit; every other rule is a violation.
_REASON_BY_RULE = {"type": DeadLetterReason.WRONG_TYPE, "maxItems": DeadLetterReason.OVERSIZE}


def load_schema(name: str) -> dict[str, Any]:
    """The parsed schema file ``<name>.json`` of this folder, e.g. ``load_schema("transfer.v1")``."""
    doc = orjson.loads((SCHEMA_DIR / f"{name}.json").read_bytes())
    if not isinstance(doc, dict):
        raise SchemaError(f"{name}.json is not a JSON object")
    return doc


def _local_ref(uri: str) -> dict[str, Any]:
    # $refs between the contracts resolve to the files beside this module; the
    # $id host is reserved (.invalid), and nothing here may reach the network.
    if not uri.startswith(SCHEMA_BASE_URI):
        raise SchemaError(f"$ref outside the project's schemas: {uri}")
    return load_schema(uri.removeprefix(SCHEMA_BASE_URI).removesuffix(".json"))


@functools.cache
def validator(name: str) -> Callable[[Any], Any]:
    """The compiled validator of ``<name>.json``: compiled on first use, then cached.

    It raises ``fastjsonschema.JsonSchemaValueException`` for an invalid document.
    """
    return fastjsonschema.compile(load_schema(name), handlers={"https": _local_ref},
                                  use_default=False)


def decode_mint(raw: bytes) -> MintBatch:
    """Validate and decode a MintBatch record; raises :class:`InvalidEvent`."""
    doc = _validated(raw, MintBatch.SCHEMA)
    if doc["firstSeq"] + doc["count"] - 1 > MAX_SEQ:
        raise InvalidEvent(reason=DeadLetterReason.SCHEMA_VIOLATION,
                           detail=f"firstSeq + count - 1 must be <= {MAX_SEQ}")
    _check_metadata(doc)
    return MintBatch.from_wire(doc)


def decode_transfer(raw: bytes) -> Transfer:
    """Validate and decode a Transfer record; raises :class:`InvalidEvent`."""
    doc = _validated(raw, Transfer.SCHEMA)
    _check_metadata(doc)
    return Transfer.from_wire(doc)


def dead_letter_for(raw: bytes, exc: InvalidEvent, *, topic: str, partition: int,
                    offset: int) -> DeadLetter:
    """The dead letter for a record the codec rejected, with its original bytes."""
    return DeadLetter(reason=exc.reason, detail=exc.detail,
                      source=RecordSource(topic=topic, partition=partition, offset=offset),
                      original=base64.b64encode(raw or b"").decode("ascii"),
                      received_at=utc_now())


def _validated(raw: bytes, schema: str) -> dict[str, Any]:
    if not raw:  # also a tombstone (None): nothing to decode
        raise InvalidEvent(reason=DeadLetterReason.NOT_JSON, detail="empty record")
    if len(raw) > MAX_RECORD_BYTES:
        raise InvalidEvent(reason=DeadLetterReason.OVERSIZE,
                           detail=f"record is {len(raw)} bytes, over {MAX_RECORD_BYTES}")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(reason=DeadLetterReason.NOT_JSON, detail=str(exc)) from None
    try:
        validator(schema)(doc)
    except fastjsonschema.JsonSchemaValueException as exc:
        reason = _REASON_BY_RULE.get(exc.rule or "", DeadLetterReason.SCHEMA_VIOLATION)
        raise InvalidEvent(reason=reason, detail=exc.message) from None
    return doc  # type: ignore[no-any-return]


def _check_metadata(doc: dict[str, Any]) -> None:
    metadata = doc.get("metadata")
    if metadata is None:
        return
    serialized = orjson.dumps(metadata)
    if b"\\u0000" in serialized and _has_nul(metadata):  # jsonb cannot hold it: the ledger's batch would fail on every retry
        raise InvalidEvent(reason=DeadLetterReason.SCHEMA_VIOLATION,
                           detail="metadata contains a NUL character (\\u0000), which PostgreSQL cannot store")
    size = len(serialized)
    if size > MAX_METADATA_BYTES:
        raise InvalidEvent(reason=DeadLetterReason.OVERSIZE,
                           detail=f"metadata is {size} bytes serialized, over {MAX_METADATA_BYTES}")


def _has_nul(value: Any) -> bool:
    """A NUL character in any string or key of a JSON value."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in k or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False
