"""The Redis key names, written once for the writers (sinks, streams) and the
readers (reads/, the API). ``<p>`` is DUCATS_TOPIC_PREFIX; the README's
"Metric formats" table lists what each key holds and its bound."""
from __future__ import annotations

from dataclasses import dataclass

from ducats.settings import Settings


@dataclass(frozen=True, slots=True)
class RedisKeys:
    snapshot: str
    snapshot_version: str
    partials: str
    partial_seqs: str
    owners: str
    hot_ducats: str
    hot_ducat: str
    hot_ducats_seq: str
    hot_tx: str
    hot_tx_data: str
    hot_edges: str
    hot_edges_data: str
    workers_prefix: str
    ratelimit: str
    pending: str
    network: str
    alerts_open: str

    @classmethod
    def of(cls, settings: Settings) -> RedisKeys:
        k = settings.redis_key
        return cls(
            snapshot=k("metrics", "snapshot"), snapshot_version=k("metrics", "snapshot", "version"),
            partials=k("metrics", "partials"), partial_seqs=k("metrics", "partials", "seq"),
            owners=k("metrics", "owners"),
            hot_ducats=k("hot", "ducats"), hot_ducat=k("hot", "ducat"), hot_ducats_seq=k("hot", "ducats", "seq"),
            hot_tx=k("hot", "tx"), hot_tx_data=k("hot", "tx", "data"),
            hot_edges=k("hot", "edges"), hot_edges_data=k("hot", "edges", "data"),
            workers_prefix=k("workers", ""),
            ratelimit=k("api", "ratelimit"), pending=k("api", "pending", ""),
            network=k("network", "latest"), alerts_open=k("alerts", "open"),
        )

    def pending_tx(self, transaction_id: str) -> str:
        """Marks a transaction the API published and the ledger has not decided yet (24 h TTL)."""
        return self.pending + "tx:" + transaction_id

    def pending_mint(self, mint_id: str) -> str:
        return self.pending + "mint:" + mint_id

    def worker(self, name: str) -> str:
        """The heartbeat key of one worker (``<p>:workers:<host:pid>``)."""
        return self.workers_prefix + name
