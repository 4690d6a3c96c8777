"""The decision log's tables. Changing one needs a migration in ``wi/database/migrations/versions``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Index, Text
from sqlmodel import Field, SQLModel


class DecisionRecord(SQLModel, table=True):
    """One decision of a platform service, with its reasons, what it sent and what it changed."""

    __tablename__ = "decisions"
    __table_args__ = (Index("ix_decisions_input", "service", "input_id"),)

    key: str = Field(primary_key=True, max_length=255, description="service:input id:index, unique")
    seq: int = Field(
        sa_column=Column(BigInteger, nullable=False, unique=True, index=True),
        description="its place in the log: gapless, in the order the decisions were recorded",
    )
    service: str = Field(max_length=64)
    input_id: str = Field(max_length=128, description="the message the decision answers")
    action: str = Field(max_length=32)
    tenant: str | None = Field(default=None, max_length=63)
    workload: str | None = Field(default=None, max_length=63)
    summary: str = Field(max_length=500)
    reasons: str = Field(sa_type=Text, description="JSON list of the steps and reasons")
    notices: str = Field(sa_type=Text, description="JSON list of the notices sent")
    hints: str = Field(
        sa_type=Text, sa_column_kwargs={"server_default": "[]"}, description="JSON list of the hints sent"
    )
    changes: str = Field(
        sa_type=Text,
        sa_column_kwargs={"server_default": "[]"},
        description="JSON list of the changes to what runs where",
    )
    detail: str = Field(sa_type=Text, description="JSON the service needs to rebuild its state")
    decided_at: datetime = Field(sa_type=DateTime(timezone=True), index=True)


class DecisionLogHead(SQLModel, table=True):
    """The log's head: the sequence number of the last decision. Processes take turns by locking it."""

    __tablename__ = "decision_log_head"

    name: str = Field(primary_key=True, max_length=32)
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
