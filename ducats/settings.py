"""Configuration, read once from the environment into a frozen object.

Build it at start-up with :func:`load_settings` and pass it down; nothing else
in the project reads ``os.environ``. Every variable is listed in the README.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from ducats.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """Everything a ducats process can be told from outside."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    kafka_bootstrap: str = Field("127.0.0.1:19092", validation_alias=_env("KAFKA_BOOTSTRAP"))
    database_url: str = Field(
        "postgresql://ducats@127.0.0.1:15432/ducats", validation_alias=_env("DATABASE_URL")
    )
    redis_url: str = Field("redis://127.0.0.1:16379/0", validation_alias=_env("REDIS_URL"))
    # Neo4j on standby (docs/network.md): unset, nothing uses it; `ducats up neo4j` serves bolt://127.0.0.1:17687.
    neo4j_url: str | None = Field(None, validation_alias=_env("NEO4J_URL"))

    app_id: str = Field("ducats", validation_alias=_env("DUCATS_APP_ID"))
    topic_prefix: str = Field("ducats", validation_alias=_env("DUCATS_TOPIC_PREFIX"))
    topic_partitions: int = Field(4, ge=1, le=256, validation_alias=_env("DUCATS_TOPIC_PARTITIONS"))
    ledger_partitions: int = Field(1, ge=1, le=256, validation_alias=_env("DUCATS_LEDGER_PARTITIONS"))
    ledger_batch: int = Field(5000, ge=1, le=100_000, validation_alias=_env("DUCATS_LEDGER_BATCH"))
    # seqs per transaction of the ducat-state sink (sinks/postgres/state.py) when it has a backlog
    state_batch: int = Field(10_000, ge=1, le=100_000, validation_alias=_env("DUCATS_STATE_BATCH"))
    # the ducat-state sink as a child process of the leading ledger (docs/throughput.md step 4),
    # or, false, as a task in the ledger's own event loop (step 3)
    state_process: bool = Field(True, validation_alias=_env("DUCATS_STATE_PROCESS"))
    treasury: str = Field("treasury", min_length=1, validation_alias=_env("DUCATS_TREASURY"))
    snapshot_interval: float = Field(1.0, gt=0, le=3600, validation_alias=_env("DUCATS_SNAPSHOT_INTERVAL"))
    metrics_batch: int = Field(64, ge=1, le=10_000, validation_alias=_env("DUCATS_METRICS_BATCH"))
    hot_ducats: int = Field(10_000, ge=10, le=1_000_000, validation_alias=_env("DUCATS_HOT_DUCATS"))
    hot_transactions: int = Field(100_000, ge=10, le=10_000_000, validation_alias=_env("DUCATS_HOT_TRANSACTIONS"))
    hot_edges: int = Field(10_000, ge=10, le=1_000_000, validation_alias=_env("DUCATS_HOT_EDGES"))
    # Prometheus /metrics of each process kind on 127.0.0.1; 0 = any free port (logged as metrics.endpoint).
    ledger_metrics_port: int = Field(9101, ge=0, le=65535, validation_alias=_env("DUCATS_LEDGER_METRICS_PORT"))
    worker_metrics_port: int = Field(9102, ge=0, le=65535, validation_alias=_env("DUCATS_WORKER_METRICS_PORT"))
    analyze_metrics_port: int = Field(9103, ge=0, le=65535, validation_alias=_env("DUCATS_ANALYZE_METRICS_PORT"))
    cascades_metrics_port: int = Field(9104, ge=0, le=65535, validation_alias=_env("DUCATS_CASCADES_METRICS_PORT"))
    mirror_metrics_port: int = Field(9105, ge=0, le=65535, validation_alias=_env("DUCATS_MIRROR_METRICS_PORT"))
    # `ducats analyze` (docs/network.md): seconds between runs.
    analyze_every: float = Field(60.0, ge=1, le=86_400, validation_alias=_env("DUCATS_ANALYZE_EVERY"))
    worker_web_port: int = Field(6066, ge=0, le=65535, validation_alias=_env("DUCATS_WORKER_WEB_PORT"))
    # Recovery and rebalancing of the Faust workers (README, "Recovery and rebalancing"): how long
    # the group waits for a silent worker, and static membership (a replica restarted on the same
    # host and web port gets its partitions back at once, without a rebalance).
    worker_session_timeout: float = Field(6.0, ge=1, le=300, validation_alias=_env("DUCATS_WORKER_SESSION_TIMEOUT"))
    worker_static_membership: bool = Field(True, validation_alias=_env("DUCATS_WORKER_STATIC_MEMBERSHIP"))
    # The HTTP API (serving/, README "The HTTP API").
    database_read_url: str | None = Field(None, validation_alias=_env("DATABASE_READ_URL"))  # None: DATABASE_URL
    api_host: str = Field("127.0.0.1", validation_alias=_env("DUCATS_API_HOST"))
    api_port: int = Field(8000, ge=0, le=65535, validation_alias=_env("DUCATS_API_PORT"))
    api_workers: int = Field(1, ge=1, le=64, validation_alias=_env("DUCATS_API_WORKERS"))  # `ducats api` processes
    # sha256 hex digests of the keys allowed to write (comma-separated; `ducats api-key` makes one).
    api_keys: str = Field("", validation_alias=_env("DUCATS_API_KEYS"))
    api_reads_need_key: bool = Field(False, validation_alias=_env("DUCATS_API_READS_NEED_KEY"))
    # Per-client limits in the `limits` notation ("20/second", "1000/minute"); empty = no limit.
    api_write_limit: str = Field("50/second", validation_alias=_env("DUCATS_API_WRITE_LIMIT"))
    api_read_limit: str = Field("", validation_alias=_env("DUCATS_API_READ_LIMIT"))
    api_max_body: int = Field(512 * 1024, ge=1024, le=8 * 1024 * 1024, validation_alias=_env("DUCATS_API_MAX_BODY"))
    # Budgets per call (seconds) and the breakers: open after N failures in a row, try again after TTL.
    api_redis_timeout: float = Field(0.05, gt=0, le=10, validation_alias=_env("DUCATS_API_REDIS_TIMEOUT"))
    api_pg_timeout: float = Field(0.5, gt=0, le=30, validation_alias=_env("DUCATS_API_PG_TIMEOUT"))
    # How long a request may wait for a pooled connection: past it PostgreSQL is overloaded or gone, and
    # answering 503 at once beats queueing (the breaker then keeps the rest off it).
    api_pg_pool_wait: float = Field(0.05, gt=0, le=30, validation_alias=_env("DUCATS_API_PG_POOL_WAIT"))
    api_kafka_timeout: float = Field(0.8, gt=0, le=30, validation_alias=_env("DUCATS_API_KAFKA_TIMEOUT"))
    api_breaker_failures: int = Field(3, ge=1, le=100, validation_alias=_env("DUCATS_API_BREAKER_FAILURES"))
    api_breaker_reset: float = Field(2.0, gt=0, le=300, validation_alias=_env("DUCATS_API_BREAKER_RESET"))
    api_probes: bool = Field(False, validation_alias=_env("DUCATS_API_PROBES"))  # bench api's /_probe/* baselines
    api_refresh: float = Field(0.1, gt=0, le=60, validation_alias=_env("DUCATS_API_REFRESH"))
    log_level: str = Field("info", validation_alias=_env("DUCATS_LOG_LEVEL"))
    log_format: str = Field("console", pattern="^(console|json)$", validation_alias=_env("DUCATS_LOG_FORMAT"))
    timescale: str = Field("auto", pattern="^(auto|on|off)$", validation_alias=_env("DUCATS_TIMESCALE"))
    state_dir: Path = Field(PROJECT_ROOT / ".state", validation_alias=_env("DUCATS_STATE_DIR"))

    def topic(self, name: str) -> str:
        """Full name of one of the pipeline's topics, e.g. ``topic("mints")``."""
        return f"{self.topic_prefix}.{name}"

    @property
    def topic_mints(self) -> str:
        return self.topic("mints")

    @property
    def topic_transactions(self) -> str:
        return self.topic("transactions")

    @property
    def topic_accepted(self) -> str:
        return self.topic("transactions.accepted")

    @property
    def topic_accepted_batches(self) -> str:
        """The accepted log again, one record per ledger batch and partition (docs/throughput.md)."""
        return self.topic("transactions.accepted.batches")

    @property
    def topic_rejected(self) -> str:
        return self.topic("transactions.rejected")

    @property
    def topic_dlq(self) -> str:
        return self.topic("dlq")

    @property
    def topic_metrics(self) -> str:
        return self.topic("metrics")

    @property
    def topic_metrics_daily(self) -> str:
        return self.topic("metrics.daily")

    @property
    def topic_alerts(self) -> str:
        """Cascade alerts (schemas/alert.v1.json), written by `ducats cascades`."""
        return self.topic("alerts")

    @property
    def treasury_set(self) -> frozenset[str]:
        """Holders whose ducats are not in circulation (DUCATS_TREASURY, comma-separated)."""
        return frozenset(h.strip() for h in self.treasury.split(",") if h.strip())

    def redis_key(self, *parts: str) -> str:
        """Redis keys share the topic prefix: ``<prefix>:metrics:snapshot``, ..."""
        return ":".join((self.topic_prefix, *parts))

    def to_env(self, **extra: str) -> dict[str, str]:
        """These settings as the environment variables that :func:`load_settings`
        reads back to equal settings: the one mapping for child processes
        (cli/, tests, bench). ``extra`` variables win."""
        env: dict[str, str] = {}
        for name, info in type(self).model_fields.items():
            alias = info.validation_alias
            assert isinstance(alias, AliasChoices), name
            value = getattr(self, name)
            if value is not None:
                env[str(alias.choices[0])] = str(value)
        return {**env, **extra}

    @property
    def run_dir(self) -> Path:
        """Where running processes leave their readiness (ducats.health, `ducats status`)."""
        return self.state_dir / "run"

    @property
    def read_url(self) -> str:
        """Where the API's reads go: DATABASE_READ_URL (a replica), else DATABASE_URL."""
        return self.database_read_url or self.database_url

    @property
    def faust_broker(self) -> str:
        return ";".join(f"ducats://{h.strip()}" for h in self.kafka_bootstrap.split(","))


def load_settings(**overrides: object) -> Settings:
    """Read the environment once; ``overrides`` win (tests use them)."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from None
