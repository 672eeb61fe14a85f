"""`services.sh up NAME` brings a crashed service back on the first try.

Each test runs its own services (own state folder, own ports), kills one with SIGKILL and
starts it again once. A killed service leaves a pid file naming a dead pid, or a zombie
until its parent reaps it (kill -0 succeeds on one); PostgreSQL also leaves postmaster.pid,
the socket's lock file and, for a moment, its backends. None of that may fail the restart.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ducats.settings import PROJECT_ROOT
from tests.fixtures.services import free_port

SERVICES = PROJECT_ROOT / "deploy" / "services.sh"
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
# Kafka needs longer: after an unclean death the controller keeps the old broker's
# registration until its session times out (DUPLICATE_BROKER_REGISTRATION, about 9 s).
RESTART_BOUND = {"kafka": 90.0, "postgres": 30.0, "redis": 30.0}


def services(cmd: str, name: str, env: dict[str, str], timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SERVICES), cmd, name], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=timeout)


def status(name: str, env: dict[str, str]) -> tuple[str, str]:
    """(pid, health) from the status table: pid is '-' when the service is down."""
    row = services("status", name, env, timeout=30).stdout.splitlines()[1].split()
    return row[2], row[3]


def answers(name: str, env: dict[str, str]) -> bool:
    """The service's own client gets a real answer, not only an open port."""
    probes = {
        "kafka": ["kcat", "-b", f"127.0.0.1:{env['KAFKA_PORT']}", "-L", "-m", "5"],
        "postgres": [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", env["POSTGRES_PORT"], "-U", "postgres"],
        "redis": ["redis-cli", "-h", "127.0.0.1", "-p", env["REDIS_PORT"], "ping"],
    }
    proc = subprocess.run(probes[name], capture_output=True, text=True, timeout=30)
    return proc.returncode == 0 and (name != "redis" or proc.stdout.strip() == "PONG")


def proc_state(pid: int) -> str | None:
    """The state letter of /proc/PID/stat ('Z' for a zombie), None when the pid is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def wait_dead(pid: int, timeout: float = 10) -> None:
    """Until PID has exited: gone, or a zombie its parent has not reaped yet."""
    deadline = time.monotonic() + timeout
    while proc_state(pid) not in (None, "Z"):
        assert time.monotonic() < deadline, f"pid {pid} still running {timeout} s after SIGKILL"
        time.sleep(0.05)


def children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if fields[1] == str(pid):
            kids.append(int(stat.parent.name))
    return kids


@pytest.fixture
def private_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {"DUCATS_STATE_DIR": str(tmp_path / "state"), "KAFKA_PORT": str(free_port()),
           "KAFKA_CONTROLLER_PORT": str(free_port()), "POSTGRES_PORT": str(free_port()),
           "REDIS_PORT": str(free_port())}
    yield env
    subprocess.run(["bash", str(SERVICES), "down"], env={**os.environ, **env}, capture_output=True, timeout=300)
    pg = tmp_path / "state" / "postgres"
    if pg.is_symlink():  # relocated cluster outside the 0700 pytest folder
        shutil.rmtree(pg.resolve(), ignore_errors=True)
        with contextlib.suppress(OSError):  # and its /var/lib/ducats/<hash> folder, now empty
            pg.resolve().parent.rmdir()


def started(name: str, env: dict[str, str]) -> int:
    up = services("up", name, env)
    assert up.returncode == 0, up.stderr
    pid, health = status(name, env)
    assert health == "healthy", (pid, health)
    return int(pid)


def assert_restarts_once(name: str, env: dict[str, str], old_pid: int) -> None:
    t0 = time.monotonic()
    up = services("up", name, env, timeout=RESTART_BOUND[name] + 30)
    took = time.monotonic() - t0
    assert up.returncode == 0, up.stderr
    assert took < RESTART_BOUND[name], f"{name} took {took:.1f} s to restart"
    pid, health = status(name, env)
    assert health == "healthy" and pid not in ("-", str(old_pid)), (pid, health, up.stderr)
    assert answers(name, env)


@pytest.mark.parametrize("name", ["kafka", "postgres", "redis"])
def test_up_restarts_a_killed_service_on_first_try(private_env: dict[str, str], name: str) -> None:
    pid = started(name, private_env)
    os.kill(pid, signal.SIGKILL)
    assert_restarts_once(name, private_env, pid)


@pytest.mark.parametrize("name", ["kafka", "postgres", "redis"])
def test_status_says_down_for_a_dead_or_zombie_pid(private_env: dict[str, str], name: str) -> None:
    pid = started(name, private_env)
    os.kill(pid, signal.SIGKILL)
    wait_dead(pid)  # often still a zombie here: its parent is pid 1, not us
    assert status(name, private_env) == ("-", "down")
    down = services("down", name, private_env)
    assert down.returncode == 0 and down.stderr == "", down.stderr


def test_postgres_backends_outliving_the_postmaster_do_not_block_the_restart(
        private_env: dict[str, str]) -> None:
    # A stopped backend cannot notice the postmaster's death: it keeps the shared memory
    # attached, as a busy one does for a moment, and the server refuses to start over it.
    postmaster = started("postgres", private_env)
    backend = children(postmaster)[0]
    os.kill(backend, signal.SIGSTOP)
    try:
        os.kill(postmaster, signal.SIGKILL)
        assert_restarts_once("postgres", private_env, postmaster)
        assert proc_state(backend) in (None, "Z"), "the orphaned backend is still running"
    finally:
        if proc_state(backend) not in (None, "Z"):
            os.kill(backend, signal.SIGKILL)


@pytest.mark.parametrize("name", ["redis", "kafka"])
def test_pid_file_naming_an_unrelated_process_is_stale(private_env: dict[str, str], name: str) -> None:
    pidfile = Path(private_env["DUCATS_STATE_DIR"]) / name / f"{name}.pid"
    pidfile.parent.mkdir(parents=True)
    with subprocess.Popen(["sleep", "60"]) as stranger:
        try:
            pidfile.write_text(f"{stranger.pid}\n")
            assert status(name, private_env) == ("-", "down")
            assert services("down", name, private_env).returncode == 0
            assert stranger.poll() is None, "`down` signalled a process that is not the service"

            pidfile.write_text(f"{stranger.pid}\n")
            assert_restarts_once(name, private_env, stranger.pid)
            assert stranger.poll() is None
            assert services("down", name, private_env).returncode == 0
            assert stranger.poll() is None
        finally:
            stranger.kill()
