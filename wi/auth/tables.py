"""The token table. Changing it needs a migration in ``wi/database/migrations/versions``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime
from sqlmodel import Field, SQLModel


class ApiToken(SQLModel, table=True):
    """A tenant's or the platform's token, stored only as hashes."""

    __tablename__ = "api_tokens"

    token_id: str = Field(primary_key=True, max_length=16)
    kind: str = Field(max_length=16, description="tenant or platform")
    tenant: str | None = Field(default=None, max_length=63, index=True)
    sha256: str = Field(max_length=64, description="hex SHA-256 of the token: how it is checked")
    label: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
