"""The audit table of platform-service decisions. Changing it needs a migration."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Text
from sqlmodel import Field, SQLModel


class DecisionRecord(SQLModel, table=True):
    """One decision of a platform service, with its reasons and the notices and hints it sent."""

    __tablename__ = "decisions"
    __table_args__ = (Index("ix_decisions_input", "service", "input_id"),)

    key: str = Field(primary_key=True, max_length=255, description="service:input id:index, unique")
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
    detail: str = Field(sa_type=Text, description="JSON the service needs to rebuild its state")
    decided_at: datetime = Field(sa_type=DateTime(timezone=True), index=True)


class DecisionLock(SQLModel, table=True):
    """One row per service: the processes of a service take it in turn to decide, so each decides on the
    state every decision before it left."""

    __tablename__ = "decision_locks"

    service: str = Field(primary_key=True, max_length=64)
    taken_at: datetime = Field(sa_type=DateTime(timezone=True), description="when a process last took it")
