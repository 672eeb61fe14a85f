"""The Faust application: one factory, configured from Settings, no I/O at import."""
from __future__ import annotations

import faust

from ducats.settings import Settings


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
        web_bind="127.0.0.1",
        web_port=settings.worker_web_port,
        # Faust's own files (table stores' folders) go under the state folder, not the cwd.
        datadir=str(settings.state_dir / "faust" / "{conf.name}-data"),
        autodiscover=False,
    )
    (settings.state_dir / "faust").mkdir(parents=True, exist_ok=True)
    resources = metrics.Resources(settings=settings)
    app.add_dependency(resources)  # first child: started before the agents, stopped after
    metrics.register(app, settings, resources)
    return app


def run_worker(settings: Settings) -> None:
    """Run a worker in this process until SIGTERM/SIGINT."""
    from ducats.logs import configure_logging, logging_config

    from ducats.observability import serve_metrics

    configure_logging(settings)
    serve_metrics(settings.worker_metrics_port)
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True,
                          logging_config=logging_config(settings))
    worker.execute_from_commandline()
