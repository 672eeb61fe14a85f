"""Tests and benchmarks delete the Kafka topics they create.

A broker that keeps every test's topics grows by hundreds of them per run and
restarts ever more slowly, so the fixtures delete, after each test, every topic
under the test's prefix and app id (Faust's too) and every topic_factory topic.
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from bench.env import BenchEnv
from ducats.kafka import TopicSpec, admin_client, delete_topics, ensure_topics
from ducats.settings import PROJECT_ROOT, Settings
from streams.topics import pipeline_topics
from tests.fixtures.services import clean_up_topics, topic_prefixes

FAUST = ("partition-metrics-changelog", "__assignor-__leader")


async def topics(s: Settings) -> set[str]:
    async with admin_client(s) as admin:
        return set(await admin.list_topics())


async def gone(s: Settings, names: set[str], timeout: float = 20) -> set[str]:
    """The names still listed once the deletions had ``timeout`` seconds to show."""
    deadline = time.monotonic() + timeout
    while (left := names & await topics(s)) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    return left


async def test_the_clean_up_deletes_the_prefix_and_the_app_id_and_nothing_else(base_settings: Settings) -> None:
    tag = uuid.uuid4().hex[:10]
    s = base_settings.model_copy(update={"topic_prefix": f"t{tag}", "app_id": f"ducats-t{tag}"})
    mine = [spec.name for spec in pipeline_topics(s)] + [f"{s.app_id}-{name}" for name in FAUST]
    # Names that share the text but not the prefix: another test's, or not a test's at all.
    neighbours = [f"t{tag}x.mints", f"ducats-t{tag}x-partition-metrics-changelog", f"t{tag}"]
    await ensure_topics(s, [TopicSpec(name=n, partitions=1) for n in mine + neighbours])
    try:
        assert set(mine + neighbours) <= await topics(s)
        clean_up_topics(base_settings, prefixes=topic_prefixes(s.topic_prefix, s.app_id))
        assert await gone(s, set(mine)) == set()
        assert set(neighbours) <= await topics(s)
    finally:
        await delete_topics(base_settings, mine + neighbours)


TINY_TEST = '''
import os

from ducats.kafka import TopicSpec, admin_client, ensure_topics


async def test_makes_topics(ledger_settings, settings_factory, topic_factory):
    s, other = ledger_settings, settings_factory()
    faust = [f"{s.app_id}-partition-metrics-changelog", f"{other.app_id}-__assignor-__leader"]
    await ensure_topics(s, [TopicSpec(name=n, partitions=1) for n in faust + [other.topic_mints]])
    made = [s.topic_mints, s.topic_accepted, other.topic_mints, *faust, await topic_factory(partitions=2)]
    async with admin_client(s) as admin:
        assert set(made) <= set(await admin.list_topics())
    with open(os.environ["MADE_TOPICS"], "a") as out:
        out.write("\\n".join(made) + "\\n")
'''


async def test_the_fixtures_leave_no_topic_behind(base_settings: Settings, tmp_path: Path) -> None:
    """A real pytest run of a test using ledger_settings, settings_factory and
    topic_factory: once it has ended, none of the topics it made exists."""
    (tmp_path / "test_tiny.py").write_text(TINY_TEST)
    made = tmp_path / "made.txt"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(PROJECT_ROOT / "pyproject.toml"),
         "--rootdir", str(PROJECT_ROOT), "-p", "tests.fixtures.services", "-p", "tests.fixtures.ledger",
         "-W", "error::UserWarning", str(tmp_path / "test_tiny.py")],
        cwd=PROJECT_ROOT, env={**os.environ, "MADE_TOPICS": str(made)},
        capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "2 passed" in proc.stdout, proc.stdout[-3000:]   # ledger_settings runs it on both storage paths
    names = set(made.read_text().split())
    assert len(names) == 2 * 6
    assert await gone(base_settings, names) == set()


async def test_a_benchmark_deletes_what_its_worker_made(base_settings: Settings) -> None:
    """BenchEnv.close deletes its pipeline topics and the Faust topics of its app
    id, which a worker makes and the benchmark never names."""
    env = await BenchEnv.create(base_settings)
    try:
        s = env.settings
        faust = [f"{s.app_id}-{name}" for name in FAUST]
        await ensure_topics(s, [TopicSpec(name=n, partitions=1) for n in faust])  # as a worker would
        made = set(env.topics) | set(faust)
        assert {spec.name for spec in pipeline_topics(s)} <= made <= await topics(s)
    finally:
        await env.close()
    assert await gone(base_settings, made) == set()
