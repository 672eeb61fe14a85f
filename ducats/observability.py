"""Prometheus metrics of the pipeline's processes.

Each long-running process serves ``/metrics`` on 127.0.0.1: the ledger on
DUCATS_LEDGER_METRICS_PORT (default 9101), a worker on DUCATS_WORKER_METRICS_PORT
(default 9102); 0 picks a free port (tests start several processes on one host).
"""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from ducats.logs import get_logger

log = get_logger(__name__)

LEDGER_RECORDS = Counter("ducats_ledger_records_total", "Input records the ledger handled, by outcome",
                         ["outcome"])
LEDGER_BATCH_SECONDS = Histogram("ducats_ledger_batch_seconds", "Time to apply and publish one ledger batch",
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
LEDGER_SEQ = Gauge("ducats_ledger_last_seq", "The ledger position: the last seq assigned")
STATE_SEQ = Gauge("ducats_state_last_seq", "The ducat-state sink's position: the last seq applied to the ducats' rows")
STATE_LAG = Gauge("ducats_state_lag_seqs", "Seqs the ledger decided that the ducat-state sink has not applied yet")
STATE_HOT_SEQ = Gauge("ducats_state_hot_seq", "The seq the hot ducats in Redis are as of (-1 while the "
                      "ducat-state sink cannot write them)")
STATE_BATCH_SECONDS = Histogram("ducats_state_batch_seconds", "Time to apply one range of the log to the ducats' state",
                                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
METRICS_EVENTS = Counter("ducats_metrics_events_total", "Accepted events folded by the metrics agent",
                         ["partition", "fresh"])
METRICS_GAPS = Counter("ducats_metrics_gaps_total", "Batch records that followed one the worker never folded "
                       "(schemas/batches.py); each makes it reread the partition", ["partition"])
METRICS_BATCH_SECONDS = Histogram("ducats_metrics_batch_seconds", "Time to fold and publish one batch of accepted events",
                                  buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1))
SNAPSHOT_VERSION = Gauge("ducats_snapshot_version", "Version of the last snapshot this worker wrote")
ANALYSIS_SECONDS = Histogram("ducats_analysis_seconds", "Time of one `ducats analyze` run, loading the edges included",
                             buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
CASCADE_EVENTS = Counter("ducats_cascade_events_total", "Accepted events the cascade detector folded, in seq order")
CASCADE_SEQ = Gauge("ducats_cascade_seq", "The last seq the cascade detector folded")
CASCADE_ALERTS = Counter("ducats_cascade_alerts_total", "Cascade alert states written", ["state"])
MIRROR_EDGES = Counter("ducats_mirror_edges_total", "Edges sent to Neo4j by the mirror")
MIRROR_SECONDS = Histogram("ducats_mirror_pass_seconds", "Time of one Neo4j mirror pass",
                           buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
SNAPSHOT_SEQ = Gauge("ducats_snapshot_seq", "Ledger seq counted by the last snapshot this worker wrote")


def serve_metrics(port: int) -> int:
    """Start the /metrics endpoint on 127.0.0.1; return the port it listens on."""
    server, _thread = start_http_server(port, addr="127.0.0.1")
    bound = int(server.server_address[1])
    log.info("metrics.endpoint", url=f"http://127.0.0.1:{bound}/metrics")
    return bound
