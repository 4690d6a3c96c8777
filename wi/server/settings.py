"""Configuration of ``wi up``, read from ``WI_*`` environment variables (flags override them)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where WI keeps its state and where it listens. Each field is read from ``WI_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="WI_", extra="ignore", use_attribute_docstrings=True)

    data_dir: Path = Path(".wi")
    """Folder for the embedded nats-server's JetStream store and the default SQLite database."""
    nats_url: str | None = None
    """URL of a NATS cluster to use (e.g. nats://nats-1:4222,nats://nats-2:4222); unset starts the
    embedded nats-server."""
    nats_user: str | None = None
    """User name on the NATS cluster of WI_NATS_URL, if it requires one."""
    nats_password: str | None = None
    """Password on the NATS cluster of WI_NATS_URL."""
    nats_host: str = "127.0.0.1"
    """Address the embedded nats-server listens on."""
    nats_port: Annotated[int, Field(ge=0, le=65535)] = 4222
    """Port of the embedded nats-server; 0 picks a free one."""
    database_url: str | None = None
    """SQLAlchemy URL of the database (e.g. postgresql+psycopg://wi@db/wi); unset uses
    sqlite:///<data_dir>/wi.db."""
    http_host: str = "127.0.0.1"
    """Address the HTTP server listens on."""
    http_port: Annotated[int, Field(ge=0, le=65535)] = 8080
    """Port of the HTTP server; 0 picks a free one."""
    http_max_body_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 256 * 1024
    """The largest request body the gateway takes, in bytes; larger ones get 413."""
    http_long_poll_max_s: Annotated[float, Field(ge=0, le=60)] = 30.0
    """The longest a notices long poll is held (a ``wait`` above it returns earlier, as long polls may)."""
    log_level: str = "INFO"
    """Python logging level: DEBUG, INFO, WARNING or ERROR."""
    duplicate_window_s: Annotated[float, Field(gt=0, le=86_400)] = 120.0
    """How long JetStream remembers a Nats-Msg-Id to drop a repeated publish."""
    stream_replicas: Annotated[int, Field(ge=1, le=5)] = 1
    """Replicas of each JetStream stream (3 on a 3-node cluster)."""

    services: str = "all"
    """Comma-separated platform services to run (see `wi services list`), "all" or "none"."""
    fleet: Path | None = None
    """The fleet file the services act on; unset uses the sample fleet that ships with WI."""
    placement_goal: Literal["cheapest", "greenest"] = "cheapest"
    """What the allocator optimizes for region-free workloads."""
    llm_perf_dir: Path | None = None
    """The Splitwise tables the LLM reconfigurer reads; unset: ../shared/data/splitwise-perf"""
    dev: bool = False
    """Create and print a tenant token (tenant ``dev``) and a platform token at start, for trying WI out."""

    @property
    def effective_database_url(self) -> str:
        """The database URL in force: WI_DATABASE_URL, or the SQLite file in the data dir."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'wi.db').resolve()}"
