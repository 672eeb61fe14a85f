from __future__ import annotations

import os
from pathlib import Path

import pydantic
import pytest

from ducats.errors import ConfigError, DucatsError, ServiceUnavailable
from ducats.settings import load_settings
from schemas.events import MintBatch


def test_defaults_point_at_the_local_services(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("KAFKA_BOOTSTRAP", "DATABASE_URL", "REDIS_URL", "DUCATS_TOPIC_PREFIX"):
        monkeypatch.delenv(var, raising=False)
    s = load_settings()
    assert s.kafka_bootstrap == "127.0.0.1:19092"
    assert s.database_url == "postgresql://ducats@127.0.0.1:15432/ducats"
    assert s.redis_url == "redis://127.0.0.1:16379/0"
    assert s.topic_mints == "ducats.mints"


def test_environment_is_read_once_into_a_frozen_object(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "127.0.0.1:1,127.0.0.1:2")
    monkeypatch.setenv("DUCATS_TOPIC_PREFIX", "staging")
    s = load_settings()
    app_id = s.app_id
    assert s.faust_broker == "ducats://127.0.0.1:1;ducats://127.0.0.1:2"
    assert s.topic("transactions.accepted") == "staging.transactions.accepted"
    with pytest.raises(pydantic.ValidationError) as info:
        s.app_id = "other"  # type: ignore[misc]
    assert [e["type"] for e in info.value.errors()] == ["frozen_instance"]
    assert s.app_id == app_id


def test_invalid_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUCATS_TOPIC_PARTITIONS", "0")
    with pytest.raises(ConfigError, match="DUCATS_TOPIC_PARTITIONS"):
        load_settings()


def test_error_tree_marks_retriable() -> None:
    assert issubclass(ConfigError, DucatsError) and not ConfigError.retriable
    assert ServiceUnavailable.retriable


def test_mint_batch_round_trips() -> None:
    mint = MintBatch(mint_id="m-1", batch=12345, first_seq=1, count=1000, holder="treasury",
                     timestamp="2026-01-07T15:30:00+00:00")
    assert MintBatch.from_json(mint.to_json()) == mint


def test_to_env_round_trips_every_setting(tmp_path: Path) -> None:
    """One mapping Settings -> environment: a child process reading it gets equal settings."""
    custom = load_settings(kafka_bootstrap="127.0.0.9:1", topic_prefix="px", treasury="mint,reserve",
                           ledger_metrics_port=0, worker_metrics_port=0, state_dir=tmp_path, ledger_batch=17)
    env = custom.to_env()
    assert env["DUCATS_TREASURY"] == "mint,reserve" and env["DUCATS_LEDGER_METRICS_PORT"] == "0"
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(("DUCATS_", "KAFKA_", "DATABASE_", "REDIS_")):
                mp.delenv(name)
        for name, value in env.items():
            mp.setenv(name, value)
        assert load_settings() == custom
    assert custom.to_env(DUCATS_LEDGER_BATCH="5")["DUCATS_LEDGER_BATCH"] == "5"
