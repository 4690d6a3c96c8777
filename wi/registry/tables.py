"""The registry's SQL tables (SQLModel). Changing one needs a migration in ``migrations/versions``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Index, Text
from sqlmodel import Field, SQLModel


def _utc_column(nullable: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(DateTime(timezone=True), nullable=nullable)


class HintColumns(SQLModel):
    """What both hint tables keep of a hint or clear (sa_type, not sa_column: each table needs its own)."""

    is_clear: bool
    issued_at: datetime = Field(sa_type=DateTime(timezone=True))
    expires_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    stream_seq: int = Field(sa_type=BigInteger)
    body: str = Field(sa_type=Text)


class HintRecord(HintColumns, table=True):
    """Every hint and clear ever applied: the history. One row per (tenant, hint_id)."""

    __tablename__ = "hint_history"
    __table_args__ = (Index("ix_hint_history_workload", "tenant", "workload", "kind"),)

    tenant: str = Field(primary_key=True, max_length=63)
    hint_id: str = Field(primary_key=True, max_length=128)
    workload: str = Field(max_length=63)
    scope: str = Field(max_length=63, description="'' for the whole workload, else the instance")
    kind: str = Field(max_length=32, description="the hint kind (for a clear, the kind it removes)")


class CurrentHint(HintColumns, table=True):
    """The latest hint or clear of each kind and scope of a workload (a projection of the history)."""

    __tablename__ = "current_hints"

    tenant: str = Field(primary_key=True, max_length=63)
    workload: str = Field(primary_key=True, max_length=63)
    scope: str = Field(primary_key=True, max_length=63)
    kind: str = Field(primary_key=True, max_length=32)
    hint_id: str = Field(max_length=128)


class NoticeRecord(SQLModel, table=True):
    """Every notice, with its state."""

    __tablename__ = "notices"
    __table_args__ = (Index("ix_notices_workload", "tenant", "workload", "state"),)

    notice_id: str = Field(primary_key=True, max_length=128)
    tenant: str = Field(max_length=63)
    workload: str = Field(max_length=63)
    kind: str = Field(max_length=32)
    issued_at: datetime = Field(sa_column=_utc_column())
    deadline: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))
    state: str = Field(max_length=16)
    deferred_until: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))
    stream_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    body: str = Field(sa_column=Column(Text, nullable=False))
    recorded_at: datetime | None = Field(
        default=None,
        sa_column=_utc_column(nullable=True),
        description="when the registry recorded it (none for notices recorded before WI kept it)",
    )


class ResponseRecord(SQLModel, table=True):
    """Every response applied to a notice."""

    __tablename__ = "responses"
    __table_args__ = (Index("ix_responses_notice", "notice_id"),)

    tenant: str = Field(primary_key=True, max_length=63)
    response_id: str = Field(primary_key=True, max_length=128)
    notice_id: str = Field(max_length=128)
    workload: str = Field(max_length=63)
    kind: str = Field(max_length=16)
    received_at: datetime = Field(sa_column=_utc_column())
    stream_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    body: str = Field(sa_column=Column(Text, nullable=False))


class Watermark(SQLModel, table=True):
    """How far the registry has applied a stream: every message up to ``seq`` is applied or parked.

    Written in the same transaction as what it covers, so a reader that sees it sees the data too.
    """

    __tablename__ = "registry_watermarks"

    stream: str = Field(primary_key=True, max_length=32)
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
