"""Every ``ducats`` command that needs a service it cannot use ends in ONE line on
stderr, naming the service, its URL with the password masked, and the fix, and
exits 75 when the service does not answer (retrying may succeed) or 1 when it
refused us (fix something first). Nothing is waited out at start-up, and no
traceback is ever printed for these."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from ducats.connect import pg_error
from ducats.errors import EXIT_PERMANENT, EXIT_RETRIABLE, ServiceRefused, ServiceUnavailable
from ducats.kafka import ensure_topics
from ducats.settings import PROJECT_ROOT, Settings
from sinks.postgres.migrate import migrate
from streams.topics import pipeline_topics
from tests.fixtures.services import free_port

PG_DOWN = "postgresql://ducats:s3cret@127.0.0.1:1/x"
REDIS_DOWN = "redis://:s3cret@127.0.0.1:1/0"
KAFKA_DOWN = "127.0.0.1:1"
PG_FIX = "fix: start it (`ducats up postgres`) or set DATABASE_URL"
REDIS_FIX = "fix: start it (`ducats up redis`) or set REDIS_URL"
KAFKA_FIX = "fix: start it (`ducats up kafka`) or set KAFKA_BOOTSTRAP"
REFUSED_FIX = "fix: check the user, password and database in DATABASE_URL"


def ducats(command: str, env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess[str]:
    ports = {"DUCATS_LEDGER_METRICS_PORT": "0", "DUCATS_WORKER_METRICS_PORT": "0",
             "DUCATS_WORKER_WEB_PORT": str(free_port())}
    return subprocess.run([sys.executable, "-m", "cli", command], env={**os.environ, **ports, **env},
                          capture_output=True, text=True, timeout=timeout)


def one_line(proc: subprocess.CompletedProcess[str], code: int) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert lines[0].startswith("ducats: error: ") and "Traceback" not in proc.stderr
    return lines[0]


@pytest.fixture
def migrated(settings_factory: Callable[..., Settings], database_factory: Callable[[], str]) -> dict[str, str]:
    """The environment of a migrated private database with its own topics: every service up."""
    s = settings_factory(database_url=database_factory())
    migrate(s.database_url, timescale="auto")
    return {"DATABASE_URL": s.database_url, "KAFKA_BOOTSTRAP": s.kafka_bootstrap, "REDIS_URL": s.redis_url,
            "DUCATS_TOPIC_PREFIX": s.topic_prefix, "DUCATS_APP_ID": s.app_id}


@pytest.mark.parametrize("command", ["migrate", "ledger", "status", "worker"])
def test_postgres_not_answering_is_one_line_exit_75_with_the_password_masked(
        command: str, migrated: dict[str, str]) -> None:
    proc = ducats(command, {**migrated, "DATABASE_URL": PG_DOWN})
    line = one_line(proc, EXIT_RETRIABLE)
    assert "PostgreSQL at postgresql://ducats:***@127.0.0.1:1/x is not answering" in line and PG_FIX in line
    assert "s3cret" not in proc.stderr + proc.stdout


@pytest.mark.parametrize("command", ["migrate", "ledger", "status", "worker"])
def test_a_wrong_user_is_one_line_exit_1_with_the_fix(command: str, base_settings: Settings,
                                                      migrated: dict[str, str]) -> None:
    url = base_settings.database_url.replace("postgresql://ducats@", "postgresql://nouser@")
    assert "nouser@" in url
    line = one_line(ducats(command, {**migrated, "DATABASE_URL": url}), EXIT_PERMANENT)
    assert "role \"nouser\" does not exist" in line and REFUSED_FIX in line


@pytest.mark.parametrize("command", ["migrate", "ledger"])
def test_a_missing_database_is_one_line_exit_1_with_the_fix(command: str, base_settings: Settings) -> None:
    url = base_settings.database_url.rsplit("/", 1)[0] + "/no_such_database"
    line = one_line(ducats(command, {"DATABASE_URL": url}), EXIT_PERMANENT)
    assert "database \"no_such_database\" does not exist" in line and REFUSED_FIX in line


def test_a_server_that_came_up_after_the_failed_attempt_is_an_outage_not_a_refusal(
        base_settings: Settings) -> None:
    """The race of a restart: the attempt failed with "the database system is not yet
    accepting connections", and by the time it is classified the server answers. That
    is an outage to wait out (exit 75), not a wrong URL (exit 1)."""
    starting = psycopg.OperationalError("connection failed: FATAL:  the database system is not yet "
                                        "accepting connections")
    err = pg_error(starting, base_settings.database_url)
    assert isinstance(err, ServiceUnavailable) and err.exit_code == EXIT_RETRIABLE, err
    assert "was starting" in str(err) and PG_FIX in str(err)
    refused = pg_error(psycopg.OperationalError("FATAL:  role \"nouser\" does not exist"),
                       base_settings.database_url.replace("postgresql://ducats@", "postgresql://nouser@"))
    assert isinstance(refused, ServiceRefused) and REFUSED_FIX in str(refused), refused


@pytest.mark.parametrize("command", ["status", "worker"])
def test_redis_not_answering_is_one_line_exit_75_with_the_password_masked(
        command: str, migrated: dict[str, str]) -> None:
    proc = ducats(command, {**migrated, "REDIS_URL": REDIS_DOWN})
    line = one_line(proc, EXIT_RETRIABLE)
    assert "Redis at redis://:***@127.0.0.1:1/0 is not answering" in line and REDIS_FIX in line
    assert "s3cret" not in proc.stderr + proc.stdout


def test_commands_that_do_not_use_redis_do_not_need_it(migrated: dict[str, str]) -> None:
    proc = ducats("migrate", {**migrated, "REDIS_URL": REDIS_DOWN})
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


@pytest.mark.parametrize("command", ["ledger", "status", "worker"])
def test_kafka_not_answering_is_one_line_exit_75(command: str, migrated: dict[str, str]) -> None:
    line = one_line(ducats(command, {**migrated, "KAFKA_BOOTSTRAP": KAFKA_DOWN}), EXIT_RETRIABLE)
    assert f"Kafka at {KAFKA_DOWN} is not answering; {KAFKA_FIX}" in line


async def test_the_ledger_names_what_to_run_first(migrated: dict[str, str], base_settings: Settings,
                                                  database_factory: Callable[[], str]) -> None:
    no_topics = one_line(ducats("ledger", migrated), EXIT_PERMANENT)
    assert f"topic {migrated['DUCATS_TOPIC_PREFIX']}.mints does not exist; fix: run `ducats topics`" in no_topics
    await ensure_topics(base_settings, pipeline_topics(base_settings.model_copy(
        update={"topic_prefix": migrated["DUCATS_TOPIC_PREFIX"]})))
    unmigrated = one_line(ducats("ledger", {**migrated, "DATABASE_URL": database_factory()}), EXIT_PERMANENT)
    assert "relation \"ducats_meta\" does not exist; fix: run `ducats migrate`" in unmigrated


@pytest.fixture
def stopped_services(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A private PostgreSQL (migrated) and Redis, started and then stopped for real."""
    env = {"DUCATS_STATE_DIR": str(tmp_path / "state"), "POSTGRES_PORT": str(free_port()),
           "REDIS_PORT": str(free_port())}
    script = ["bash", str(PROJECT_ROOT / "deploy" / "services.sh")]
    try:
        up = subprocess.run([*script, "up", "postgres", "redis"], env={**os.environ, **env},
                            capture_output=True, text=True, timeout=120)
        assert up.returncode == 0, up.stderr
        url = f"postgresql://ducats@127.0.0.1:{env['POSTGRES_PORT']}/ducats"
        migrate(url)
        down = subprocess.run([*script, "down", "postgres", "redis"], env={**os.environ, **env},
                              capture_output=True, text=True, timeout=120)
        assert down.returncode == 0, down.stderr
        yield {**env, "DATABASE_URL": url, "REDIS_URL": f"redis://127.0.0.1:{env['REDIS_PORT']}/0"}
    finally:
        subprocess.run([*script, "down"], env={**os.environ, **env}, capture_output=True, timeout=120)
        pg = tmp_path / "state" / "postgres"
        if pg.is_symlink():  # a cluster relocated out of the 0700 pytest folder
            shutil.rmtree(pg.resolve(), ignore_errors=True)


def test_really_stopped_services_are_one_line_exit_75(stopped_services: dict[str, str],
                                                      base_settings: Settings) -> None:
    env, pg_down, redis_down = stopped_services, stopped_services["DATABASE_URL"], stopped_services["REDIS_URL"]
    for command in ("migrate", "ledger"):
        line = one_line(ducats(command, env), EXIT_RETRIABLE)
        assert f"PostgreSQL at {pg_down} is not answering; {PG_FIX}" in line
    only_pg = one_line(ducats("status", {**env, "REDIS_URL": base_settings.redis_url}), EXIT_RETRIABLE)
    assert f"PostgreSQL at {pg_down} is not answering" in only_pg
    only_redis = one_line(ducats("status", {**env, "DATABASE_URL": base_settings.database_url}), EXIT_RETRIABLE)
    assert f"Redis at {redis_down} is not answering; {REDIS_FIX}" in only_redis
    both = ducats("status", env)  # one line for each configured service that does not answer
    assert both.returncode == EXIT_RETRIABLE and len(both.stderr.strip().splitlines()) == 2, both.stderr
