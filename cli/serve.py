"""``ducats api``: uvicorn serving serving.app:create_app, with N worker processes.

Each worker process builds its own app from the environment (the settings are
passed down as variables, Settings.to_env). With several workers, Prometheus
runs in multiprocess mode so /metrics sums them all.
"""
from __future__ import annotations

import os
import shutil
import socket

import uvicorn

from ducats.errors import ConfigError
from ducats.settings import Settings
from serving.auth import ApiKeys
from serving.limiter import check_limits


def run_api(settings: Settings, *, host: str, port: int, workers: int) -> None:
    ApiKeys.parse(settings.api_keys)  # a bad setting is one line now, not a traceback per worker
    check_limits(settings)
    _check_port(host, port)
    os.environ.update(settings.to_env(DUCATS_API_HOST=host, DUCATS_API_PORT=str(port)))
    if workers > 1:
        prom = settings.run_dir / f"api-prometheus-{port}"
        shutil.rmtree(prom, ignore_errors=True)
        prom.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(prom)
    uvicorn.run("serving.app:create_app", factory=True, host=host, port=port, workers=workers,
                loop="uvloop", http="httptools", lifespan="on", access_log=False, log_config=None,
                timeout_graceful_shutdown=5, server_header=False)


def _check_port(host: str, port: int) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}; "
                              "fix: choose another --port or stop what uses it") from None
