"""Settings, read once from the environment (``CONTRACTFLOW_*``) or ``.env``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of a worker; `contractflow dev` fills them for the local stack."""

    model_config = SettingsConfigDict(
        env_prefix="CONTRACTFLOW_", env_file=".env", extra="ignore"
    )

    broker: str = "localhost:9092"
    redis_url: str = "redis://localhost:6379/0"
    artifact_dir: Path = Path(".contractflow/artifacts")
    data_dir: Path = Path(".contractflow/data")
    web_port: int = 6066
    web_host: str = "127.0.0.1"
    topic_prefix: str = ""
    app_id: str = "contractflow"
    schema_registry_url: str | None = None
    jwt_secret: SecretStr = SecretStr("change-me")

    partitions: int = Field(default=8, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    max_record_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Where the ledger and the registry keep their keys: "rocksdb" holds them
    # on disk under the data directory, "memory" in the worker's heap.
    table_store: Literal["rocksdb", "memory"] = "rocksdb"

    retry_base_seconds: float = Field(default=1.0, gt=0)
    retry_cap_seconds: float = Field(default=300.0, gt=0)
    retry_max_attempts: int = Field(default=8, ge=1)
    # How long a worker may hold a claimed retry before another takes it over.
    retry_lease_seconds: float = Field(default=30.0, gt=0)
    missing_contract_grace_seconds: float = Field(default=86400.0, gt=0)
    # The aggregation policy: 0 leaves it off, and every acceptance is
    # contracted on its own; otherwise the window size in seconds.
    aggregation_window_seconds: float = Field(default=0.0, ge=0)
    # How long past its end a window waits for late acceptances, by event time
    # and by the wall clock, before it closes.
    aggregation_grace_seconds: float = Field(default=60.0, ge=0)

    # Group membership timing. Kafka's defaults suit a production cluster; the
    # embedded broker only completes a join after the rebalance timeout, so
    # `contractflow dev` and the tests lower these to a few seconds.
    session_timeout_seconds: float = Field(default=30.0, gt=0)
    rebalance_timeout_seconds: float = Field(default=60.0, gt=0)
    heartbeat_interval_seconds: float = Field(default=3.0, gt=0)

    log_level: str = "INFO"


# Group timings under which the embedded broker joins a group in seconds, for
# `contractflow dev`, the demo and the tests (with defaults, 23 to 30 s a join).
EMBEDDED_TIMINGS: dict[str, float] = {
    "session_timeout_seconds": 6.0,
    "rebalance_timeout_seconds": 6.0,
    "heartbeat_interval_seconds": 1.0,
}
