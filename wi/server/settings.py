"""Configuration of ``wi up``, read from ``WI_*`` environment variables (flags override them)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from wi.auth.nats_jwt import JwtError, account_keypair
from wi.engine.fleet import SAMPLE_FLEET


class Settings(BaseSettings):
    """Where WI keeps its state and where it listens. Each field is read from ``WI_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="WI_", extra="ignore", use_attribute_docstrings=True)

    data_dir: Path = Path(".wi")
    """Folder for the embedded nats-server's JetStream store and the default SQLite database."""
    nats_url: str | None = None
    """URL of a NATS cluster to use (e.g. nats://nats-1:4222,nats://nats-2:4222); unset starts the
    embedded nats-server."""
    nats_user: str | None = None
    """On the cluster of WI_NATS_URL: the auth callout's user (in the AUTH account) when
    WI_NATS_AUTH_ISSUER_SEED is set, else WI's own user."""
    nats_password: SecretStr | None = None
    """The password of WI_NATS_USER."""
    nats_auth_issuer_seed: SecretStr | None = None
    """On the cluster of WI_NATS_URL: the account nkey seed (SA...) whose public key the cluster's
    auth_callout names as issuer; WI then authorizes every client. Unset: the cluster's own authorization
    applies."""
    nats_system_user: str | None = None
    """On the cluster of WI_NATS_URL: a user of the system account, to disconnect revoked tokens."""
    nats_system_password: SecretStr | None = None
    """The password of WI_NATS_SYSTEM_USER."""
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
    http_workers: Annotated[int, Field(ge=1, le=64)] = 1
    """Processes serving HTTP. 1 serves it in `wi up`'s own process; more start that many gateway worker
    processes on the one port, each with a socket, a NATS connection and a database pool of its own
    (production: about one per core)."""
    http_max_body_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 256 * 1024
    """The largest request body the gateway takes, in bytes; larger ones get 413."""
    http_long_poll_max_s: Annotated[float, Field(ge=0, le=60)] = 30.0
    """The longest a notices long poll is held (a ``wait`` above it returns earlier, as long polls may)."""
    log_level: str = "INFO"
    """Python logging level: DEBUG, INFO, WARNING or ERROR."""
    duplicate_window_s: Annotated[float, Field(gt=0, le=86_400)] = 120.0
    """How long JetStream remembers a Nats-Msg-Id to drop a repeated publish."""
    stream_replicas: Annotated[int, Field(ge=1, le=5)] | None = None
    """Replicas of each JetStream stream. Unset: new streams get one per server of the cluster, up to 3,
    and existing streams keep theirs; set, every stream is changed to it."""
    shutdown_grace_s: Annotated[float, Field(ge=0.5, le=600)] = 10.0
    """How long a SIGTERM or SIGINT may take to drain: consumers still busy after it are cancelled (what
    they had not acknowledged is redelivered)."""

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

    @field_validator("nats_auth_issuer_seed")
    @classmethod
    def _an_account_seed(cls, seed: SecretStr | None) -> SecretStr | None:
        if seed is not None:
            try:
                account_keypair(seed.get_secret_value())
            except JwtError as exc:
                raise ValueError(str(exc)) from None
        return seed

    @model_validator(mode="after")
    def _credentials_in_pairs(self) -> Settings:
        if self.nats_url and self.nats_auth_issuer_seed and not (self.nats_user and self.nats_password):
            raise ValueError(
                "WI_NATS_AUTH_ISSUER_SEED needs WI_NATS_USER and WI_NATS_PASSWORD: the auth callout's user"
            )
        if (self.nats_system_user is None) != (self.nats_system_password is None):
            raise ValueError("WI_NATS_SYSTEM_USER and WI_NATS_SYSTEM_PASSWORD go together")
        return self

    @property
    def effective_fleet(self) -> Path:
        """The fleet file in force: WI_FLEET, or the sample fleet that ships with WI."""
        return self.fleet or SAMPLE_FLEET

    @property
    def effective_database_url(self) -> str:
        """The database URL in force: WI_DATABASE_URL, or the SQLite file in the data dir."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'wi.db').resolve()}"
