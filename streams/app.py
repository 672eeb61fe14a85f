"""The Faust application: one factory, configured from Settings, no I/O at import."""
from __future__ import annotations

import asyncio
import gc
import socket
from typing import Any

import faust

from ducats.settings import Settings

PRODUCER_LINGER_S = 0.02
PRODUCER_BATCH_BYTES = 1 << 20


def group_settings(settings: Settings) -> dict[str, Any]:
    """Faust's consumer-group settings (README, "Recovery and rebalancing").

    The session timeout is how long the group waits for a worker that went silent
    (killed, hung) before its partitions move; heartbeats go three times per session,
    at least every second, from Faust's consumer thread (a busy agent does not delay
    them). With static membership the worker's group instance id is its host and web
    port: a replica restarted there within the session timeout gets its partitions
    back without a rebalance. The id must match Faust's address for the worker
    (``canonical_url``, set here from the same two values): Faust checks the address
    in the assignment the broker hands back to a static member, and a mismatch stops
    the consumer for good. Web port 0 (any port) has no stable address, so it means
    dynamic membership."""
    session, address = settings.worker_session_timeout, f"{socket.gethostname()}:{settings.worker_web_port}"
    static = settings.worker_static_membership and settings.worker_web_port != 0
    return {"broker_session_timeout": session, "broker_heartbeat_interval": min(1.0, session / 3),
            "canonical_url": f"http://{address}", "consumer_group_instance_id": address if static else None}


def create_app(settings: Settings) -> faust.App:
    """Build the app, its resources and every agent on it."""
    from streams import metrics

    app = faust.App(
        settings.app_id,
        broker=settings.faust_broker,
        # Tables hold aggregates only (per-ducat state lives in Postgres), so
        # they stay small: in memory, rebuilt from their changelog topics.
        store="memory://",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # The tables' changelog records are many and small; Faust's default (no linger,
        # 16 KB batches) sent a produce request every few records, for a third of the
        # worker's CPU. Their delay does not matter: offsets are committed only after a
        # flush that waits for them (streams/transport.py). bench metrics: 6.2k -> 13k/s.
        producer_linger=PRODUCER_LINGER_S, producer_max_batch_size=PRODUCER_BATCH_BYTES,
        web_bind="127.0.0.1",
        web_port=settings.worker_web_port,
        # Faust's own files (table stores' folders) go under the state folder, not the cwd.
        datadir=str(settings.state_dir / "faust" / "{conf.name}-data"),
        autodiscover=False,
        **group_settings(settings),
    )
    (settings.state_dir / "faust").mkdir(parents=True, exist_ok=True)
    resources = metrics.Resources(settings=settings)
    app.add_dependency(resources)  # first child: started before the agents, stopped after
    metrics.register(app, settings, resources)
    return app


async def check_services(settings: Settings) -> None:
    """Every service the worker needs answers, and the schema and topics exist.

    Raises the project's error (ServiceUnavailable: exit 75; ServiceRefused or
    ConfigError: exit 1), so a worker started too early says so in one line instead
    of a Faust traceback. Once running, the worker rides outages out instead."""
    from ducats.connect import pg_connect, pg_errors, redis_connect
    from ducats.kafka import topic_partitions

    client = await redis_connect(settings.redis_url)
    await client.aclose()
    async with await pg_connect(settings.database_url) as conn:
        with pg_errors(settings.database_url):  # a missing table: "fix: run `ducats migrate`"
            await conn.execute("SELECT 1 FROM ducats, metric_history, daily_metrics LIMIT 0")
    await topic_partitions(settings, [settings.topic_accepted_batches, settings.topic_metrics,
                                      settings.topic_metrics_daily])


# Collect the youngest generation after this many allocations instead of Python's 700. A batch
# decodes tens of thousands of small dicts that live until it is folded; at 700 the collector
# ran every few records and walked them all again: the JSON decode took 4.6 µs an event with
# it and 1.8 µs without it (bench metrics). The data is acyclic, so little waits for a
# collection; what does is found a few hundred milliseconds later.
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Fewer collections for a process that allocates in bursts, and the objects of its
    start-up (modules, the app) moved out of the collector's sight for good."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run_worker(settings: Settings) -> None:
    """Run a worker in this process until SIGTERM/SIGINT."""
    from ducats.logs import configure_logging, logging_config
    from ducats.observability import serve_metrics

    # Quiet clients for the check: its failure is reported in one line by cli.main.
    # Faust installs the full logging configuration when it starts.
    configure_logging(settings, quiet_clients=True)
    loop = asyncio.new_event_loop()  # not asyncio.run: that would leave no current loop for Faust
    try:
        loop.run_until_complete(check_services(settings))
    finally:
        loop.close()
    serve_metrics(settings.worker_metrics_port)
    app = create_app(settings)
    tune_gc()
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True,
                          logging_config=logging_config(settings))
    worker.execute_from_commandline()
