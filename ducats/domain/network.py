"""Holder-to-holder network edges, folded from the accepted log.

An edge ``from -> to`` carries the ducats moved along it (``weight``), the
number of transfers, and the seqs of its first and last transfer. All of an
edge's transfers come from one partition of the accepted topic (it is keyed by
``from``), in seq order, so a per-edge ``last_seq`` makes every update
idempotent: a redelivered transfer is skipped.

The edges are kept in PostgreSQL (sinks/postgres/edges.py, docs/network.md);
``fold_edges`` is the rule they follow, the model the sink's tests hold it to.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import asdict, dataclass
from typing import Any


SEP = "\u2192"  # "from→to" keys read well in redis-cli and kcat
UNKNOWN_REGION = "unknown"
REGION_CHARS = 32


def region_of(stated: Any) -> str:
    """A holder's region from what a transfer's metadata states (``fromRegion`` or
    ``toRegion``): a string of 1 to 32 characters, trimmed and lower-cased;
    anything else is ``unknown`` (docs/network.md)."""
    if isinstance(stated, str) and 0 < len(stated.strip()) <= REGION_CHARS:
        return stated.strip().lower()
    return UNKNOWN_REGION


@dataclass(slots=True, kw_only=True)
class Edge:
    weight: int = 0
    transfers: int = 0
    first_seq: int = 0
    last_seq: int = 0
    last_ts: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Edge:
        return cls() if not d else cls(**d)


def edge_key(sender: str, receiver: str) -> str:
    return f"{sender}{SEP}{receiver}"


def fold_edges(edges: MutableMapping[str, Edge], events: Iterable[Mapping[str, Any]]) -> set[str]:
    """Apply the transfers among ``events`` to ``edges``; return the keys changed."""
    changed: set[str] = set()
    for e in events:
        if "transactionId" not in e:
            continue
        key = edge_key(e["from"], e["to"])
        edge = edges.get(key) or Edge()
        if e["seq"] <= edge.last_seq:
            continue
        if edge.transfers == 0:
            edge.first_seq = e["seq"]
        edge.weight += e["ducatCount"]
        edge.transfers += 1
        edge.last_seq, edge.last_ts = e["seq"], e["timestamp"]
        edges[key] = edge
        changed.add(key)
    return changed
