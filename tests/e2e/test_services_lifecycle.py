"""`ducats up`, `status` and `down` on a private set of services (own state
folder, own ports), and the one-line errors for missing prerequisites."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ducats.settings import PROJECT_ROOT
from tests.fixtures.services import free_port

DEPLOY = PROJECT_ROOT / "deploy"


def run(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout)


def ducats(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "cli", *args], env)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def private_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {"DUCATS_STATE_DIR": str(tmp_path / "state"), "KAFKA_PORT": str(free_port()),
           "KAFKA_CONTROLLER_PORT": str(free_port()), "POSTGRES_PORT": str(free_port()),
           "REDIS_PORT": str(free_port())}
    yield env
    run(["bash", str(DEPLOY / "services.sh"), "down"], env)
    pg = tmp_path / "state" / "postgres"
    if pg.is_symlink():  # relocated cluster outside the 0700 pytest folder
        shutil.rmtree(pg.resolve(), ignore_errors=True)


def test_up_status_down_leaves_no_process(private_env: dict[str, str]) -> None:
    up = ducats("up", env=private_env)
    assert up.returncode == 0, up.stderr

    status = ducats("status", env=private_env)
    assert status.returncode == 0, status.stdout + status.stderr
    rows = {line.split()[0]: line.split() for line in status.stdout.splitlines()[1:]}
    assert set(rows) == {"kafka", "postgres", "redis"}
    for name, port_var in [("kafka", "KAFKA_PORT"), ("postgres", "POSTGRES_PORT"), ("redis", "REDIS_PORT")]:
        assert rows[name][1] == private_env[port_var] and rows[name][3] == "healthy"
    pids = [int(rows[name][2]) for name in rows]

    again = ducats("up", env=private_env)  # idempotent: healthy services are left alone
    assert again.returncode == 0, again.stderr
    assert [int(r.split()[2]) for r in ducats("status", env=private_env).stdout.splitlines()[1:]] == pids

    down = ducats("down", env=private_env)
    assert down.returncode == 0, down.stderr
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"process {pid} survived `ducats down`"
    for var in ("KAFKA_PORT", "KAFKA_CONTROLLER_PORT", "POSTGRES_PORT", "REDIS_PORT"):
        assert not port_open(int(private_env[var]))
    after = ducats("status", env=private_env)
    assert after.returncode == 1 and after.stdout.count(" down") == 3


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_port_already_taken_is_one_line_error(private_env: dict[str, str]) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(private_env["REDIS_PORT"])))
        squatter.listen()
        line = one_line_error(ducats("up", "redis", env=private_env))
    assert f"port {private_env['REDIS_PORT']} for redis is already taken" in line
    assert "REDIS_PORT" in line


def test_missing_java_is_one_line_error(private_env: dict[str, str]) -> None:
    line = one_line_error(run(["bash", str(DEPLOY / "kafka.sh"), "start"],
                              {**private_env, "JAVA_HOME": "/nonexistent"}))
    assert "/nonexistent/bin/java not found; fix: apt-get install -y openjdk-17-jre-headless" in line


def test_apt_unavailable_is_one_line_error(tmp_path: Path) -> None:
    # A PATH with every usual tool but apt-get and dpkg-query: a non-Debian system.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    for tool in Path("/usr/bin").iterdir():
        if tool.name not in {"apt-get", "dpkg-query"}:
            (fake_bin / tool.name).symlink_to(tool)
    line = one_line_error(run(["/usr/bin/bash", str(DEPLOY / "install.sh")],
                              {"PATH": str(fake_bin), "DUCATS_STATE_DIR": str(tmp_path / "state")}))
    assert line.startswith("ducats: apt-get not found; fix:") and "openjdk-17-jre-headless" in line


def test_cli_reports_bad_settings_and_unreachable_kafka_in_one_line() -> None:
    bad = one_line_error(ducats("topics", env={"DUCATS_TOPIC_PARTITIONS": "many"}))
    assert bad.startswith("ducats: error: invalid setting DUCATS_TOPIC_PARTITIONS")
    down = one_line_error(ducats("topics", env={"KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}"}))
    assert down.startswith("ducats: error: Kafka at 127.0.0.1:") and "is not answering" in down
