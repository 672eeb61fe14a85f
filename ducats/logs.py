"""Structured logging for every ducats process.

One line per event: ``key=value`` on a terminal, or JSON with
``DUCATS_LOG_FORMAT=json`` for log shippers. Standard-library loggers (Faust,
mode, aiokafka) go through the same structlog renderer, so a worker's whole
output is uniform. The Faust worker installs :func:`logging_config` itself.
"""
from __future__ import annotations

import logging.config
from typing import Any

import structlog

from ducats.settings import Settings

_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


# Frames without their locals: cheaper, and no secret in a local variable reaches the logs.
_DICT_TRACEBACKS = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False))


def logging_config(settings: Settings, *, quiet_clients: bool = False) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` that renders every record through structlog.

    ``quiet_clients`` silences aiokafka's own error lines, for one-shot commands
    that report a failure themselves in one line.
    """
    # Tracebacks as plain text, or as a dict in JSON: the console renderer's default (rich, with
    # every frame's locals) took 10 s for one API error and blocked the event loop meanwhile.
    renderer = (structlog.processors.JSONRenderer() if settings.log_format == "json"
                else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback))
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structured": {
            "()": structlog.stdlib.ProcessorFormatter,
            "foreign_pre_chain": _SHARED,
            "processors": [structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                           *([_DICT_TRACEBACKS] if settings.log_format == "json" else []),
                           renderer],
        }},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "structured",
                                "stream": "ext://sys.stderr"}},
        "root": {"level": settings.log_level.upper(), "handlers": ["stderr"]},
        "loggers": {"aiokafka": {"level": "CRITICAL" if quiet_clients else "WARNING"}},
    }


def configure_logging(settings: Settings, *, quiet_clients: bool = False) -> None:
    """Install the renderer once, at process start."""
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    logging.config.dictConfig(logging_config(settings, quiet_clients=quiet_clients))


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
