"""``ducats bench codec``: how fast the codec decodes and validates input events.

Every record the ledger reads goes through ``schemas.codec`` (one orjson parse,
the generated JSON Schema validator, one dataclass), so its cost per record is
a floor under the ledger's per-record time. Measured on transfers of 1, 100 and
``ids`` ducat ids, in memory, no services. The same-run baseline of each is
plain ``orjson.loads`` of the same bytes: the parse alone, no validation. Each
figure is the best of ``repeat`` rounds (the least disturbed by the machine).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from bench.errors import BenchError
from bench.report import Figure, machine, utc_now
from schemas.codec import decode_transfer
from schemas.ducat_id import ducat_str

MAX_IDS = 10_000  # the schema's limit: a larger transfer is a dead letter, not a decode


@dataclass(frozen=True, slots=True, kw_only=True)
class CodecParams:
    ids: int = MAX_IDS
    records: int = 200
    repeat: int = 5

    def __post_init__(self) -> None:
        if not 1 <= self.ids <= MAX_IDS:
            raise BenchError(f"--ids must be 1..{MAX_IDS}, got {self.ids}")
        if self.records < 1 or self.repeat < 1:
            raise BenchError("--records and --repeat must be at least 1")


def transfer_bytes(ids: int) -> bytes:
    """A valid transfer of ``ids`` ducats, as upstream publishes it."""
    return orjson.dumps({"transactionId": f"bench-{ids}", "timestamp": "2026-11-26T12:00:00+00:00",
                         "from": "alice", "to": "bob", "metadata": {"k": "v"},
                         "ducatIds": [ducat_str(1_000_001 + i) for i in range(ids)]})


def best_seconds(fn: Callable[[bytes], Any], raw: bytes, records: int, repeat: int) -> float:
    """The fastest of ``repeat`` rounds of ``records`` calls."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(records):
            fn(raw)
        best = min(best, time.perf_counter() - started)
    return best


def run_codec(p: CodecParams) -> tuple[dict[str, Any], list[Figure]]:
    figures: list[Figure] = []
    for ids in sorted({1, 100, p.ids}):
        raw, what = transfer_bytes(ids), f"{ids:,} id{'s' if ids > 1 else ''}"
        decode_transfer(raw)  # compiles the validator outside the measurement
        figures.append(Figure(key=f"decode_{ids}", label=f"codec decode + validate, {what}",
                              count=p.records, unit="records", seconds=best_seconds(decode_transfer, raw,
                                                                                    p.records, p.repeat)))
        figures.append(Figure(key=f"orjson_{ids}", label=f"orjson.loads alone, {what}",
                              count=p.records, unit="records", seconds=best_seconds(orjson.loads, raw,
                                                                                    p.records, p.repeat),
                              versus=f"decode_{ids}"))
    slowest = figures[-2]
    result = {"benchmark": "codec", "date": utc_now(), "machine": machine(),
              "params": {"ids": p.ids, "records": p.records, "repeat": p.repeat},
              "decode_ms_per_record": round(slowest.seconds / slowest.count * 1000, 4)}
    return result, figures
